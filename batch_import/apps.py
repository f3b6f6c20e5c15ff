from __future__ import annotations

from django.apps import AppConfig


class BatchImportConfig(AppConfig):
    name = "batch_import"
    verbose_name = "Batch import"
