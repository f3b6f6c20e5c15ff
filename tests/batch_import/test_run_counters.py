"""Run counters kept incrementally (issue #17): each item transition adds its own change to its
counter shard, and the sums always equal the full recount (``selectors.run_counts``, the
oracle); a transition costs the same statements in a run of 10 items and of 2,000, none of
which reads the run's other items nor locks the run's row; the run that completes is
completed, and handed over, exactly once."""

from __future__ import annotations

import contextlib
import re
import threading

import pytest
from django.db import OperationalError, connection, connections
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch_import import tasks, transitions
from batch_import.errors import InvalidTransition
from batch_import.models import RUN_COUNT_COLUMN, ImportRun, ImportRunCounterShard, ImportRunItem
from batch_import.run_requests import validate_run_request
from batch_import.run_state import (
    ItemSnapshot,
    RunCounts,
    count_items,
    derive_run_state_from_counts,
    item_counts,
)
from batch_import.selectors import run_counts, run_counts_by_shard
from batch_import.services import item_retry, run_cancel, run_start
from batch_import.transitions import (
    EventType,
    Writer,
    refresh_run_state,
    stored_counts,
    transition_item,
)
from tests.factories import HostFactory, ImportRunFactory, ImportRunItemFactory

Stage = ImportRunItem.Stage
Access = ImportRunItem.AccessStatus
Confirmation = ImportRunItem.ConfirmationStatus

PROPERTY = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

snapshots = st.builds(
    ItemSnapshot,
    current_stage=st.sampled_from(Stage.values),
    confirmation_status=st.sampled_from(Confirmation.values),
    access_status=st.sampled_from(Access.values),
    has_warning=st.booleans(),
    last_error_stage=st.sampled_from([None, *Stage.values]),
)


@given(st.lists(snapshots, max_size=12))
def test_a_runs_counts_are_the_sum_of_its_items_shares(items):
    """The pure rule a transition relies on: counting the items equals adding their shares."""
    total = sum((item_counts(item) for item in items), count_items([]))
    assert total == count_items(items)


# --- the counters follow every write path ---------------------------------------------------

item_index = st.integers(min_value=0, max_value=3)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("move"), item_index, st.sampled_from(Stage.values)),
        st.tuples(st.just("confirm"), item_index, st.sampled_from(Confirmation.values)),
        st.tuples(
            st.just("verdict"),
            item_index,
            st.sampled_from([Access.ACTIVE, Access.DEGRADED, Access.BROKEN]),
            st.sampled_from([None, Stage.PROBE, Stage.PROVISION, Stage.VALIDATE]),
        ),
        st.tuples(st.just("fail"), item_index, st.sampled_from([Stage.PROBE, Stage.CONFIRM])),
        st.tuples(st.just("advise"), item_index, st.lists(st.just("note"), max_size=1)),
        st.tuples(st.just("retry"), item_index),
        st.tuples(st.just("cancel")),
    ),
    max_size=25,
)


def _apply(run: ImportRun, item_ids: list[str], op: tuple) -> None:
    kind = op[0]
    item_id = item_ids[op[1] % len(item_ids)] if len(op) > 1 else None
    if kind == "move":
        transition_item(item_id=item_id, stage=op[2], event_type=EventType.STAGE_STARTED)
    elif kind == "confirm":
        transition_item(item_id=item_id, confirmation_status=op[2], event_type=EventType.CONFIRMED)
    elif kind == "verdict":
        transition_item(
            item_id=item_id,
            stage=Stage.DONE,
            access_status=op[2],
            fields={"last_error_stage": op[3]},
            event_type=EventType.VALIDATED,
            writer=Writer.VALIDATION,
        )
    elif kind == "fail":
        transition_item(
            item_id=item_id,
            stage=Stage.DONE,
            fields={"last_error_stage": op[2], "last_error": "refused"},
            event_type=EventType.ERROR,
        )
    elif kind == "advise":
        transition_item(
            item_id=item_id, fields={"advisory_messages": op[2]}, event_type=EventType.ADVISORY
        )
    elif kind == "retry":
        item_retry(run_id=run.run_id, item_id=item_id)
    else:
        run_cancel(run_id=run.run_id)


