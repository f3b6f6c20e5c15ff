"""``manage.py qcluster``: django-q2's cluster, with what its processes run loaded and frozen
before they are forked.

The cluster forks a sentinel, a pusher, a monitor and the workers from this process. Modules a
worker imports on its first task are then private to it, and the cyclic garbage collector's
full passes write to every object the parent made (their headers), so each child soon holds
its own copy of pages it could have shared. Importing the task modules here and moving every
object made so far out of the collector's reach (``gc.freeze``) keeps those pages shared:
idle, one cluster with one worker is ≈98 MiB of PSS instead of ≈127.

It runs no system checks (the web process and ``migrate`` run them): they import the URL
configuration, so every view, DRF, drf-spectacular and what run creation uses (tldextract,
requests), ≈15 MiB a cluster's processes carried and never used.
"""

from __future__ import annotations

import gc
from importlib import import_module

from django.conf import settings
from django_q.management.commands.qcluster import Command as QclusterCommand

from batch_import.dispatch import ADVANCE_TASK, ROLLBACK_TASK
from providers.services import RECONCILE_TASK


def task_modules() -> set[str]:
    """The modules of every task the cluster runs (schedules included: they name the same
    modules)."""
    paths = (ADVANCE_TASK, ROLLBACK_TASK, RECONCILE_TASK, settings.RELAY_AFTER_RUN_TASK)
    return {path.rpartition(".")[0] for path in paths if path}  # "": no after-run task


def preload_and_freeze() -> None:
    for module in sorted(task_modules()):
        import_module(module)
    gc.collect()
    gc.freeze()


class Command(QclusterCommand):
    requires_system_checks = []

    def handle(self, *args, **options):
        preload_and_freeze()
        return super().handle(*args, **options)
