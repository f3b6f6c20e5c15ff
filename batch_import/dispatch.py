"""Hand items to the django-q2 workers (ORM broker by default, Redis when REDIS_URL is set)."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

from django.conf import settings
from django.db import transaction
from django_q.tasks import async_task

ADVANCE_TASK = "batch_import.tasks.advance_items"


def enqueue_items(item_ids: Iterable[str]) -> None:
    """One task per RELAY_ITEMS_PER_WORKER items, which the worker advances side by side; each
    item's lease makes a duplicate delivery harmless.

    In one transaction, one commit for all: outside one, the ORM broker calls
    ``close_old_connections`` before each task it stores, which with connections that do not
    outlive a request (``RELAY_DB_CONN_MAX_AGE`` 0) closed the connection and opened another
    per task, ≈ 3 ms a task on SQLite (a run of 1,000 entries is 32 tasks at 32 items per
    worker)."""
    pending = iter(item_ids)
    with transaction.atomic():
        while chunk := list(islice(pending, settings.RELAY_ITEMS_PER_WORKER)):
            async_task(ADVANCE_TASK, chunk, group="batch_import")


ROLLBACK_TASK = "batch_import.tasks.resume_rollback"


def enqueue_rollbacks(run_ids: Iterable[str]) -> None:
    """One task per due rollback; its claim makes a duplicate delivery harmless. In one
    transaction, as ``enqueue_items``."""
    with transaction.atomic():
        for run_id in run_ids:
            async_task(ROLLBACK_TASK, run_id, group="batch_import")
