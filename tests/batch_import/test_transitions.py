from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import DatabaseError, connection
from django.db.models.sql.compiler import SQLCompiler, SQLInsertCompiler, SQLUpdateCompiler
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batch_import import leases, transitions
from batch_import.errors import AccessStatusWriteForbidden, InvalidTransition
from batch_import.models import ImportRun, ImportRunItem, ImportRunItemEvent
from batch_import.transitions import (
    Writer,
    transition_item,
)
from tests.factories import ImportRunItemFactory

Stage = ImportRunItem.Stage
# The pipeline order of ARCHITECTURE §4, written out here rather than read from the code.
PIPELINE = ["probe", "provision", "confirm", "validate", "done"]
PAIRS = [(a, b) for a, b in itertools.product(PIPELINE, PIPELINE) if a != b]


def moves_forward_by_the_rule(src: str, dst: str) -> bool:
    """A stage hands over to the next one, or the item ends (done) wherever it is; nothing
    goes back and nothing is skipped."""
    return dst == "done" or PIPELINE.index(dst) == PIPELINE.index(src) + 1


pytestmark = pytest.mark.django_db


def test_the_stages_are_the_pipeline():
    assert list(Stage.values) == PIPELINE


@pytest.mark.parametrize(("src", "dst"), PAIRS)
def test_a_worker_moves_an_item_one_stage_forward_or_ends_it(src, dst):
    item = ImportRunItemFactory(current_stage=src)
    if moves_forward_by_the_rule(src, dst):
        moved = transition_item(item_id=item.pk, stage=dst, event_type="stage_started")
        assert moved.current_stage == dst
        assert ImportRunItemEvent.objects.filter(item=item).count() == 1
    else:
        with pytest.raises(InvalidTransition):
            transition_item(item_id=item.pk, stage=dst, event_type="stage_started")
        item.refresh_from_db()
        assert item.current_stage == src
        assert not ImportRunItemEvent.objects.filter(item=item).exists()


@pytest.mark.parametrize("dst", ["probe", "provision", "confirm", "validate"])
def test_only_an_operator_sends_a_finished_item_back(dst):
    item = ImportRunItemFactory(current_stage="done")
    with pytest.raises(InvalidTransition):
        transition_item(item_id=item.pk, stage=dst, event_type="retried")
    moved = transition_item(
        item_id=item.pk, stage=dst, event_type="retried", writer=Writer.OPERATOR
    )
    assert moved.current_stage == dst


@pytest.mark.parametrize(
    ("src", "dst", "legal"),
    [
        ("pending", "confirmed", True),
        ("pending", "advisory", True),
        ("pending", "failed", True),
        ("failed", "pending", True),
        ("confirmed", "advisory", False),
        ("advisory", "failed", False),
        ("failed", "confirmed", False),
    ],
)
def test_confirmation_moves_follow_the_table(src, dst, legal):
    item = ImportRunItemFactory(confirmation_status=src)
    if legal:
        assert (
            transition_item(
                item_id=item.pk, confirmation_status=dst, event_type="confirmed"
            ).confirmation_status
            == dst
        )
    else:
        with pytest.raises(InvalidTransition):
            transition_item(item_id=item.pk, confirmation_status=dst, event_type="confirmed")


def test_exactly_one_event_per_transition_with_the_change_in_its_payload():
    item = ImportRunItemFactory(current_stage="confirm")
    transition_item(
        item_id=item.pk,
        stage="validate",
        confirmation_status="advisory",
        fields={"advisory_messages": ["first 403"]},
        event_type="advisory",
        message="probe race absorbed",
    )
    events = list(ImportRunItemEvent.objects.filter(item=item))
    assert len(events) == 1
    assert events[0].stage == "confirm"
    assert events[0].payload == {"current_stage": "validate", "confirmation_status": "advisory"}
    item.refresh_from_db()
    assert item.has_warning is True


