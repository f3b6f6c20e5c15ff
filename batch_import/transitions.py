"""The one way an item changes stage or status: ALLOWED tables, a row lock, one event.

Recipe (STYLE.md): lock the row, return early when nothing changes, check the tables, save with
``update_fields``, append exactly one event in the same transaction, then bring the run's state
and counters in step through ``derive_run_state_from_counts``.

Run counters are kept incrementally. An item's share of its run's counts is a pure function of
its own fields (``run_state.item_counts``), so a transition adds ``after - before`` to the
run's counter columns in one ``UPDATE … SET n = n + d`` that returns the run's row
(``compiled_reads.UpdateReturning``): the same few statements and rows whatever the run's size,
where recounting read every item of the run.
Transitions that change no count (most stage moves) neither lock nor write the run row. Those that
do take its row lock with that UPDATE, as the last step before commit, and never read items
under it; the one that makes the run terminal is the one that sees it terminal under that lock,
so ``finished_at`` is set and the run handed over exactly once. ``refresh_run_state`` is the
full recount (run creation, cancel, and a run whose counters were never counted), and
``selectors.run_counts`` stays the oracle the tests compare the counters with.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from functools import partial
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import JSONField
from django.utils import timezone
from django_q.tasks import async_task

from batch_import import leases
from batch_import.errors import AccessStatusWriteForbidden, InvalidTransition
from batch_import.models import (
    ImportRun,
    ImportRunItem,
    ImportRunItemEvent,
    LegacyImportBatch,
    RunRollback,
)
from batch_import.run_state import (
    ItemSnapshot,
    RunCounts,
    RunSummary,
    derive_run_state_from_counts,
    item_counts,
    item_has_warning,
    legacy_batch_status,
)
from batch_import.selectors import run_counts
from relay_project.compiled_reads import CompiledGet, CompiledInsert, UpdateReturning
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


# The transition's read: the item under its row lock, with its run. Compiled once per
# connection (four of these per item: compiling the wide SELECT was most of its CPU).
LOCKED_ITEM_WITH_RUN = CompiledGet(
    lambda: ImportRunItem.objects.select_for_update(of=("self",)).select_related("run")
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
    savepoint: bool = True,
) -> ImportRunItem:
    """Move one item and record why. Returns the item, unchanged and without an event when
    the request changes nothing. ``message`` and the ``TRANSLATABLE_FIELDS`` take a ``Msg``
    so pages and the API can show them in the reader's language. ``savepoint=False`` inside a
    caller's transaction whose work stands or falls with the transition: no savepoint around
    it (two statements), and a failed transition undoes the caller's work too."""
    fields = _with_translations(fields or {})
    forbidden = GUARDED_FIELDS & fields.keys()
    if "access_status" in forbidden:
        raise AccessStatusWriteForbidden("only the validation stage may set access_status")
    if forbidden:
        raise InvalidTransition(f"use the named arguments for {sorted(forbidden)}")

    with transaction.atomic(savepoint=savepoint):
        # The run comes along (unlocked) so the worker, between stages, sees whether it was
        # cancelled without reading both rows again (``tasks.advance_item``).
        item = LOCKED_ITEM_WITH_RUN.get(item_id)
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
        ending = leases.ending_with(item) if changes.get("current_stage") == Stage.DONE else None
        if ending is not None:
            # A finished item holds no lease: the worker's own ends with this UPDATE.
            changes.update(lease_owner=None, lease_until=None)

        event_stage = item.current_stage
        counted_before = item_counts(_snapshot(item))
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
        _write_item(item, changes)
        if ending is not None:
            ending.ends_with_commit()
        _append_event(item, event_type, event_stage, message, _event_payload(changes, payload))
        delta = item_counts(_snapshot(item)) - counted_before
        if delta:
            run = add_to_run_counts(run_id=item.run_id, delta=delta)
            for name in SETTLE_FIELDS:
                setattr(item.run, name, getattr(run, name))
    _as_read(item, changes)
    return item


def record_event(
    *,
    item: ImportRunItem,
    event_type: str,
    message: str | Msg = "",
    payload: Mapping[str, Any] | None = None,
) -> ImportRunItemEvent:
    """Append an event that changes no state (a created resource, a detected duplicate)."""
    return _append_event(item, event_type, item.current_stage, message, dict(payload or {}))


# Writes a transition's changes to the item's row (four times per item), compiled once per
# connection and set of changed fields.
ITEM_ROW = UpdateReturning(lambda: ImportRunItem.objects.all(), returning=())


def _write_item(item: ImportRunItem, changes: Mapping[str, Any]) -> None:
    """``item.save(update_fields=[*changes, "updated_at"])``: each field's value as ``save``
    takes it (``pre_save``: ``updated_at`` is now)."""
    fields = [ImportRunItem._meta.get_field(name) for name in (*changes, "updated_at")]
    values = {field.name: field.pre_save(item, False) for field in fields}
    if ITEM_ROW.update(item.pk, values=values) is None:
        raise DatabaseError("Save with update_fields did not affect any rows.")