def assert_counters_are_the_recount(run: ImportRun) -> None:
    run.refresh_from_db()
    counts = run_counts(run.run_id)
    assert stored_counts(run) == counts
    # Each shard counts exactly its own items: whether they are all done is the shard's.
    assert run.counted_by_shard
    by_shard = run_counts_by_shard(run.run_id)
    for shard in ImportRunCounterShard.objects.filter(run=run):
        own = by_shard.get(shard.shard, RunCounts())
        assert stored_shard(shard) == own, shard.shard
    derived = derive_run_state_from_counts(
        counts, mode=run.mode, cancelled=run.state == ImportRun.State.CANCELLED
    )
    assert run.state == derived.state
    assert (run.finished_at is not None) == run.is_terminal


@pytest.mark.django_db
@PROPERTY
@given(
    mode=st.sampled_from(ImportRun.Mode.values),
    entries=st.integers(min_value=1, max_value=4),
    ops=operations,
)
def test_the_counters_equal_the_recount_after_any_sequence_of_writes(mode, entries, ops):
    host = HostFactory()
    request = validate_run_request(
        {
            "host_id": host.pk,
            "mode": mode,
            "access_mode": "subscription",
            "subscription_users": ["ops@example.com"],
            "subscription_days": 30,
            "entries": [
                {"base_url": f"https://r{n}.example", "api_key": f"sk-{n}"} for n in range(entries)
            ],
        }
    )
    run = run_start(request=request).run
    item_ids = list(run.items.order_by("position").values_list("pk", flat=True))
    assert_counters_are_the_recount(run)
    for op in ops:
        with contextlib.suppress(InvalidTransition):  # not allowed from there: no change
            _apply(run, item_ids, op)
        assert_counters_are_the_recount(run)


@pytest.mark.django_db
def test_a_run_never_counted_is_counted_once_by_its_first_transition():
    """A run written by other means (fixtures, rows from before the counters) is recounted
    from its items by the first transition that changes a count, then kept incrementally."""
    run = ImportRunFactory()
    done = ImportRunItemFactory(run=run, current_stage=Stage.DONE, access_status=Access.ACTIVE)
    moving = ImportRunItemFactory(run=run, current_stage=Stage.VALIDATE)
    assert not ImportRunCounterShard.objects.filter(run=run).exists() and run.total_items == 0
    transition_item(
        item_id=moving.pk,
        stage=Stage.DONE,
        access_status=Access.BROKEN,
        event_type=EventType.VALIDATED,
        writer=Writer.VALIDATION,
    )
    run.refresh_from_db()
    assert ImportRunCounterShard.objects.filter(run=run).count() == ImportRunCounterShard.SHARDS
    assert (run.total_items, run.completed_items, run.active_items, run.broken_items) == (
        2,
        2,
        1,
        1,
    )
    assert run.state == ImportRun.State.COMPLETED_WITH_WARNINGS
    assert done.pk != moving.pk
    assert_counters_are_the_recount(run)


# --- the cost does not grow with the run ----------------------------------------------------


def _run_of(size: int) -> ImportRun:
    run = ImportRunFactory()
    ImportRunItem.objects.bulk_create(
        ImportRunItemFactory.build_batch(size, run=run), batch_size=1_000
    )
    refresh_run_state(run_id=run.run_id)
    return run


def _finish_one_item(run: ImportRun) -> list[str]:
    """One item's way from probe to an active verdict, the SQL of each transition."""
    item_id = run.items.order_by("position").values_list("pk", flat=True).first()
    steps = [
        {"stage": Stage.PROVISION, "event_type": EventType.STAGE_COMPLETED},
        {"stage": Stage.CONFIRM, "event_type": EventType.STAGE_COMPLETED},
        {"confirmation_status": Confirmation.ADVISORY, "event_type": EventType.CONFIRMED},
        {"stage": Stage.VALIDATE, "event_type": EventType.STAGE_COMPLETED},
        {
            "stage": Stage.DONE,
            "access_status": Access.ACTIVE,
            "event_type": EventType.VALIDATED,
            "writer": Writer.VALIDATION,
        },
    ]
    statements = []
    for step in steps:
        with CaptureQueriesContext(connection) as captured:
            transition_item(item_id=item_id, **step)
        statements.append([q["sql"] for q in captured.captured_queries])
    return statements


