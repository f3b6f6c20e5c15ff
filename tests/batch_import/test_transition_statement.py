"""A held item's transition as one statement on PostgreSQL (``batch_import.transition_statement``):
the item's row, its events and its counter shard written by one data-modifying ``WITH``, with
the same rows as the transaction writes them (the oracle: the same transition inside a caller's
transaction, which takes the transaction's way), nothing written from a row changed since it
was read, and no start written for a cancelled run."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batch_import import leases
from batch_import.models import ImportRun, ImportRunCounterShard, ImportRunItem, ImportRunItemEvent
from batch_import.selectors import run_counts
from batch_import.transitions import (
    Writer,
    refresh_run_state,
    start_recorded,
    stored_counts,
    transition_item,
)
from tests.factories import ImportRunFactory, ImportRunItemFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's WITH"),
]


def held(item: ImportRunItem) -> ImportRunItem:
    """The item as the worker reads it before a stage: with its run."""
    return ImportRunItem.objects.select_related("run").get(pk=item.pk)


def counted(run: ImportRun) -> ImportRun:
    refresh_run_state(run_id=run.pk)
    return run


def item_writes(queries: CaptureQueriesContext) -> list[str]:
    """The first word of each statement that wrote an item, its events or its run's counts."""
    tables = ("import_run_items", "import_run_item_events", "import_run_counters")
    return [
        q["sql"].split(" ", 1)[0]
        for q in queries
        if not q["sql"].startswith("SELECT") and any(f'"{t}"' in q["sql"] for t in tables)
    ]


def shard_counts(run: ImportRun):
    return stored_counts(ImportRun.objects.with_counts().get(pk=run.pk))


def validated(item: ImportRunItem, *, stale: ImportRunItem | None = None, **kwargs):
    """The validation's transition of ``item`` held as read now, or as read before (``stale``)."""
    return transition_item(
        item_id=item.pk,
        held=stale or held(item),
        stage="done",
        access_status="active",
        event_type="validated",
        writer=Writer.VALIDATION,
        **kwargs,
    )


def row(item: ImportRunItem) -> dict:
    return ImportRunItem.objects.values().get(pk=item.pk)


def confirmed(item: ImportRunItem, **kwargs) -> ImportRunItem:
    """``item`` (held, in the confirm stage) moved on to validation, its start told "go"."""
    return transition_item(
        item_id=item.pk,
        held=item,
        stage="validate",
        event_type="x",
        starting=lambda i: "go",
        **kwargs,
    )


def written(item: ImportRunItem, before: dict) -> tuple:
    """What a transition wrote of ``item`` (``before``: its row before): the fields it changed
    (but the time) and its events, without their keys and times."""
    changed = {k: v for k, v in row(item).items() if v != before[k] and k != "updated_at"}
    events = list(
        ImportRunItemEvent.objects.filter(item=item)
        .order_by("event_id")
        .values_list("event_type", "stage", "attempt", "message", "message_i18n", "payload")
    )
    return changed, events


def test_a_held_transition_is_one_statement_that_writes_what_the_transaction_writes():
    run = ImportRunFactory()
    one, other = (
        ImportRunItemFactory(run=run, current_stage="validate", confirmation_status="confirmed")
        for _ in range(2)
    )
    counted(run)
    before = {item.pk: row(item) for item in (one, other)}
    with CaptureQueriesContext(connection) as queries:
        validated(one)
    assert item_writes(queries) == ["WITH"]
    with transaction.atomic():  # a caller's transaction: the transaction's way
        validated(other)
    assert written(one, before[one.pk]) == written(other, before[other.pk])
    assert written(one, before[one.pk])[0] == {
        "current_stage": "done",
        "access_status": "active",
        "version": 1,
        "problem_rank": 3,  # done, active: last
    }
    assert shard_counts(run) == run_counts(run.pk)
    assert ImportRun.objects.get(pk=run.pk).state == "completed"


def test_the_start_of_the_next_stage_is_written_with_it_unless_the_run_is_cancelled():
    run = ImportRunFactory()
    item, cancelled_meanwhile = (
        held(ImportRunItemFactory(run=run, current_stage="confirm")) for _ in range(2)
    )
    counted(run)
    moved = confirmed(item)
    assert start_recorded(moved)
    events = ImportRunItemEvent.objects.filter(item=item).order_by("event_id")
    assert [(e.event_type, e.stage, e.message) for e in events] == [
        ("x", "confirm", ""),
        ("stage_started", "validate", "go"),
    ]

    ImportRun.objects.filter(pk=run.pk).update(state=ImportRun.State.CANCELLED)
    moved = confirmed(cancelled_meanwhile)
    assert moved.run.state == ImportRun.State.CANCELLED  # as the statement read it
    assert not start_recorded(moved)
    events = ImportRunItemEvent.objects.filter(item=cancelled_meanwhile)
    assert [e.event_type for e in events] == ["x"]
    assert ImportRunItem.objects.get(pk=cancelled_meanwhile.pk).current_stage == "validate"