def test_no_change_returns_early_without_an_event():
    item = ImportRunItemFactory(current_stage="confirm")
    transition_item(item_id=item.pk, stage="confirm", fields={"retry_count": 0}, event_type="x")
    assert not ImportRunItemEvent.objects.filter(item=item).exists()


@pytest.mark.parametrize("writer", [Writer.PIPELINE, Writer.OPERATOR])
def test_access_status_is_refused_to_everyone_but_validation(writer):
    item = ImportRunItemFactory(current_stage="validate")
    with pytest.raises(AccessStatusWriteForbidden):
        transition_item(item_id=item.pk, access_status="active", event_type="x", writer=writer)
    with pytest.raises(AccessStatusWriteForbidden):
        transition_item(item_id=item.pk, fields={"access_status": "active"}, event_type="x")
    item.refresh_from_db()
    assert item.access_status == "unknown"


def test_validation_may_write_access_status_but_never_back_to_unknown():
    item = ImportRunItemFactory(current_stage="validate")
    transition_item(
        item_id=item.pk, access_status="active", event_type="validated", writer=Writer.VALIDATION
    )
    with pytest.raises(InvalidTransition):
        transition_item(
            item_id=item.pk, access_status="unknown", event_type="x", writer=Writer.VALIDATION
        )


def test_only_the_validation_stage_module_claims_the_validation_writer():
    root = Path(__file__).resolve().parents[2]
    users = {
        str(path.relative_to(root))
        for path in root.glob("batch_import/**/*.py")
        if "Writer.VALIDATION" in path.read_text()
    }
    assert users <= {"batch_import/transitions.py", "batch_import/stages/validate.py"}


def test_run_counters_and_state_follow_every_transition():
    item = ImportRunItemFactory(current_stage="validate", confirmation_status="confirmed")
    run = item.run
    transition_item(item_id=item.pk, stage="validate", fields={}, event_type="x")
    assert ImportRun.objects.with_counts().get(pk=run.pk).state == "running"
    transition_item(
        item_id=item.pk,
        stage="done",
        access_status="active",
        event_type="validated",
        writer=Writer.VALIDATION,
    )
    run.refresh_from_db()
    assert (run.state, run.total_items, run.completed_items, run.active_items) == (
        "completed",
        1,
        1,
        1,
    )
    assert run.finished_at is not None


def test_a_transition_reads_its_item_without_compiling_the_select_again(monkeypatch):
    first, second = ImportRunItemFactory(), ImportRunItemFactory()
    transition_item(item_id=first.pk, stage="provision", event_type="stage_started")
    compiled, real = [], SQLCompiler.as_sql

    def as_sql(self, *args, **kwargs):
        compiled.append(self.query.model._meta.db_table)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SQLCompiler, "as_sql", as_sql)
    moved = transition_item(item_id=second.pk, stage="provision", event_type="stage_started")
    assert (moved.current_stage, moved.run.run_id) == ("provision", second.run_id)
    assert "import_run_items" not in compiled


def test_a_transition_writes_its_item_and_event_without_compiling_them_again(monkeypatch):
    first, second = ImportRunItemFactory(), ImportRunItemFactory()
    transition_item(item_id=first.pk, stage="provision", event_type="stage_started")
    compiled = []
    for compiler in (SQLUpdateCompiler, SQLInsertCompiler):
        real = compiler.as_sql

        def as_sql(self, *args, real=real, **kwargs):
            compiled.append(self.query.model._meta.db_table)
            return real(self, *args, **kwargs)

        monkeypatch.setattr(compiler, "as_sql", as_sql)
    before = ImportRunItem.objects.get(pk=second.pk).updated_at

    transition_item(item_id=second.pk, stage="provision", event_type="stage_started")

    assert compiled == []
    stored = ImportRunItem.objects.get(pk=second.pk)
    assert stored.current_stage == "provision" and stored.updated_at > before
    assert second.events.get().payload == {"current_stage": "provision"}


