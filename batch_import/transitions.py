"""The one way an item changes stage or status: ALLOWED tables, a row lock, one event.

Recipe (STYLE.md): lock the row, return early when nothing changes, check the tables, save with
``update_fields``, append exactly one event in the same transaction, then bring the run's state
and counters in step through ``derive_run_state_from_counts``. (When the worker goes on into
the stage a transition moves the item to, that stage's start event is written with it, in the
same INSERT: ``starting``.)

The worker passes the item it read before the stage (``held``): every transition writes the
row's next ``version``, so while the row still has the version the worker read, the item as
read is the row as it is, and the change is checked against it and written in one
``UPDATE … WHERE version = …`` that also returns the run's state (the worker's cancel check),
without reading and locking the row first. A row that has changed since (a cancel, a rollback,
another worker after a lost lease) fails that condition and the transition goes the recipe's
way, deciding on the row as it is.
On PostgreSQL that UPDATE, the events and the counter step below are one statement
(``transition_statement``): no transaction of five round trips around them.

Run counts are kept incrementally, in counter shards (``models.ImportRunCounterShard``). An
item's share of its run's counts is a pure function of its own fields (``run_state.item_counts``),
so a transition adds ``after - before`` to its shard's row in one ``UPDATE … SET n = n + d``:
the same few statements and rows whatever the run's size, and no lock on the run's row, so the
run's items never wait for one another. Transitions that change no count (most stage moves)
write no counter at all.

The run's state follows from the counts (``derive_run_state_from_counts``), settled once the
transition has committed (``settle_run``): it reads the committed counts, and takes the run's
row only when the state they derive differs from the stored one. The transaction that commits
last reads every count, so the run that ends is seen ending; the row lock makes ``finished_at``
set and the run handed over exactly once. ``refresh_run_state`` is the full recount (run
creation, cancel, a run never counted), and ``selectors.run_counts`` stays the oracle the tests
compare the counters with.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.db import DatabaseError, router, transaction
from django.db.models import Exists, F, JSONField, OuterRef, QuerySet, Subquery, Sum
from django.utils import timezone
from django_q.tasks import async_task

from batch_import import leases, transition_statement
from batch_import.errors import AccessStatusWriteForbidden, InvalidTransition
from batch_import.models import (
    RUN_COUNT_COLUMN,
    RUN_COUNT_COLUMNS,
    ImportRun,
    ImportRunCounterShard,
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
from batch_import.selectors import run_counts_by_shard
from relay_project.compiled_reads import (
    CompiledGet,
    CompiledInsert,
    CompiledRead,
    CompiledUpdatePks,
    CompiledValues,
    GuardedUpdate,
    Slot,
    UpdateReturning,
    returns_rows_from_update,
)
from relay_project.ids import new_event_id
from relay_project.messages import Msg, english, stored

logger = logging.getLogger(__name__)

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


RUN = ImportRunItem._meta.get_field("run")
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
    held: ImportRunItem | None = None,
    starting: Callable[[ImportRunItem], str | Msg] | None = None,
) -> ImportRunItem:
    """Move one item and record why. Returns the item, unchanged and without an event when
    the request changes nothing. ``message`` and the ``TRANSLATABLE_FIELDS`` take a ``Msg``
    so pages and the API can show them in the reader's language. ``savepoint=False`` inside a
    caller's transaction whose work stands or falls with the transition: no savepoint around
    it (two statements), and a failed transition undoes the caller's work too.

    ``held``: the item as the caller read it, with its run (the worker's, under its lease).
    While its row still has the version read, the change is checked against it and written
    in one statement that also brings the run's state (``HELD_ITEM_ROW``), and ``held`` is
    the item returned; else the row is read under its lock, as without it.

    ``starting``: the caller goes on into the stage the item moves to at once (the worker,
    between two stages): that stage's start, its ``stage_started`` event with the message
    ``starting(item)`` gives the moved item, is written with this transition's event, in one
    INSERT and one commit, and the item returned says so (``start_recorded``)."""
    fields = _with_translations(fields or {})
    forbidden = GUARDED_FIELDS & fields.keys()
    if "access_status" in forbidden:
        raise AccessStatusWriteForbidden("only the validation stage may set access_status")
    if forbidden:
        raise InvalidTransition(f"use the named arguments for {sorted(forbidden)}")
    request = partial(
        _planned,
        stage=stage,
        confirmation_status=confirmation_status,
        access_status=access_status,
        fields=fields,
        writer=writer,
    )

    told = _Told(event_type, message, payload, starting)
    # Decided on the held item before the transaction, whose first statement then writes.
    plan = _held_plan(held, item_id, request)
    if plan is not None and transition_statement.applies(savepoint=savepoint):
        item = _written_in_one_statement(held, plan, told)
        if item is not None:
            return item
        plan = None  # the row has changed since it was read: the locked read decides
    with _locking_at_first_write(plan is not None), transaction.atomic(savepoint=savepoint):
        item = None if plan is None else _written_as_held(held, plan)
        if item is None:
            # The run comes along (unlocked) so the worker, between stages, sees whether it
            # was cancelled without reading both rows again (``tasks.advance_item``).
            item = LOCKED_ITEM_WITH_RUN.get(item_id)
            plan = request(item)
            if plan is None:
                return item
            _apply(item, plan)
            _write_item(item, plan.changes)
        if plan.ending is not None:
            plan.ending.ends_with_commit()
        event, started = told.events(item, plan)
        if item.run.state == ImportRun.State.CANCELLED:
            started = None  # as the run's state read with the write says: the worker stops
        if started is None:
            NEW_EVENT.insert(**event)
        else:
            NEW_EVENT.insert_many([event, started])
        delta = item_counts(_snapshot(item)) - plan.counted_before
        running_on = bool(delta) and add_to_run_counts(item, delta)
    return _after_written(item, plan, delta, running_on, started=started is not None)


def _after_written(
    item: ImportRunItem, plan: _Plan, delta: RunCounts, running_on: bool, *, started: bool
) -> ImportRunItem:
    """``item`` once its transition is written: its run settled where the counts may have
    ended it, and the item as a read would return it."""
    if delta and not running_on:
        _settle_after_transition(item.run_id)
    _as_read(item, plan.changes)
    if started:
        item._start_recorded = (item.current_stage, item.version)
    return item


@dataclass(frozen=True)
class _Told:
    """What a transition's events say: its type, message and payload, and what the start of
    the stage it moves to says when the caller goes on into it (``starting``)."""

    event_type: str
    message: str | Msg
    payload: Mapping[str, Any] | None
    starting: Callable[[ImportRunItem], str | Msg] | None

    def events(
        self, item: ImportRunItem, plan: _Plan
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The fields of the transition's event, and of the ``stage_started`` event of the
        stage ``plan`` moved the item into (``item`` as written) when the caller goes on into
        it — to be written unless the run has been cancelled — else None."""
        changes = plan.changes
        event = _event_fields(
            item,
            self.event_type,
            plan.event_stage,
            self.message,
            _event_payload(changes, self.payload),
        )
        stage = changes.get("current_stage")
        if self.starting is None or stage is None or stage == Stage.DONE:
            return event, None
        if item.next_retry_at is not None and item.next_retry_at > timezone.now():
            return event, None  # not due yet: its start is written when it starts
        started = _event_fields(item, EventType.STAGE_STARTED, stage, self.starting(item), {})
        # Ids in the order written: the timeline orders events of one instant by id.
        event["event_id"], started["event_id"] = sorted((new_event_id(), new_event_id()))
        return event, started


def start_recorded(item: ImportRunItem) -> bool:
    """Whether the start of the item's current stage was written by the transition that
    moved it there (``transition_item(starting=…)``) and nothing has changed it since (any
    later transition writes the next version: a retry of the stage starts it again)."""
    return item.__dict__.get("_start_recorded") == (item.current_stage, item.version)


@dataclass(frozen=True)
class _Plan:
    """What a transition writes on an item as it was read: the changed columns (with
    ``has_warning`` and the end of the lease when they follow), the lease it ends, the stage
    its event names and the item's share of its run's counts before."""

    changes: dict[str, Any]
    ending: leases.HeldLease | None
    event_stage: str
    counted_before: RunCounts


def _planned(
    item: ImportRunItem,
    *,
    stage: str | None,
    confirmation_status: str | None,
    access_status: str | None,
    fields: Mapping[str, Any],
    writer: Writer,
) -> _Plan | None:
    """The request checked against ``item`` (``InvalidTransition`` for a move the tables
    forbid); None when it changes nothing. ``item`` itself is left as it is."""
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
        return None
    ending = leases.ending_with(item) if changes.get("current_stage") == Stage.DONE else None
    if ending is not None:
        # A finished item holds no lease: the worker's own ends with this UPDATE.
        changes.update(lease_owner=None, lease_until=None)
    warning = item_has_warning(
        confirmation_status=changes.get("confirmation_status", item.confirmation_status),
        access_status=changes.get("access_status", item.access_status),
        advisory_messages=changes.get("advisory_messages", item.advisory_messages),
    )
    if warning != item.has_warning:
        changes["has_warning"] = warning
    return _Plan(
        changes=changes,
        ending=ending,
        event_stage=item.current_stage,
        counted_before=item_counts(_snapshot(item)),
    )


def _apply(item: ImportRunItem, plan: _Plan) -> None:
    for name, value in plan.changes.items():
        setattr(item, name, value)


def _held_plan(
    held: ImportRunItem | None, item_id: str, request: Callable[[ImportRunItem], _Plan | None]
) -> _Plan | None:
    """The request decided on ``held`` alone, to be written while its row has not changed
    (``_written_as_held``); None when the row must be read under its lock first: no held
    item, or one the request cannot be decided on alone (a move it refuses or no change: the
    row as it is now decides)."""
    if held is None or held.item_id != item_id or not RUN.is_cached(held):
        return None
    if not returns_rows_from_update(transaction.get_connection()):
        return None
    try:
        return request(held)
    except InvalidTransition:
        return None


def _locking_at_first_write(enabled: bool) -> AbstractContextManager:
    """On SQLite, a transaction whose first statement writes takes the write lock with it
    (``lock_at_first_write``): the held item's transition, its guarded UPDATE first."""
    connection = transaction.get_connection()
    if enabled and connection.vendor == "sqlite":
        return connection.lock_at_first_write()
    return nullcontext()


def _written_as_held(held: ImportRunItem, plan: _Plan) -> ImportRunItem | None:
    """``held`` with ``plan`` written on its row while the row has not changed since it was
    read (its version; the lease's owner too when the transition ends it); None when it has
    changed: the row must then be read under its lock."""
    written = _held_write(
        held,
        plan,
        lambda values, expected: HELD_ITEM_ROW.write(held.pk, values=values, expected=expected),
    )
    if written is None:  # the locked read decides
        return None
    held.run.state = written["run_state"]
    return held


def _written_in_one_statement(
    held: ImportRunItem, plan: _Plan, told: _Told
) -> ImportRunItem | None:
    """``transition_item`` of a held item as one statement (``transition_statement``): its
    row, its events and its shard's counts. None when the row has changed since it was read:
    nothing written, the locked read decides."""
    started = delta = None

    def write(values: dict[str, Any], expected: dict[str, Any]):
        nonlocal started, delta
        event, started = told.events(held, plan)
        delta = item_counts(_snapshot(held)) - plan.counted_before
        return transition_statement.write(
            held,
            values=values,
            expected=expected,
            event=event,
            started=started,
            counts=_columns(delta) if delta else None,
            shard=_shard_of(held),
            row_update=HELD_ITEM_ROW,
            events=NEW_EVENT,
        )

    written = _held_write(held, plan, write)
    if written is None:
        return None
    run = held.run
    run.state = written.run_state
    if plan.ending is not None:
        plan.ending.ends_with_commit()
    running_on = False
    if delta and written.shard_total is None:
        refresh_run_state(run_id=held.run_id)  # never counted: counted from its items now
    elif delta:
        running_on = _goes_on(run, written.shard_total, written.shard_done)
    started = started is not None and run.state != ImportRun.State.CANCELLED
    return _after_written(held, plan, delta, running_on, started=started)


def _held_write(held: ImportRunItem, plan: _Plan, write: Callable[[dict, dict], Any]) -> Any:
    """What ``write(values, expected)`` returns: it writes ``held`` with ``plan`` applied
    (the row's values, with the next version) while the row still holds ``expected`` (the
    version read; the lease's owner when the transition ends it), None when it does not.
    ``held`` is left as it was read unless written."""
    read = {name: getattr(held, name) for name in (*plan.changes, "updated_at", "version")}
    _apply(held, plan)
    expected = {"version": read["version"]}
    if plan.ending is not None:
        expected["lease_owner"] = plan.ending.worker_id
    written = None
    try:
        written = write(_row_values(held, plan.changes), expected)
    finally:
        if written is None:  # not written: ``held`` as it was read
            for name, value in read.items():
                setattr(held, name, value)
    return written


def record_event(
    *,
    item: ImportRunItem,
    event_type: str,
    message: str | Msg = "",
    payload: Mapping[str, Any] | None = None,
) -> None:
    """Append an event that changes no state (a created resource, a detected duplicate)."""
    _append_event(item, event_type, item.current_stage, message, dict(payload or {}))


def record_events(
    *, items: Iterable[ImportRunItem], event_type: str, message: str | Msg = ""
) -> None:
    """``record_event`` for many items at once, in batched INSERTs: a run of 10,000 entries
    records each one's acceptance."""
    NEW_EVENT.create_many(
        [
            ImportRunItemEvent(**_event_fields(item, event_type, item.current_stage, message, {}))
            for item in items
        ]
    )


# Writes a transition's changes to the item's row, compiled once per connection and set of
# changed fields: after the item's read under its row lock (``ITEM_ROW``), or in place of it
# while the row still has the version the worker read (``HELD_ITEM_ROW``, with the run's state
# as the read brought it).
ITEM_ROW = UpdateReturning(lambda: ImportRunItem.objects.all(), returning=())
HELD_ITEM_ROW = GuardedUpdate(
    ImportRunItem,
    returning=lambda: {
        "run_state": Subquery(ImportRun.objects.filter(pk=OuterRef("run_id")).values("state"))
    },
)


def _write_item(item: ImportRunItem, changes: Mapping[str, Any]) -> None:
    """``item.save(update_fields=[*changes, "updated_at", "version"])``."""
    if not ITEM_ROW.write(item.pk, values=_row_values(item, changes)):
        raise DatabaseError("Save with update_fields did not affect any rows.")


def _row_values(item: ImportRunItem, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Each changed field's value as ``save`` takes it (``pre_save``: ``updated_at`` is now),
    and the next version, set on ``item`` too."""
    names = (*changes, "updated_at")
    values = {name: ImportRunItem._meta.get_field(name).pre_save(item, False) for name in names}
    item.version = values["version"] = item.version + 1
    return values


# The worker appends about twelve events per item: their INSERT is compiled once per process.
NEW_EVENT = CompiledInsert(ImportRunItemEvent)


def _append_event(
    item: ImportRunItem, event_type: str, stage: str, message: str | Msg, payload: dict
) -> None:
    NEW_EVENT.insert(**_event_fields(item, event_type, stage, message, payload))


def _event_fields(
    item: ImportRunItem, event_type: str, stage: str, message: str | Msg, payload: dict
) -> dict[str, Any]:
    return {
        "run_id": item.run_id,
        "item": item,
        "event_type": event_type,
        "stage": stage,
        "attempt": item.attempt,
        "message": english(message),
        "message_i18n": stored(message),
        "payload": payload,
    }


# What settling a run reads from its row.
SETTLE_FIELDS = ("mode", "state", "is_preview", "finished_at")


def stored_counts(run: ImportRun) -> RunCounts:
    """The counts of a run read ``with_counts()``."""
    return RunCounts(**{name: getattr(run, column) for name, column in RUN_COUNT_COLUMN.items()})


def _summed_shards() -> QuerySet:
    field = ImportRunCounterShard._meta.get_field
    run_fields = [f"run__{name}" for name in SETTLE_FIELDS]
    return (
        ImportRunCounterShard.objects.filter(run_id=Slot("run_id", field("run")))
        .values(*run_fields)
        .annotate(**{f"sum_{column}": Sum(column) for column in RUN_COUNT_COLUMNS})
        .values_list(*run_fields, *(f"sum_{column}" for column in RUN_COUNT_COLUMNS))
        .order_by()
    )


def _locked_shards_with_run() -> QuerySet[ImportRunCounterShard]:
    field = ImportRunCounterShard._meta.get_field
    return (
        ImportRunCounterShard.objects.filter(run_id=Slot("run_id", field("run")))
        .select_related("run")
        .only(*RUN_COUNT_COLUMNS, *(f"run__{name}" for name in SETTLE_FIELDS))
        .select_for_update(of=("run",))
    )


# What settling a run reads, after every transition that changes a count, compiled once per
# process (the sums by the run's key: prepared on PostgreSQL, ``fixed_plan_cursor``): the run's
# state with the sums of its counter shards (one row); when the state
# changes, the shards' rows with the run's, locking the run's row (no lock is taken on a sum).
RUN_SUMS = CompiledValues(ImportRunCounterShard, _summed_shards, fixed_plan=True)
RUN_SHARDS_LOCKED = CompiledRead(ImportRunCounterShard, _locked_shards_with_run)
# The run's fields in the model's order, as ``Model.from_db`` takes a subset of them.
SETTLE_INIT = [
    f.attname for f in ImportRun._meta.concrete_fields if f.name in ("run_id", *SETTLE_FIELDS)
]


def _run_and_counts(run_id: str, *, locked: bool = False) -> tuple[ImportRun, RunCounts] | None:
    """The run (``SETTLE_FIELDS``) and the sums of its counter shards; None for a run never
    counted."""
    if not locked:
        summed = RUN_SUMS.rows(run_id=run_id)
        if not summed:
            return None
        [row] = summed
        read = dict(zip(SETTLE_FIELDS, row, strict=False)) | {"run_id": run_id}
        run = ImportRun.from_db(
            router.db_for_read(ImportRun), SETTLE_INIT, [read[name] for name in SETTLE_INIT]
        )
        sums = dict(zip(RUN_COUNT_COLUMNS, row[len(SETTLE_FIELDS) :], strict=True))
        return run, RunCounts(**{name: sums[column] for name, column in RUN_COUNT_COLUMN.items()})
    shards = RUN_SHARDS_LOCKED.rows(run_id=run_id)
    if not shards:
        return None
    counts = RunCounts(
        **{
            name: sum(getattr(shard, column) for shard in shards)
            for name, column in RUN_COUNT_COLUMN.items()
        }
    )
    return shards[0].run, counts


def shard_counts(run_id: str) -> RunCounts | None:
    """The run's counts: the sums of its counter shards (None for a run never counted)."""
    read = _run_and_counts(run_id)
    return read and read[1]


def refresh_run_state(*, run_id: str) -> ImportRun:
    """Recount the run's items into its counter shards, each shard's own items into its row,
    and bring its state in step (same transaction as the caller). One aggregate over the
    run's items: for run creation, cancel and repair; an item transition adds its own change
    instead (``add_to_run_counts``).

    The shards' rows are locked before the items are counted: a transition that has not
    committed yet adds its change after the recount, which did not see it."""
    with transaction.atomic(savepoint=False):
        run = ImportRun.objects.select_for_update().get(pk=run_id)
        shards = {
            shard.shard: shard
            for shard in ImportRunCounterShard.objects.select_for_update().filter(run_id=run_id)
        }
        by_shard = run_counts_by_shard(run_id)
        counts = sum(by_shard.values(), RunCounts())
        zero = dict.fromkeys(RUN_COUNT_COLUMNS, 0)
        rows = [
            ImportRunCounterShard(run_id=run_id, shard=n, **_columns(by_shard.get(n, RunCounts())))
            for n in range(ImportRunCounterShard.SHARDS)
        ]
        if shards:
            changed = [
                row
                for row in rows
                if any(getattr(shards[row.shard], c) != getattr(row, c) for c in zero)
            ]
            for row in changed:
                row.pk = shards[row.shard].pk
            ImportRunCounterShard.objects.bulk_update(changed, fields=list(zero))
        else:
            ImportRunCounterShard.objects.bulk_create(rows)
        if not run.counted_by_shard:
            run.counted_by_shard = True
            run.save(update_fields=["counted_by_shard"])
        _settle(run, counts)
    return run


def _columns(counts: RunCounts) -> dict[str, int]:
    """``counts`` as a counter shard's row values."""
    return {column: getattr(counts, name) for name, column in RUN_COUNT_COLUMN.items()}


def _add_to_shard_statement(shape: None) -> tuple[QuerySet, dict]:
    field = ImportRunCounterShard._meta.get_field
    shard = ImportRunCounterShard.objects.filter(
        run_id=Slot("run_id", field("run")), shard=Slot("shard", field("shard"))
    )
    # Every column, a step of 0 leaving it as it was: one statement for any change.
    return shard, {c: F(c) + Slot(c, field(c)) for c in RUN_COUNT_COLUMNS}


# A transition's change added to its shard's row (1-2 per item), compiled once per process.
# By the shard's key: prepared on PostgreSQL (``fixed_plan_cursor``). It returns the shard's
# counts of items and of finished ones as written.
ADD_TO_SHARD = CompiledUpdatePks(
    ImportRunCounterShard,
    _add_to_shard_statement,
    fixed_plan=True,
    returning=(RUN_COUNT_COLUMN["total"], RUN_COUNT_COLUMN["done"]),
)


def add_to_run_counts(item: ImportRunItem, delta: RunCounts) -> bool:
    """Add one transition's change to the counter shard of its item (same transaction as the
    caller): one UPDATE that locks that shard's row only. A run never counted is counted once
    from its items instead, this change included.

    Returns whether the run goes on as it is, so that settling it would change nothing: it
    was running and unfinished as the transition read it (a retried run's ``finished_at`` is
    cleared by a settle), and the shard, which counts exactly its own items
    (``counted_by_shard``), still counts one not done as written: while any item is not done
    the counts derive ``running``. The run's last item to finish finishes its shard too, and
    the transaction that commits last, whose UPDATE saw every other one, settles the run."""
    counted = ADD_TO_SHARD.update_rows(
        None,
        run_id=item.run_id,
        shard=_shard_of(item),
        **_columns(delta),
    )
    if not counted:
        refresh_run_state(run_id=item.run_id)
        return False
    [(_, total, done)] = counted
    return _goes_on(item.run, total, done)


def _shard_of(item: ImportRunItem) -> int:
    """The counter shard of the item's run that counts it."""
    return item.position % ImportRunCounterShard.SHARDS


def _goes_on(run: ImportRun, shard_total: int, shard_done: int) -> bool:
    """Whether settling ``run`` would change nothing, as its item's shard was written with
    these counts (``add_to_run_counts``)."""
    return (
        shard_done < shard_total
        and run.counted_by_shard
        and run.state == ImportRun.State.RUNNING
        and run.finished_at is None
    )


def settle_run(run_id: str) -> None:
    """Bring the run's state in step with its counts as this transaction reads them (once a
    transition committed: every count committed). Reads without a lock; the run's row is
    locked, and the counts read again under it, only when the state they derive differs from
    the stored one, or the run has ended (its V1 batch follows the counts)."""
    read = _run_and_counts(run_id)
    if read is None:  # never counted: its first transition that changes a count counts it
        return
    run, counts = read
    summary = derive_run_state_from_counts(
        counts, mode=run.mode, cancelled=run.state == ImportRun.State.CANCELLED
    )
    if summary.state == run.state and not run.is_terminal and run.finished_at is None:
        return
    with transaction.atomic(savepoint=False):
        read = _run_and_counts(run_id, locked=True)
        if read is not None:  # else deleted since the read above
            _settle(*read, counted=True)


def _settle_after_transition(run_id: str) -> None:
    if transaction.get_connection().in_atomic_block:
        # Inside a caller's transaction: settled now, for the caller to read, and again from
        # what is committed once it is (no other transaction reads its uncommitted counts).
        settle_run(run_id)
        transaction.on_commit(partial(_settle_committed, run_id))
    else:
        _settle_committed(run_id)


def _settle_committed(run_id: str) -> None:
    """The transition stands, committed, whatever happens here: a settle that fails is left
    to the sweep (``settle_ended_runs``) and the next transition of the run."""
    try:
        settle_run(run_id)
    except DatabaseError:
        logger.warning("run %s: settling its state failed; the sweep will", run_id, exc_info=True)


def settle_ended_runs() -> int:
    """Settle the runs still running whose counts say every item is done (a process that
    died between a transition's commit and its settle left them so): for the sweep, one
    read of the running runs. Returns how many."""
    ended = (
        ImportRun.objects.filter(state=ImportRun.State.RUNNING)
        .filter(Exists(ImportRunCounterShard.objects.filter(run=OuterRef("pk"))))
        .with_counts()
        .filter(completed_items__gte=F("total_items"))
    )
    run_ids = list(ended.values_list("pk", flat=True))
    for run_id in run_ids:
        settle_run(run_id)
    return len(run_ids)


def _settle(run: ImportRun, counts: RunCounts, *, counted: bool = False) -> None:
    """Store the state ``counts`` derive on the run (when it differs); the run that becomes
    terminal gets ``finished_at`` and is handed over, once. The caller holds the row;
    ``counted`` says counts changed (the V1 batch of an ended run follows them)."""
    summary = derive_run_state_from_counts(
        counts, mode=run.mode, cancelled=run.state == ImportRun.State.CANCELLED
    )
    updates = {"state": summary.state} if summary.state != run.state else {}
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
