from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BatchImportConfig(AppConfig):
    name = "batch_import"
    verbose_name = _("Batch import")
