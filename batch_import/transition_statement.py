"""A held item's transition as one statement on PostgreSQL (``write``).

A transition of the item a worker holds (``transitions.transition_item(held=…)``) writes three
things: the item's row while it still has the version read (returning its run's state, the
cancel check), its event (with the start of the stage it moves to, when the worker goes on
into it), and its change of the run's counts to its counter shard. As a transaction that is
``BEGIN``, three statements and ``COMMIT``: five round trips, each a wait of the item's thread
for the server and then for the interpreter's lock. On PostgreSQL the three are one
data-modifying ``WITH`` (its own transaction outside a caller's): the events and the shard are
written only from the item's row the ``UPDATE`` returned, so a row that has changed since it
was read writes nothing, and the transition goes the locked way as before. The start of the
next stage is written unless the run's state, read by the same statement, is cancelled.

The item's ``UPDATE`` is the one the transaction runs (``transitions.HELD_ITEM_ROW``, a
``GuardedUpdate``), held in the ``WITH``. The statement's text is made once per shape (that
``UPDATE``'s, whether a stage starts, whether the counts change) and prepared on the server
like the worker's other statements of a fixed plan (``fixed_plan_cursor``). SQLite has no
data-modifying ``WITH``: the transaction there, as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field

from batch_import.models import (
    RUN_COUNT_COLUMN,
    RUN_COUNT_COLUMNS,
    ImportRun,
    ImportRunCounterShard,
    ImportRunItem,
    ImportRunItemEvent,
)
from relay_project.compiled_reads import CompiledInsert, GuardedUpdate, fixed_plan_cursor


def applies(*, savepoint: bool) -> bool:
    """Whether a held item's transition is written by ``write``: on PostgreSQL, outside a
    transaction or inside a caller's that stands or falls with it (no savepoint asked for)."""
    connection = transaction.get_connection()
    return connection.vendor == "postgresql" and not (connection.in_atomic_block and savepoint)


@dataclass(frozen=True)
class Written:
    """What the statement read as it wrote: the run's state, and the counts of items and of
    finished ones of the item's shard as written (None when no count changed, or the run has
    no shards yet: never counted)."""

    run_state: str
    shard_total: int | None
    shard_done: int | None


# The statement's text per database and shape, made once per process.
_TEXTS: dict[tuple, str] = {}


def write(
    item: ImportRunItem,
    *,
    values: Mapping[str, Any],
    expected: Mapping[str, Any],
    event: Mapping[str, Any],
    started: Mapping[str, Any] | None,
    counts: Mapping[str, int] | None,
    shard: int,
    row_update: GuardedUpdate,
    events: CompiledInsert,
) -> Written | None:
    """Write ``values`` on the item's row while it holds ``expected`` (its version; the
    lease's owner: ``row_update``, whose one value returned is the run's state), ``event``
    and, unless the run is cancelled, ``started`` (rows as ``events.insert`` takes them), and
    add ``counts`` (shard column → step) to the item's ``shard`` of its run's counts. None
    when the row no longer holds ``expected``, or only ``objects.create`` writes the events
    as they must be written (a receiver of their save signals): nothing written, the
    caller's transaction decides."""
    try:
        fields, row = events.prepared_row(**event)
        started_row = None if started is None else events.prepared_row(**started)[1]
    except NotImplementedError:
        return None
    update, params = row_update.statement(item.pk, values=values, expected=expected)
    params.extend(row)
    if started_row is not None:
        params.extend(started_row)
        params.append(ImportRun.State.CANCELLED)
    if counts is not None:
        params.extend(counts[column] for column in RUN_COUNT_COLUMNS)
        params.extend((item.run_id, shard))
    connection = transaction.get_connection()
    key = (connection.alias, update, started is not None, counts is not None)
    text = _TEXTS.get(key)
    if text is None:
        text = _TEXTS.setdefault(key, _text(connection, *key[1:], fields))
    with transaction.mark_for_rollback_on_error(), fixed_plan_cursor(connection) as cursor:
        cursor.execute(text, params)
        row = cursor.fetchone()
    return None if row is None else Written(*row)


def _text(
    connection: BaseDatabaseWrapper,
    update: str,
    started: bool,
    counted: bool,
    event_fields: tuple[Field, ...],
) -> str:
    """The statement: the item's row (``update``), then its events and its shard from the
    row written."""
    quote = connection.ops.quote_name
    parts = [f"written (run_state) AS ({update})"]

    # Each value cast to its column's type: a SELECT's parameters have none of their own.
    values = ", ".join(f"CAST(%s AS {f.db_type(connection)})" for f in event_fields)
    rows = f"SELECT {values} FROM written"
    if started:
        rows += f" UNION ALL SELECT {values} FROM written WHERE run_state <> %s"
    columns = ", ".join(quote(f.column) for f in event_fields)
    events = quote(ImportRunItemEvent._meta.db_table)
    parts.append(f"events AS (INSERT INTO {events} ({columns}) {rows})")

    total, done = (quote(RUN_COUNT_COLUMN[name]) for name in ("total", "done"))
    if not counted:
        return f"WITH {', '.join(parts)} SELECT run_state, NULL, NULL FROM written"
    shards = quote(ImportRunCounterShard._meta.db_table)
    steps = ", ".join(f"{quote(c)} = {quote(c)} + %s" for c in RUN_COUNT_COLUMNS)
    shard_run, shard = (
        quote(ImportRunCounterShard._meta.get_field(name).column) for name in ("run", "shard")
    )
    parts.append(
        f"counted AS (UPDATE {shards} SET {steps} WHERE {shard_run} = %s AND {shard} = %s "
        f"AND EXISTS (SELECT 1 FROM written) RETURNING {total}, {done})"
    )
    return (
        f"WITH {', '.join(parts)} SELECT written.run_state, counted.{total}, counted.{done} "
        "FROM written LEFT JOIN counted ON TRUE"
    )
