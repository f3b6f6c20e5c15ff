"""Hand items to the django-q2 workers (ORM broker by default, Redis when REDIS_URL is set)."""

from __future__ import annotations

from collections.abc import Iterable

from django_q.tasks import async_task

ADVANCE_TASK = "batch_import.tasks.advance_item"


def enqueue_items(item_ids: Iterable[str]) -> None:
    """One task per item; the worker's lease makes a duplicate delivery harmless."""
    for item_id in item_ids:
        async_task(ADVANCE_TASK, item_id, group="batch_import")