def test_a_row_changed_since_it_was_read_gets_nothing_from_the_statement():
    run = ImportRunFactory()
    item = ImportRunItemFactory(run=run, current_stage="validate", confirmation_status="confirmed")
    counted(run)
    stale = held(item)
    transition_item(item_id=item.pk, fields={"last_error": "meanwhile"}, event_type="noted")
    with CaptureQueriesContext(connection) as queries:
        moved = validated(item, stale=stale)  # nothing from the statement: the locked read decides
    assert item_writes(queries) == ["WITH", "UPDATE", "INSERT", "UPDATE"]
    assert moved is not stale and (stale.current_stage, stale.version) == ("validate", 0)
    stored = ImportRunItem.objects.get(pk=item.pk)
    assert (stored.current_stage, stored.last_error, stored.version) == ("done", "meanwhile", 2)
    events = ImportRunItemEvent.objects.filter(item=item).order_by("event_id")
    assert [e.event_type for e in events] == ["noted", "validated"]
    assert shard_counts(run) == run_counts(run.pk)


def test_a_lease_ends_with_the_statement_only_while_its_worker_owns_it():
    until = timezone.now() + leases.lease_ttl()
    mine, lost = (
        ImportRunItemFactory(
            run=ImportRunFactory(),
            current_stage="validate",
            confirmation_status="confirmed",
            lease_owner="w-1",
            lease_until=until,
        )
        for _ in range(2)
    )
    counted(mine.run)
    counted(lost.run)
    lease = leases.HeldLease(item_id=mine.pk, worker_id="w-1", until=until)
    with leases.holding(lease):
        validated(mine)
    assert lease.released
    stored = ImportRunItem.objects.get(pk=mine.pk)
    assert (stored.current_stage, stored.lease_owner, stored.lease_until) == ("done", None, None)

    stale = held(lost)
    ImportRunItem.objects.filter(pk=lost.pk).update(lease_owner="w-2")  # taken over meanwhile
    lease = leases.HeldLease(item_id=lost.pk, worker_id="w-1", until=until)
    with leases.holding(lease):
        validated(lost, stale=stale)
    assert not lease.released
    stored = ImportRunItem.objects.get(pk=lost.pk)
    assert (stored.current_stage, stored.lease_owner) == ("done", "w-2")


def test_inside_a_callers_transaction_without_a_savepoint_it_stands_or_falls_with_it():
    run = ImportRunFactory()
    item = ImportRunItemFactory(run=run, current_stage="validate", confirmation_status="confirmed")
    counted(run)
    with pytest.raises(RuntimeError), transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            validated(item, savepoint=False)
        assert item_writes(queries) == ["WITH"]
        raise RuntimeError("the caller's work failed")
    stored = ImportRunItem.objects.get(pk=item.pk)
    assert (stored.current_stage, stored.version) == ("validate", 0)
    assert not ImportRunItemEvent.objects.filter(item=item).exists()
    assert shard_counts(run) == run_counts(run.pk)


def test_a_run_never_counted_is_counted_from_its_items_with_the_change():
    run = ImportRunFactory()
    items = [
        ImportRunItemFactory(run=run, current_stage="validate", confirmation_status="confirmed")
        for _ in range(3)
    ]
    assert not ImportRunCounterShard.objects.filter(run=run).exists()
    validated(items[0])
    assert ImportRunCounterShard.objects.filter(run=run).exists()
    assert shard_counts(run) == run_counts(run.pk)
    assert shard_counts(run).done == 1


def test_behind_a_pooler_without_prepared_statements_it_writes_the_same(settings):
    """``RELAY_PG_PREPARED_STATEMENTS=0``: the statement's values bound on the client, each
    cast to its column's type in the text as on the server."""
    settings.RELAY_PG_PREPARED_STATEMENTS = False
    run = ImportRunFactory()
    item = held(ImportRunItemFactory(run=run, current_stage="confirm"))
    counted(run)
    with CaptureQueriesContext(connection) as queries:
        moved = confirmed(item, payload={"detail": ["a", 1]})
    assert item_writes(queries) == ["WITH"]
    assert start_recorded(moved)
    events = ImportRunItemEvent.objects.filter(item=item).order_by("event_id")
    assert [(e.event_type, e.payload) for e in events] == [
        ("x", {"current_stage": "validate", "detail": ["a", 1]}),
        ("stage_started", {}),
    ]


def test_events_someone_listens_for_go_the_transactions_way():
    """A receiver of the events' save signals: only ``objects.create`` writes them as it
    expects, so the transition is not one statement (``CompiledInsert.insert`` is ``create``)."""
    heard = []

    def receiver(sender, instance, **kwargs):
        heard.append(instance.event_type)

    run = ImportRunFactory()
    item = held(ImportRunItemFactory(run=run, current_stage="confirm"))
    counted(run)
    post_save.connect(receiver, sender=ImportRunItemEvent)
    try:
        with CaptureQueriesContext(connection) as queries:
            confirmed(item)
    finally:
        post_save.disconnect(receiver, sender=ImportRunItemEvent)
    assert "WITH" not in item_writes(queries)
    assert heard == ["x", "stage_started"]
    assert ImportRunItem.objects.get(pk=item.pk).current_stage == "validate"