@pytest.mark.django_db
def test_a_transition_costs_the_same_statements_in_a_run_of_10_and_of_2000_items():
    small, large = _finish_one_item(_run_of(10)), _finish_one_item(_run_of(2_000))
    assert [len(s) for s in small[:-1]] == [len(s) for s in large[:-1]]
    # Its finishing one too, but for the settle: in the big run the item's counter shard
    # still counts unfinished items (in the small one it is its shard's only item).
    assert len(large[-1]) == len(small[-1]) - 1, (small[-1], large[-1])
    # A stage move that changes no count writes the item and its event, nothing on the run:
    # it reads the run's row with the item's (for the worker's check between stages), and
    # neither locks nor writes it.
    assert not any('"import_runs"' in sql and not sql.startswith("SELECT") for sql in small[0]), (
        small[0]
    )
    locks = [sql for sql in small[0] if "FOR UPDATE" in sql]
    assert all(sql.endswith('FOR UPDATE OF "import_run_items"') for sql in locks), locks
    for sql in (sql for transition in large for sql in transition):
        if '"import_run_items"' in sql:  # only ever the moving item, by its primary key
            assert '"import_run_items"."item_id" =' in sql or "INSERT" in sql, sql
        assert "COUNT(" not in sql.upper(), sql


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="plans are PostgreSQL's")
def test_no_statement_of_a_transition_scans_the_runs_items_on_postgresql():
    """PostgreSQL's own plans of every SELECT a transition runs in a run of 2,000 items: no
    sequential scan, no aggregate over items (the run's counts are the sums of its 16 counter
    shards), every item read by its primary key."""
    run = _run_of(2_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE import_run_items")
    for transition in _finish_one_item(run):
        for sql in transition:
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN {sql}")
                plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Seq Scan on import_run_items" not in plan, plan
            if "import_run_items" in sql:
                assert "Aggregate" not in plan, plan


@pytest.mark.django_db
def test_an_item_that_finishes_adds_to_its_shard_and_only_reads_the_runs_row():
    """The finishing item's change goes to its own shard's row, one UPDATE; the run's row is
    read after it (its state still follows), neither locked nor written while the run goes on;
    the transition that ends the run writes it."""
    run = ImportRunFactory()
    items = [
        ImportRunItemFactory(run=run, position=n, current_stage=Stage.VALIDATE) for n in range(3)
    ]
    refresh_run_state(run_id=run.run_id)
    with CaptureQueriesContext(connection) as captured:
        _finish(items[0].pk)
    sqls = [q["sql"] for q in captured.captured_queries]
    on_shards = [sql for sql in sqls if sql.startswith('UPDATE "import_run_counters"')]
    assert len(on_shards) == 1 and re.search(r'"shard" = \(?0\b', on_shards[0]), on_shards
    on_run = [sql for sql in sqls if '"import_runs"' in sql and '"import_run_items"' not in sql]
    assert all(sql.startswith("SELECT") and "FOR UPDATE" not in sql for sql in on_run), on_run
    _finish(items[1].pk, Access.BROKEN)
    run.refresh_from_db()
    assert (run.state, run.completed_items, run.active_items, run.broken_items) == (
        "running",
        2,
        1,
        1,
    )
    with CaptureQueriesContext(connection) as captured:
        _finish(items[2].pk)
    assert any(q["sql"].startswith('UPDATE "import_runs"') for q in captured.captured_queries)
    run.refresh_from_db()
    assert run.state == "completed_with_warnings" and run.finished_at is not None
    assert_counters_are_the_recount(run)


def stored_shard(shard: ImportRunCounterShard) -> RunCounts:
    return RunCounts(**{name: getattr(shard, column) for name, column in RUN_COUNT_COLUMN.items()})


@pytest.mark.django_db
def test_an_item_that_leaves_its_shard_unfinished_reads_no_counts_of_the_run():
    """While the item's shard still counts unfinished items, so does the run, whose counts
    then derive ``running``: the transition adds its change and settles nothing. The one that
    finishes the shard reads the run's counts, and ends the run with its last item."""
    run = ImportRunFactory()
    items = [
        ImportRunItemFactory(
            run=run, position=n * ImportRunCounterShard.SHARDS, current_stage=Stage.VALIDATE
        )
        for n in range(3)  # all of shard 0
    ]
    refresh_run_state(run_id=run.run_id)
    assert counts_read(items[0].pk) == [] and counts_read(items[1].pk) == []
    run.refresh_from_db()
    assert (run.state, run.completed_items, run.active_items) == ("running", 2, 2)
    assert counts_read(items[2].pk) != []
    run.refresh_from_db()
    assert (run.state, run.completed_items) == ("completed", 3) and run.finished_at is not None
    assert_counters_are_the_recount(run)


@pytest.mark.django_db
def test_a_run_counted_before_its_shards_counted_their_own_items_settles_every_change():
    """A run recounted before, its whole count in shard 0: a shard's counts say nothing of
    its items, so every transition that changes a count settles the run, and its last ends
    it whatever shard that item is in."""
    run = ImportRunFactory()
    items = [
        ImportRunItemFactory(run=run, position=n, current_stage=Stage.VALIDATE) for n in (0, 1)
    ]
    refresh_run_state(run_id=run.run_id)
    total = RUN_COUNT_COLUMN["total"]
    ImportRunCounterShard.objects.filter(run=run, shard=1).update(**{total: 0})
    ImportRunCounterShard.objects.filter(run=run, shard=0).update(**{total: 2})
    ImportRun.objects.filter(pk=run.pk).update(counted_by_shard=False)
    assert counts_read(items[1].pk) != []  # its shard says 1 done of 0: settled
    assert counts_read(items[0].pk) != []  # 1 done of 2 in shard 0, yet the run's last
    run.refresh_from_db()
    assert (run.state, run.completed_items) == ("completed", 2)


def counts_read(item_id: str) -> list[str]:
    """The reads of the run's counter shards when the item finishes."""
    with CaptureQueriesContext(connection) as captured:
        _finish(item_id)
    return [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith("SELECT") and '"import_run_counters"' in q["sql"]
    ]


# --- concurrent workers ---------------------------------------------------------------------


def _in_threads(work, args_list):
    barrier = threading.Barrier(len(args_list))
    errors = []

    def run(*args):
        try:
            barrier.wait(timeout=10)
            work(*args)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=args) for args in args_list]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []


