from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BatchImportConfig(AppConfig):
    name = "batch_import"
    verbose_name = _("Batch import")

    def ready(self) -> None:
        from django_q.signals import post_execute_in_worker, post_spawn

        from batch_import.worker_process import give_kept_places_back, tune_worker_process

        post_spawn.connect(tune_worker_process, dispatch_uid="relay-tune-worker-process")
        post_execute_in_worker.connect(
            give_kept_places_back, dispatch_uid="relay-give-kept-places-back"
        )
