"""The django-q2 cluster as relay-manager runs it (``manage.py run_workers``, ``qcluster``).

django-q2's own command forks a sentinel and only waits for it (one process per cluster
holding ≈ 14 MiB of pages of Django its children copied away), and a signal to the whole
process group (the demo, ``kill -- -PGID``) ends its workers mid-task or leaves the waiting
parent hung on the stop event's lock. Here the command's own process is the sentinel: it
forks the workers, the monitor and the pusher, guards them as django-q2's does and, on
SIGTERM or SIGINT, stops them in order. Each child runs in a process group of its own (a
signal to the cluster's group reaches the sentinel alone) and dies with the sentinel, even a
sentinel killed outright; a cluster still stopping after the grace period is killed.

Before the fork the task modules are imported and every object made so far is moved out of
the cyclic garbage collector's reach (``gc.freeze``): the collector's full passes write to the
header of every object they visit, so each child would soon hold its own copy of pages it
could share (idle, one cluster with one worker ≈ 98 MiB of PSS instead of ≈ 127).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import signal
import sys
import threading
import uuid
from importlib import import_module
from multiprocessing.util import register_after_fork

from django.conf import settings
from django_q.cluster import Sentinel, get_mp_context
from django_q.conf import logger
from django_q.humanhash import humanize

from batch_import.dispatch import ADVANCE_TASK, ROLLBACK_TASK
from providers.services import RECONCILE_TASK

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


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


def _set_up_child(sentinel: Sentinel) -> None:
    """In each forked child, before it runs: what django-q2's sentinel gives its children
    (SIGINT ignored, SIGTERM the default: the sentinel ends a worker past its task's timeout
    with it), a process group of its own, and death with the sentinel."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.setpgid(0, 0)
    _die_with_parent(sentinel.pid)


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this process when its parent dies (elsewhere, a development
    machine, nothing: a sentinel killed outright leaves its children to be killed by hand)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


def _kill_children(sentinel: Sentinel) -> None:
    for child in [*sentinel.pool, sentinel.monitor, sentinel.pusher]:
        if child is not None and child.pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)


def run_cluster(
    *, grace: float | None = None, timeout_message: str = "", run_once: bool = False
) -> None:
    """Guard a cluster in this process until SIGTERM or SIGINT (or one guard cycle), then
    stop it; past ``grace`` seconds of stopping, kill it and exit with status 1."""
    preload_and_freeze()
    context = get_mp_context()
    stop_event, start_event = context.Event(), context.Event()
    cluster_id = uuid.uuid4()
    sentinel = Sentinel(stop_event, start_event, cluster_id, start=False)
    deadline: list[threading.Timer] = []

    def kill_the_cluster() -> None:
        print(timeout_message, file=sys.stderr, flush=True)
        _kill_children(sentinel)
        os._exit(1)

    def stop(signum, frame) -> None:
        # The guard loop may hold the stop event's lock right now: set it from a thread.
        threading.Thread(target=stop_event.set, daemon=True).start()
        if grace is not None and not deadline:
            deadline.append(threading.Timer(grace, kill_the_cluster))
            deadline[0].daemon = True
            deadline[0].start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    register_after_fork(sentinel, _set_up_child)
    if run_once:
        stop_event.set()
    sentinel.start()
    for timer in deadline:
        timer.cancel()
    logger.info("Q Cluster %s has stopped.", humanize(cluster_id.hex))  # as django-q2 says it
