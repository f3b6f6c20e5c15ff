"""``manage.py qcluster``: django-q2's cluster, run by this process itself, with what its
processes run loaded and frozen before they are forked.

django-q2's own command forks a sentinel and then only waits for it: one more process per
cluster, holding ≈ 14 MiB of PSS (the pages of Django its children copied away). Here this
process is the sentinel: it forks the workers, the monitor and the pusher, guards them and
stops them in order on SIGTERM or SIGINT.

Modules a worker imports on its first task are then private to it, and the cyclic garbage
collector's full passes write to every object the parent made (their headers), so each child
soon holds its own copy of pages it could have shared. Importing the task modules here and
moving every object made so far out of the collector's reach (``gc.freeze``) keeps those pages
shared: idle, one cluster with one worker is ≈98 MiB of PSS instead of ≈127.

It runs no system checks (the web process and ``migrate`` run them): they import the URL
configuration, so every view, DRF, drf-spectacular and what run creation uses (tldextract,
requests), ≈15 MiB a cluster's processes carried and never used.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
import uuid
from importlib import import_module
from multiprocessing.util import register_after_fork

from django.conf import settings
from django_q.cluster import Sentinel, get_mp_context
from django_q.conf import logger
from django_q.humanhash import humanize
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


def _child_signals(_sentinel: Sentinel) -> None:
    """What django-q2's children get from its sentinel: SIGINT ignored (a terminal's Ctrl-C
    stops the cluster through the sentinel alone), SIGTERM the default (the sentinel ends a
    worker past its task's timeout with it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def run_sentinel(*, run_once: bool = False) -> None:
    """Guard a cluster in this process until SIGTERM or SIGINT (or one guard cycle)."""
    context = get_mp_context()
    stop_event, start_event = context.Event(), context.Event()
    cluster_id = uuid.uuid4()
    sentinel = Sentinel(stop_event, start_event, cluster_id, start=False)

    def stop(signum, frame) -> None:
        # Never set the event in the handler: the guard loop may hold its lock right now.
        threading.Thread(target=stop_event.set, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    register_after_fork(sentinel, _child_signals)
    if run_once:
        stop_event.set()
    sentinel.start()
    logger.info("Q Cluster %s has stopped.", humanize(cluster_id.hex))  # as django-q2 says it


class Command(QclusterCommand):
    requires_system_checks = []

    def handle(self, *args, **options):
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        preload_and_freeze()
        run_sentinel(run_once=options.get("run_once", False))
