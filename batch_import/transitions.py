"""The one way an item changes stage or status: ALLOWED tables, a row lock, one event.

Recipe (STYLE.md): lock the row, return early when nothing changes, check the tables, save with
``update_fields``, append exactly one event in the same transaction, then bring the run's state
and counters in step through ``derive_run_state_from_counts``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from batch_import.errors import AccessStatusWriteForbidden, InvalidTransition
from batch_import.models import (
    ImportRun,
    ImportRunItem,
    ImportRunItemEvent,
    LegacyImportBatch,
    RunRollback,
)
from batch_import.run_state import (
    RunSummary,
    derive_run_state_from_counts,
    item_has_warning,
    legacy_batch_status,
)
from batch_import.selectors import run_counts
from relay_project.messages import Msg, english, stored

Stage = ImportRunItem.Stage
Confirmation = ImportRunItem.ConfirmationStatus
Access = ImportRunItem.AccessStatus
EventType = ImportRunItemEvent.EventType


class Writer(enum.Enum):
    """Who asks for a change. Only VALIDATION may write ``access_status``; only OPERATOR may
    send a finished item back (retry)."""

    PIPELINE = "pipeline"
    VALIDATION = "validation"
    OPERATOR = "operator"


# (from, to) stage moves. Same-stage updates (retry scheduling, field writes) are always fine.
ALLOWED_STAGE_MOVES: frozenset[tuple[str, str]] = frozenset(
    {
        (Stage.PROBE, Stage.PROVISION),
        (Stage.PROBE, Stage.DONE),
        (Stage.PROVISION, Stage.CONFIRM),
        (Stage.PROVISION, Stage.DONE),
        (Stage.CONFIRM, Stage.VALIDATE),
        (Stage.CONFIRM, Stage.DONE),
        (Stage.VALIDATE, Stage.DONE),
    }
)
# Retry: an operator sends a finished item back to the stage that failed.
OPERATOR_STAGE_MOVES: frozenset[tuple[str, str]] = frozenset(
    {(Stage.DONE, s) for s in (Stage.PROBE, Stage.PROVISION, Stage.CONFIRM, Stage.VALIDATE)}
)
ALLOWED_CONFIRMATION_MOVES: frozenset[tuple[str, str]] = frozenset(
    {
        (Confirmation.PENDING, Confirmation.CONFIRMED),
        (Confirmation.PENDING, Confirmation.ADVISORY),
        (Confirmation.PENDING, Confirmation.FAILED),
        # A retry re-opens confirmation.
        (Confirmation.CONFIRMED, Confirmation.PENDING),
        (Confirmation.ADVISORY, Confirmation.PENDING),
        (Confirmation.FAILED, Confirmation.PENDING),
    }
)
# Validation gives a verdict; a verdict never goes back to "unknown".
ALLOWED_ACCESS_MOVES: frozenset[tuple[str, str]] = frozenset(
    (src, dst)
    for src in Access.values
    for dst in (Access.ACTIVE, Access.DEGRADED, Access.BROKEN)
    if src != dst
)

# Text fields stored twice: English, and as a translatable message in ``<name>_i18n``.
TRANSLATABLE_FIELDS = ("last_error",)

# Fields a transition may not write through ``fields=`` (they have their own checks).
GUARDED_FIELDS = frozenset(
    {"current_stage", "confirmation_status", "access_status", "has_warning", "item_id", "run"}
)


def check_stage_move(src: str, dst: str, *, writer: Writer) -> None:
    if src == dst or (src, dst) in ALLOWED_STAGE_MOVES:
        return
    if writer is Writer.OPERATOR and (src, dst) in OPERATOR_STAGE_MOVES:
        return
    raise InvalidTransition(f"stage {src} → {dst} is not allowed for {writer.value}")


def check_confirmation_move(src: str, dst: str) -> None:
    if src != dst and (src, dst) not in ALLOWED_CONFIRMATION_MOVES:
        raise InvalidTransition(f"confirmation_status {src} → {dst} is not allowed")


def check_access_move(src: str, dst: str, *, writer: Writer) -> None:
    if writer is not Writer.VALIDATION:
        raise AccessStatusWriteForbidden("only the validation stage may set access_status")
    if src != dst and (src, dst) not in ALLOWED_ACCESS_MOVES:
        raise InvalidTransition(f"access_status {src} → {dst} is not allowed")


def transition_item(
    *,
    item_id: str,
    event_type: str,
    message: str | Msg = "",
    stage: str | None = None,
    confirmation_status: str | None = None,
    access_status: str | None = None,
    fields: Mapping[str, Any] | None = None,
    payload: Mapping[str, Any] | None = None,
    writer: Writer = Writer.PIPELINE,
) -> ImportRunItem:
    """Move one item and record why. Returns the item, unchanged and without an event when
    the request changes nothing. ``message`` and the ``TRANSLATABLE_FIELDS`` take a ``Msg``
    so pages and the API can show them in the reader's language."""
    fields = _with_translations(fields or {})
    forbidden = GUARDED_FIELDS & fields.keys()
    if "access_status" in forbidden:
        raise AccessStatusWriteForbidden("only the validation stage may set access_status")
    if forbidden:
        raise InvalidTransition(f"use the named arguments for {sorted(forbidden)}")

    with transaction.atomic():
        item = ImportRunItem.objects.select_for_update().get(pk=item_id)
        changes: dict[str, Any] = {}
        if stage is not None and stage != item.current_stage:
            check_stage_move(item.current_stage, stage, writer=writer)
            changes["current_stage"] = stage
        if confirmation_status is not None and confirmation_status != item.confirmation_status:
            check_confirmation_move(item.confirmation_status, confirmation_status)
            changes["confirmation_status"] = confirmation_status
        if access_status is not None:
            check_access_move(item.access_status, access_status, writer=writer)
            if access_status != item.access_status:
                changes["access_status"] = access_status
        for name, value in fields.items():
            if getattr(item, name) != value:
                changes[name] = value
        if not changes:
            return item

        event_stage = item.current_stage
        for name, value in changes.items():
            setattr(item, name, value)
        warning = item_has_warning(
            confirmation_status=item.confirmation_status,
            access_status=item.access_status,
            advisory_messages=item.advisory_messages,
        )
        if warning != item.has_warning:
            item.has_warning = warning
            changes["has_warning"] = warning
        item.save(update_fields=[*changes, "updated_at"])
        ImportRunItemEvent.objects.create(
            run_id=item.run_id,
            item=item,
            event_type=event_type,
            stage=event_stage,
            attempt=item.attempt,
            message=english(message),
            message_i18n=stored(message),
            payload=_event_payload(changes, payload),
        )
        refresh_run_state(run_id=item.run_id)
    return item