def held(item: ImportRunItem) -> ImportRunItem:
    """The item as the worker reads it before a stage: with its run."""
    return ImportRunItem.objects.select_related("run").get(pk=item.pk)


def test_every_transition_writes_the_next_version_of_its_item():
    item = ImportRunItemFactory()
    transition_item(item_id=item.pk, stage="provision", event_type="stage_completed")
    transition_item(item_id=item.pk, held=held(item), stage="confirm", event_type="x")
    transition_item(item_id=item.pk, stage="confirm", fields={}, event_type="x")  # no change
    assert ImportRunItem.objects.get(pk=item.pk).version == 2


def test_a_held_item_is_written_without_reading_it_again_and_learns_its_runs_state():
    item = held(ImportRunItemFactory(current_stage="confirm"))
    ImportRun.objects.filter(pk=item.run_id).update(state="cancelled")  # since the worker read it
    with CaptureQueriesContext(connection) as queries:
        moved = transition_item(
            item_id=item.pk,
            held=item,
            stage="validate",
            confirmation_status="confirmed",
            event_type="confirmed",
        )
    assert moved is item
    assert (moved.current_stage, moved.version, moved.run.state) == ("validate", 1, "cancelled")
    assert not [
        q for q in queries if q["sql"].startswith("SELECT") and "import_run_items" in q["sql"]
    ]
    stored = ImportRunItem.objects.get(pk=item.pk)
    assert (stored.current_stage, stored.confirmation_status, stored.version) == (
        "validate",
        "confirmed",
        1,
    )
    assert stored.events.get().payload == {
        "current_stage": "validate",
        "confirmation_status": "confirmed",
    }


def test_a_held_item_whose_row_changed_since_is_read_under_its_lock_instead():
    item = ImportRunItemFactory(current_stage="confirm")
    stale = held(item)
    transition_item(item_id=item.pk, fields={"retry_count": 3}, event_type="retry_scheduled")

    moved = transition_item(
        item_id=item.pk, held=stale, stage="validate", fields={"retry_count": 0}, event_type="x"
    )

    assert moved is not stale
    assert (stale.current_stage, stale.retry_count, stale.version) == ("confirm", 0, 0)
    assert (moved.current_stage, moved.retry_count, moved.version) == ("validate", 0, 2)
    stored = ImportRunItem.objects.get(pk=item.pk)
    assert (stored.current_stage, stored.retry_count, stored.version) == ("validate", 0, 2)


def started(item: ImportRunItem) -> str:
    return f"starting {item.current_stage} at version {item.version}"


def test_a_move_the_caller_goes_on_from_writes_the_next_stages_start_in_the_same_insert():
    item = held(ImportRunItemFactory(current_stage="probe"))
    with CaptureQueriesContext(connection) as queries:
        moved = transition_item(
            item_id=item.pk,
            held=item,
            stage="provision",
            event_type="stage_completed",
            message="probed",
            starting=started,
        )

    assert len([q for q in queries if "import_run_item_events" in q["sql"]]) == 1
    events = list(ImportRunItemEvent.objects.filter(item=item).order_by("created_at", "event_id"))
    assert [(e.event_type, e.stage, e.message) for e in events] == [
        ("stage_completed", "probe", "probed"),
        ("stage_started", "provision", "starting provision at version 1"),
    ]
    assert transitions.start_recorded(moved)
    # A later transition (a retry of the stage) starts it again: the mark is the version's.
    transition_item(item_id=item.pk, held=moved, fields={"retry_count": 1}, event_type="x")
    assert not transitions.start_recorded(moved)


