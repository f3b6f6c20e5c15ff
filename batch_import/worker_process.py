"""What a django-q2 worker process sets up for itself when it starts (``post_spawn``)."""

from __future__ import annotations

import sys

from django.conf import settings


def tune_worker_process(sender=None, **kwargs) -> None:
    """A worker process runs many items side by side, each in a thread that mostly waits on
    the network. Python hands the GIL to a waiting thread every 5 ms by default; with tens of
    threads that want it, those hand-overs cost CPU and the work none: a longer interval
    (``RELAY_WORKER_SWITCH_INTERVAL``) lets a thread finish its burst. A thread that waits on
    the network or the database gives the GIL up at once, as before."""
    sys.setswitchinterval(settings.RELAY_WORKER_SWITCH_INTERVAL)