def record_event(
    *,
    item: ImportRunItem,
    event_type: str,
    message: str | Msg = "",
    payload: Mapping[str, Any] | None = None,
) -> ImportRunItemEvent:
    """Append an event that changes no state (a created resource, a detected duplicate)."""
    return ImportRunItemEvent.objects.create(
        run_id=item.run_id,
        item=item,
        event_type=event_type,
        stage=item.current_stage,
        attempt=item.attempt,
        message=english(message),
        message_i18n=stored(message),
        payload=dict(payload or {}),
    )


def refresh_run_state(*, run_id: str) -> ImportRun:
    """Recompute the run's state and counters from its items (same transaction as the caller)."""
    with transaction.atomic():
        run = ImportRun.objects.select_for_update().get(pk=run_id)
        summary = derive_run_state_from_counts(
            run_counts(run_id), mode=run.mode, cancelled=run.state == ImportRun.State.CANCELLED
        )
        updates = {
            name: value for name, value in vars(summary).items() if getattr(run, name) != value
        }
        terminal = summary.state in ImportRun.TERMINAL_STATES
        if terminal and run.finished_at is None:
            updates["finished_at"] = timezone.now()
            if not run.is_preview:
                hand_over_run(run.run_id)
        elif not terminal and run.finished_at is not None:
            updates["finished_at"] = None
        if updates:
            for name, value in updates.items():
                setattr(run, name, value)
            run.save(update_fields=[*updates, "updated_at"])
            sync_legacy_batch(run_id, summary)
    return run


def sync_legacy_batch(run_id: str, summary: RunSummary) -> None:
    """The run's V1 batch follows its outcome (seed 002 §4.2), in one UPDATE; once a rollback
    started, the rollback writes the status instead."""
    status = legacy_batch_status(summary)
    (
        LegacyImportBatch.objects.filter(run_id=run_id)
        .exclude(status=status)
        .exclude(run_id__in=RunRollback.objects.filter(run_id=run_id).values("run_id"))
        .update(status=status, updated_at=timezone.now())
    )


def hand_over_run(run_id: str) -> None:
    """A run finished (or was rolled back): what happens after an import lives above this app,
    so the run goes to it by task name, once the caller's transaction commits."""
    if settings.RELAY_AFTER_RUN_TASK:
        transaction.on_commit(
            partial(async_task, settings.RELAY_AFTER_RUN_TASK, run_id, group="after_import")
        )


def _with_translations(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Each translatable field as its English text plus its message (None for plain text)."""
    written = dict(fields)
    for name in TRANSLATABLE_FIELDS:
        if name in written:
            written[f"{name}_i18n"] = stored(written[name])
            written[name] = english(written[name])
    return written


def _event_payload(changes: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict:
    payload: dict[str, Any] = {}
    for name in ("current_stage", "confirmation_status", "access_status"):
        if name in changes:
            payload[name] = changes[name]
    payload.update(extra or {})
    return payload