@pytest.mark.parametrize(
    "situation", ["ends", "stays", "due later", "run cancelled", "nobody goes on"]
)
def test_no_start_is_written_where_the_caller_does_not_go_on_into_a_new_stage(situation):
    item = held(ImportRunItemFactory(current_stage="confirm"))
    fields, stage, starting = {}, "validate", started
    if situation == "ends":
        stage = "done"
    elif situation == "stays":
        stage, fields = "confirm", {"retry_count": 2}
    elif situation == "due later":
        fields = {"next_retry_at": timezone.now() + timedelta(minutes=5)}
    elif situation == "run cancelled":
        ImportRun.objects.filter(pk=item.run_id).update(state="cancelled")
    else:
        starting = None
    moved = transition_item(
        item_id=item.pk, held=item, stage=stage, fields=fields, event_type="x", starting=starting
    )
    assert list(ImportRunItemEvent.objects.filter(item=item).values_list("event_type")) == [("x",)]
    assert not transitions.start_recorded(moved)


def leased_item(worker_id: str) -> tuple[ImportRunItem, leases.HeldLease]:
    until = timezone.now() + leases.lease_ttl()
    item = ImportRunItemFactory(
        current_stage="validate",
        confirmation_status="confirmed",
        lease_owner=worker_id,
        lease_until=until,
    )
    return item, leases.HeldLease(item_id=item.pk, worker_id=worker_id, until=until)


def test_a_held_item_ends_its_lease_only_while_its_worker_still_owns_it():
    item, lease = leased_item("w-1")
    stale = held(item)
    ImportRunItem.objects.filter(pk=item.pk).update(lease_owner="w-2")  # ours expired: taken over
    with leases.holding(lease):
        transition_item(
            item_id=item.pk,
            held=stale,
            stage="done",
            access_status="active",
            event_type="validated",
            writer=Writer.VALIDATION,
        )
    stored = ImportRunItem.objects.get(pk=item.pk)
    assert (stored.current_stage, stored.lease_owner) == ("done", "w-2")
    assert not lease.released


def test_a_held_item_ends_its_workers_lease_in_the_same_write(django_capture_on_commit_callbacks):
    item, lease = leased_item("w-1")
    with (
        leases.holding(lease),
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        transition_item(
            item_id=item.pk,
            held=held(item),
            stage="done",
            access_status="active",
            event_type="validated",
            writer=Writer.VALIDATION,
        )
    writes = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "import_run_items"')]
    assert len(writes) == 1
    stored = ImportRunItem.objects.get(pk=item.pk)
    assert (stored.current_stage, stored.lease_owner, stored.lease_until) == ("done", None, None)
    assert lease.released


def test_a_held_item_whose_write_failed_is_left_as_it_was_read(monkeypatch):
    item = held(ImportRunItemFactory(current_stage="confirm"))

    def fails(*args, **kwargs):
        raise DatabaseError("the connection broke")

    monkeypatch.setattr(transitions.HELD_ITEM_ROW, "write", fails)
    with pytest.raises(DatabaseError):
        transition_item(item_id=item.pk, held=item, stage="validate", event_type="x")
    assert (item.current_stage, item.version) == ("confirm", 0)
    assert ImportRunItem.objects.get(pk=item.pk).current_stage == "confirm"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's one write lock")
def test_a_held_items_transition_takes_sqlites_write_lock_with_its_first_write():
    """``BEGIN IMMEDIATE`` takes the database's one write lock before a transaction's first
    statement, and every other writer waits while the thread waits for its turn to run. A
    held item's transition writes first (its guarded UPDATE): it begins deferred and takes
    the lock with that write. An item read under its lock first begins IMMEDIATE, as ever."""
    item = held(ImportRunItemFactory(current_stage="confirm"))
    with CaptureQueriesContext(connection) as queries:
        transition_item(item_id=item.pk, held=item, stage="validate", event_type="x")
    statements = [q["sql"] for q in queries]
    assert statements[0] == "BEGIN"
    assert statements[1].startswith('UPDATE "import_run_items"')
    with CaptureQueriesContext(connection) as queries:
        transition_item(item_id=item.pk, stage="done", event_type="x")
    assert queries[0]["sql"] == "BEGIN IMMEDIATE"
    assert connection.transaction_mode == "IMMEDIATE"
