from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ModelPacksConfig(AppConfig):
    name = "model_packs"
    verbose_name = _("Model packs")