def _finish(item_id: str, access: str = Access.ACTIVE) -> None:
    transition_item(
        item_id=item_id,
        stage=Stage.DONE,
        access_status=access,
        event_type=EventType.VALIDATED,
        writer=Writer.VALIDATION,
    )


@pytest.mark.django_db(transaction=True)
def test_the_last_two_items_finishing_at_once_complete_the_run_once(monkeypatch):
    handed_over = []
    monkeypatch.setattr(transitions, "hand_over_run", handed_over.append)
    run = ImportRunFactory()
    done = [ImportRunItemFactory(run=run, current_stage=Stage.VALIDATE) for _ in range(4)]
    refresh_run_state(run_id=run.run_id)
    for item in done[:2]:
        _finish(item.pk)
    _in_threads(_finish, [(item.pk,) for item in done[2:]])
    run.refresh_from_db()
    assert (run.state, run.completed_items, run.active_items) == ("completed", 4, 4)
    assert run.finished_at is not None
    assert handed_over == [run.run_id]
    assert_counters_are_the_recount(run)


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_lose_no_count(monkeypatch):
    handed_over = []
    monkeypatch.setattr(transitions, "hand_over_run", handed_over.append)
    run = ImportRunFactory()
    items = [ImportRunItemFactory(run=run) for _ in range(24)]
    refresh_run_state(run_id=run.run_id)
    verdicts = [Access.ACTIVE, Access.DEGRADED, Access.BROKEN]

    def work(chunk: list[ImportRunItem]) -> None:
        for n, item in enumerate(chunk):
            transition_item(
                item_id=item.pk, stage=Stage.PROVISION, event_type=EventType.STAGE_COMPLETED
            )
            transition_item(
                item_id=item.pk,
                fields={"advisory_messages": ["note"] if n % 2 else []},
                event_type=EventType.ADVISORY,
            )
            _finish(item.pk, verdicts[n % 3])

    _in_threads(work, [(items[n::6],) for n in range(6)])
    run.refresh_from_db()
    assert run.completed_items == 24 and run.is_terminal
    assert handed_over == [run.run_id]
    assert_counters_are_the_recount(run)


