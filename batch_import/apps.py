from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BatchImportConfig(AppConfig):
    name = "batch_import"
    verbose_name = _("Batch import")

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from batch_import.worker_process import tune_worker_process

        post_spawn.connect(tune_worker_process, dispatch_uid="relay-tune-worker-process")