# The worker appends about twelve events per item: their INSERT is compiled once per process.
NEW_EVENT = CompiledInsert(ImportRunItemEvent)


def _append_event(
    item: ImportRunItem, event_type: str, stage: str, message: str | Msg, payload: dict
) -> ImportRunItemEvent:
    return NEW_EVENT.create(
        run_id=item.run_id,
        item=item,
        event_type=event_type,
        stage=stage,
        attempt=item.attempt,
        message=english(message),
        message_i18n=stored(message),
        payload=payload,
    )


# RunCounts field → the ImportRun column that keeps it.
COUNTER_COLUMNS: dict[str, str] = {
    "total": "total_items",
    "done": "completed_items",
    "active": "active_items",
    "degraded": "degraded_items",
    "broken": "broken_items",
    "warnings": "warning_items",
    "ended_by_a_stage": "stage_ended_items",
    "advisory": "advisory_items",
}


# What settling a run reads from its row.
SETTLE_FIELDS = (
    "mode",
    "state",
    "is_preview",
    "finished_at",
    "counters_ready",
    *COUNTER_COLUMNS.values(),
)

# Adds a transition's change to a counted run's counters and returns what settling it reads.
COUNTED_RUN = UpdateReturning(
    lambda: ImportRun.objects.filter(counters_ready=True), returning=SETTLE_FIELDS
)


def stored_counts(run: ImportRun) -> RunCounts:
    """The counts kept on the run row."""
    return RunCounts(**{name: getattr(run, column) for name, column in COUNTER_COLUMNS.items()})


def refresh_run_state(*, run_id: str) -> ImportRun:
    """Recount the run's items and bring its counters and state in step (same transaction as
    the caller). One aggregate over the run's items: for run creation, cancel and repair; an
    item transition adds its own change instead (``add_to_run_counts``)."""
    with transaction.atomic(savepoint=False):
        run = ImportRun.objects.select_for_update().get(pk=run_id)
        _settle(run, run_counts(run_id))
    return run


def add_to_run_counts(*, run_id: str, delta: RunCounts) -> ImportRun:
    """Add one transition's change to the run's counters, then settle its state (same
    transaction as the caller). The UPDATE adds to the stored values under the row lock it
    takes, so concurrent transitions never lose one another's counts; the row as it left it
    (returned by the UPDATE, or read back under that lock) shows the transaction that
    completes the run that it is the one."""
    with transaction.atomic(savepoint=False):
        run = COUNTED_RUN.update(
            run_id,
            values={"updated_at": timezone.now()},
            add={
                column: step
                for name, column in COUNTER_COLUMNS.items()
                if (step := getattr(delta, name))
            },
        )
        if run is None:  # never counted (a run written by other means): count it once
            return refresh_run_state(run_id=run_id)
        _settle(run, stored_counts(run), counted=True)
    return run


def _settle(run: ImportRun, counts: RunCounts, *, counted: bool = False) -> None:
    """Store ``counts`` and the state they derive on the run (what differs only); the run that
    becomes terminal gets ``finished_at`` and is handed over, once. The caller holds the row;
    ``counted`` says it already stored counts that changed."""
    summary = derive_run_state_from_counts(
        counts, mode=run.mode, cancelled=run.state == ImportRun.State.CANCELLED
    )
    stored = {
        **vars(summary),
        "advisory_items": counts.advisory,
        "stage_ended_items": counts.ended_by_a_stage,
        "counters_ready": True,
    }
    updates = {name: value for name, value in stored.items() if getattr(run, name) != value}
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
    if updates or (counted and terminal):
        # The V1 status follows the state, and the counters once the run has ended.
        sync_legacy_batch(run.run_id, summary)


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


def _as_read(item: ImportRunItem, changes: Mapping[str, Any]) -> None:
    """Make the item written as a read of its row would return it, so callers may go on with
    it (the worker's next stage does): the JSON values as the database hands them back (a
    tuple comes back a list), and the stored ``problem_rank`` read again when asked for."""
    for name in changes:
        field = ImportRunItem._meta.get_field(name)
        value = getattr(item, field.attname)
        if isinstance(field, JSONField) and value is not None:
            setattr(item, name, json.loads(json.dumps(value, cls=field.encoder), cls=field.decoder))
    item.__dict__.pop("problem_rank", None)  # the database derives it from what changed


def _snapshot(item: ImportRunItem) -> ItemSnapshot:
    return ItemSnapshot(
        current_stage=item.current_stage,
        confirmation_status=item.confirmation_status,
        access_status=item.access_status,
        has_warning=item.has_warning,
        last_error_stage=item.last_error_stage,
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