@pytest.mark.django_db
def test_the_sweep_settles_a_run_whose_last_settle_was_lost(monkeypatch):
    """A process that dies between its transition's commit and the settle leaves a run whose
    counts say done still running: the sweep settles it, and hands it over once."""
    handed_over = []
    monkeypatch.setattr(transitions, "hand_over_run", handed_over.append)
    run = ImportRunFactory()
    items = [ImportRunItemFactory(run=run, current_stage=Stage.VALIDATE) for _ in range(2)]
    never_counted = ImportRunFactory()  # no shards: not mistaken for a run of 0 items
    ImportRunItemFactory(run=never_counted, current_stage=Stage.VALIDATE)
    refresh_run_state(run_id=run.run_id)
    with monkeypatch.context() as lost:
        lost.setattr(transitions, "settle_run", lambda run_id: None)
        for item in items:
            _finish(item.pk)
    run.refresh_from_db()
    assert (run.state, run.completed_items) == ("running", 2)
    monkeypatch.setattr("batch_import.dispatch.enqueue_items", lambda item_ids: None)

    tasks.sweep()
    run.refresh_from_db()
    assert run.state == "completed" and run.finished_at is not None
    assert handed_over == [run.run_id]
    assert transitions.settle_ended_runs() == 0
    assert ImportRun.objects.get(pk=never_counted.pk).state == "running"


@pytest.mark.django_db(transaction=True)
def test_a_settle_that_fails_after_the_commit_leaves_the_transition_standing(monkeypatch, caplog):
    run = ImportRunFactory()
    item = ImportRunItemFactory(run=run, current_stage=Stage.VALIDATE)
    refresh_run_state(run_id=run.run_id)

    def refused(run_id):
        raise OperationalError("database is locked")

    monkeypatch.setattr(transitions, "settle_run", refused)
    _finish(item.pk)
    assert ImportRunItem.objects.get(pk=item.pk).current_stage == Stage.DONE
    assert "settling its state failed" in caplog.text
    run.refresh_from_db()
    assert (run.state, run.completed_items) == ("running", 1)
    monkeypatch.undo()
    assert transitions.settle_ended_runs() == 1
    run.refresh_from_db()
    assert run.state == "completed"


@pytest.mark.django_db
def test_a_run_deleted_between_the_settles_two_reads_is_left_alone(monkeypatch):
    run = ImportRunFactory()
    item = ImportRunItemFactory(run=run, current_stage=Stage.VALIDATE)
    refresh_run_state(run_id=run.run_id)
    with monkeypatch.context() as lost:
        lost.setattr(transitions, "settle_run", lambda run_id: None)
        _finish(item.pk)
    unlocked_read = transitions._run_and_counts

    def deleted_after_the_first_read(run_id, *, locked=False):
        if locked:
            ImportRun.objects.filter(pk=run_id).delete()
        return unlocked_read(run_id, locked=locked)

    monkeypatch.setattr(transitions, "_run_and_counts", deleted_after_the_first_read)
    transitions.settle_run(run.run_id)  # the run ends by its counts, then is gone: no error
    assert not ImportRun.objects.filter(pk=run.pk).exists()
