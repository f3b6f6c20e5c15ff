"""Helpers every stage uses: failing an item, scheduling a retry, reading the run's host."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from batch_import.models import ImportRunItem
from batch_import.retry import next_retry_at
from batch_import.transitions import EventType, transition_item

Stage = ImportRunItem.Stage


def fail_item(
    item: ImportRunItem,
    *,
    error: str,
    payload: dict[str, Any] | None = None,
    fields: dict[str, Any] | None = None,
) -> ImportRunItem:
    """End an item at its current stage: done, with the stage and the reason recorded."""
    return transition_item(
        item_id=item.item_id,
        stage=Stage.DONE,
        event_type=EventType.ERROR,
        message=error,
        fields={
            "last_error_stage": item.current_stage,
            "last_error": error,
            "next_retry_at": None,
            **(fields or {}),
        },
        payload=payload,
    )


def schedule_retry(
    item: ImportRunItem,
    *,
    attempt: int,
    reason: str,
    extra_counter: str | None = None,
    payload: dict[str, Any] | None = None,
) -> ImportRunItem:
    """Try this stage again after an exponential, jittered delay (a retry_scheduled event)."""
    now = timezone.now()
    when, delay = next_retry_at(now, attempt)
    fields: dict[str, Any] = {
        "retry_count": item.retry_count + 1,
        "last_retry_at": now,
        "next_retry_at": when,
        "last_error": reason,
    }
    if extra_counter:
        fields[extra_counter] = getattr(item, extra_counter) + 1
    return transition_item(
        item_id=item.item_id,
        event_type=EventType.RETRY_SCHEDULED,
        message=reason,
        fields=fields,
        payload={"delay_ms": int(delay * 1000), "attempt": attempt, **(payload or {})},
    )


def add_advisories(item: ImportRunItem, *codes: str) -> list[str]:
    return list(dict.fromkeys([*item.advisory_messages, *codes]))


def stage_retries(item: ImportRunItem) -> int:
    """Retries already scheduled in the item's current stage during this attempt."""
    return item.events.filter(
        event_type=EventType.RETRY_SCHEDULED, stage=item.current_stage, attempt=item.attempt
    ).count()
