from __future__ import annotations

from django.apps import AppConfig


class ModelPacksConfig(AppConfig):
    name = "model_packs"
    verbose_name = "Model packs"
