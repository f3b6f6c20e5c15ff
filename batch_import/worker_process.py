"""What a django-q2 worker process sets up for itself when it starts (``post_spawn``), and
hands back after each task (``post_execute_in_worker``)."""

from __future__ import annotations

import sys

from django.conf import settings

from relay_project import limits


def tune_worker_process(sender=None, **kwargs) -> None:
    """A worker process runs many items side by side, each in a thread that mostly waits on
    the network. Python hands the GIL to a waiting thread every 5 ms by default; with tens of
    threads that want it, those hand-overs cost CPU and the work none: a longer interval
    (``RELAY_WORKER_SWITCH_INTERVAL``) lets a thread finish its burst. A thread that waits on
    the network or the database gives the GIL up at once, as before."""
    sys.setswitchinterval(settings.RELAY_WORKER_SWITCH_INTERVAL)


def give_kept_places_back(sender=None, **kwargs) -> None:
    """After each task (``post_execute_in_worker``): the places of the concurrency bounds the
    process keeps for its next holders (``relay_project.limits``) go back to the backend now,
    not at its keeper's next turn, which a worker stopped or recycled right after its task
    would never take (a place in Redis then stays taken until its lease lapses)."""
    limits.give_kept_places_back()
