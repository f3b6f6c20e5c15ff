from __future__ import annotations

from django.apps import AppConfig


class ProbeConfig(AppConfig):
    name = "probe"
    verbose_name = "Upstream probe"
