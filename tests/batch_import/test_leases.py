from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batch_import import leases, stages, tasks
from batch_import.models import ImportRunItem
from batch_import.transitions import transition_item
from tests.factories import ImportRunItemFactory

pytestmark = pytest.mark.django_db


def due_item(**kwargs):
    return ImportRunItemFactory(next_retry_at=timezone.now() - timedelta(seconds=1), **kwargs)


def test_claim_is_won_once():
    item = due_item()
    assert leases.claim(item.pk, worker_id="w1") is True
    assert leases.claim(item.pk, worker_id="w2") is False
    item.refresh_from_db()
    assert item.lease_owner == "w1" and item.lease_until > timezone.now()


def test_expired_lease_can_be_taken_over_and_the_old_owner_loses_renewal():
    item = due_item()
    now = timezone.now()
    assert leases.claim(item.pk, worker_id="w1", now=now)
    later = now + leases.lease_ttl() + timedelta(seconds=1)
    assert leases.claim(item.pk, worker_id="w2", now=later)
    assert leases.renew(item.pk, worker_id="w1", now=later) is False
    assert leases.renew(item.pk, worker_id="w2", now=later) is True


def lease_until(item) -> object:
    return ImportRunItem.objects.values_list("lease_until", flat=True).get(pk=item.pk)


def test_a_held_lease_is_written_again_only_once_half_of_it_ran_out():
    item = due_item()
    now = timezone.now()
    lease = leases.take(item.pk, worker_id="w1", now=now)
    assert lease is not None and lease_until(item) == now + leases.lease_ttl()
    early = now + leases.lease_ttl() / 2 - timedelta(seconds=1)
    assert lease.keep(now=early) is True
    assert lease_until(item) == now + leases.lease_ttl()  # not renewed: most of it is left
    late = now + leases.lease_ttl() / 2 + timedelta(seconds=1)
    assert lease.keep(now=late) is True
    assert lease_until(item) == late + leases.lease_ttl() == lease.until


def test_a_held_lease_someone_took_over_is_lost():
    item = due_item()
    now = timezone.now()
    lease = leases.take(item.pk, worker_id="w1", now=now)
    later = now + leases.lease_ttl() + timedelta(seconds=1)
    assert leases.take(item.pk, worker_id="w2", now=later) is not None
    assert leases.take(item.pk, worker_id="w3", now=later) is None
    assert lease.keep(now=later) is False


def test_items_not_due_or_done_are_not_claimable():
    future = ImportRunItemFactory(next_retry_at=timezone.now() + timedelta(minutes=5))
    done = due_item(current_stage="done")
    never = ImportRunItemFactory(next_retry_at=None)
    for item in (future, done, never):
        assert leases.claim(item.pk, worker_id="w") is False


def test_release_frees_only_our_own_lease():
    item = due_item()
    leases.claim(item.pk, worker_id="w1")
    leases.release(item.pk, worker_id="w2")
    assert ImportRunItem.objects.get(pk=item.pk).lease_owner == "w1"
    leases.release(item.pk, worker_id="w1")
    item.refresh_from_db()
    assert (item.lease_owner, item.lease_until) == (None, None)


def test_claimable_items_lists_only_due_free_unfinished_items():
    now = timezone.now()
    free = due_item()
    expired = due_item(lease_owner="dead", lease_until=now - timedelta(seconds=5))
    due_item(lease_owner="alive", lease_until=now + timedelta(seconds=60))
    due_item(current_stage="done")
    assert set(leases.claimable_items(now).values_list("pk", flat=True)) == {free.pk, expired.pk}


@pytest.mark.django_db
def test_the_sweep_hands_out_every_orphan_at_once(monkeypatch, settings):
    """After a killed worker's leases expire, all its items run again within one sweep,
    however many there are (not 8 × RELAY_CONCURRENCY a minute)."""
    from batch_import import dispatch, tasks
    from tests.factories import ImportRunFactory, ImportRunItemFactory

    settings.RELAY_CONCURRENCY = 1
    handed: list[str] = []
    monkeypatch.setattr(dispatch, "enqueue_items", lambda ids: handed.extend(ids))
    run = ImportRunFactory()
    past = timezone.now() - timedelta(minutes=5)
    for _ in range(150):
        ImportRunItemFactory(
            run=run,
            current_stage="confirm",
            next_retry_at=past,
            lease_owner="dead",
            lease_until=past,
        )
    assert tasks.sweep() == 150 and len(handed) == 150


def finish(item) -> ImportRunItem:
    return transition_item(
        item_id=item.pk, stage="done", event_type="error", fields={"next_retry_at": None}
    )


def test_the_transition_that_finishes_an_item_ends_the_lease_held_on_it(
    django_capture_on_commit_callbacks,
):
    item = due_item(current_stage="probe")
    lease = leases.take(item.pk, worker_id="w1")
    with (
        django_capture_on_commit_callbacks(execute=True),  # the lease ends with the commit
        leases.holding(lease),
        CaptureQueriesContext(connection) as queries,
    ):
        finished = finish(item)
    assert (finished.lease_owner, finished.lease_until) == (None, None)
    item.refresh_from_db()
    assert (item.current_stage, item.lease_owner, item.lease_until) == ("done", None, None)
    assert lease.released is True
    sqls = [q["sql"] for q in queries.captured_queries]
    updates = [sql for sql in sqls if sql.startswith('UPDATE "import_run_items"')]
    assert len(updates) == 1 and '"lease_owner" = NULL' in updates[0]


def test_a_finishing_transition_leaves_a_lease_it_does_not_hold():
    taken_over, not_held, other = (due_item(current_stage="probe") for _ in range(3))
    mine = leases.take(taken_over.pk, worker_id="w1")
    ImportRunItem.objects.filter(pk=taken_over.pk).update(lease_owner="w2")
    leases.claim(not_held.pk, worker_id="w1")
    leases.claim(other.pk, worker_id="w1")
    with leases.holding(mine):
        finish(taken_over)  # another worker's lease now: not ours to end
        finish(other)  # an item other than the stage's own
    finish(not_held)  # no stage holds it here
    assert mine.released is False
    leased = dict(ImportRunItem.objects.values_list("item_id", "lease_owner"))
    assert (leased[taken_over.pk], leased[other.pk], leased[not_held.pk]) == ("w2", "w1", "w1")


class Undone(Exception):
    """Rolls a caller's transaction back."""


@pytest.mark.django_db(transaction=True)
def test_a_finishing_transition_rolled_back_with_its_callers_transaction_leaves_the_lease_held():
    item = due_item(current_stage="probe")
    lease = leases.take(item.pk, worker_id="w1")
    with leases.holding(lease), pytest.raises(Undone), transaction.atomic():
        finish(item)
        raise Undone
    assert lease.released is False  # so the worker releases it
    item.refresh_from_db()
    assert (item.current_stage, item.lease_owner) == ("probe", "w1")


@pytest.mark.django_db(transaction=True)
def test_the_worker_goes_on_under_a_lease_whose_ending_was_rolled_back(monkeypatch):
    """A stage whose finishing transition stood in a transaction that rolled back: the lease
    is still the worker's, which goes on with the item until it ends for good."""
    item = due_item(current_stage="probe")
    calls = []

    def stage(item, context):
        calls.append(item.current_stage)
        if len(calls) > 1:
            return finish(item)
        with contextlib.suppress(Undone), transaction.atomic():
            finish(item)
            raise Undone
        return None

    monkeypatch.setitem(stages.STAGE_STEPS, "probe", stage)
    assert tasks.advance_item(item.pk, worker_id="w1") == "done"
    item.refresh_from_db()
    assert calls == ["probe", "probe"]
    assert (item.current_stage, item.lease_owner, item.lease_until) == ("done", None, None)


@pytest.fixture(params=[True, False], ids=["returning", "claim-each"])
def returns_rows(request, monkeypatch) -> bool:
    """Both ways: the database returns the rows an UPDATE wrote, or it does not."""
    if not request.param:
        monkeypatch.setattr(leases, "returns_rows_from_update", lambda connection: False)
    return request.param


def test_take_each_leases_those_free_and_due_to_one_worker_of_this_process(returns_rows):
    free, other = due_item(), due_item()
    held = due_item(lease_owner="other", lease_until=timezone.now() + timedelta(minutes=1))
    later = ImportRunItemFactory(next_retry_at=timezone.now() + timedelta(minutes=5))
    done = due_item(current_stage=ImportRunItem.Stage.DONE)

    taken = leases.take_each([free.pk, other.pk, held.pk, later.pk, done.pk])

    assert sorted(lease.item_id for lease in taken) == sorted([free.pk, other.pk])
    [owner] = {lease.worker_id for lease in taken}
    assert owner.startswith(leases.this_process())
    rows = ImportRunItem.objects.filter(lease_owner=owner)
    assert sorted(rows.values_list("pk", flat=True)) == sorted([free.pk, other.pk])
    assert ImportRunItem.objects.get(pk=held.pk).lease_owner == "other"
    assert all(lease.keep() for lease in taken)  # each an ordinary lease of its own row


def test_take_next_due_takes_the_earliest_due_items_of_the_runs_in_one_statement(returns_rows):
    now = timezone.now()
    first = due_item()
    run = first.run
    items = [first] + [
        ImportRunItemFactory(run=run, next_retry_at=now - timedelta(seconds=n)) for n in (5, 3, 2)
    ]
    ImportRunItemFactory(run=run, next_retry_at=now + timedelta(minutes=5))  # not due
    due_item()  # another run's

    with CaptureQueriesContext(connection) as captured:
        taken = leases.take_next_due([run.pk], limit=2)

    earliest = sorted(items, key=lambda item: item.next_retry_at)[:2]
    assert sorted(lease.item_id for lease in taken) == sorted(item.pk for item in earliest)
    if returns_rows:
        assert len(captured) == 1
    assert leases.take_next_due([run.pk], limit=5) != []  # the two left
    assert leases.take_next_due([run.pk], limit=5) == []  # none left due and free


def test_any_due_is_whether_an_item_of_the_runs_is_due_and_free():
    run = due_item(lease_owner="other", lease_until=timezone.now() + timedelta(minutes=1)).run
    ImportRunItemFactory(run=run, next_retry_at=timezone.now() + timedelta(minutes=5))
    due_item(current_stage=ImportRunItem.Stage.DONE, run=run)
    elsewhere = due_item()

    assert leases.any_due([run.pk]) is False
    assert leases.any_due([run.pk, elsewhere.run_id]) is True


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a data-modifying WITH")
def test_take_next_due_reads_the_items_it_took_as_written_with_their_runs_and_hosts():
    """PostgreSQL: the take's one statement also reads each item with its run and host, as it
    wrote them (the worker's first read of the item)."""
    first = due_item()
    ImportRunItemFactory(run=first.run, next_retry_at=timezone.now() - timedelta(seconds=3))

    with CaptureQueriesContext(connection) as captured:
        taken = leases.take_next_due([first.run_id], limit=5)
        items = [lease.first_read() for lease in taken]
        hosts = {item.run.host.pk for item in items}  # read with them: no query
    assert len(captured) == 1
    assert hosts == {first.run.host_id}
    for lease, item in zip(taken, items, strict=True):
        fresh = ImportRunItem.objects.get(pk=lease.item_id)
        assert (item.pk, item.lease_owner, item.lease_until) == (
            lease.item_id,
            lease.worker_id,
            lease.until,
        )
        assert (item.version, item.current_stage, item.api_key) == (
            fresh.version,
            fresh.current_stage,
            fresh.api_key,
        )
    assert [lease.first_read() for lease in taken] == [None] * len(taken)  # once


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a data-modifying WITH")
def test_the_worker_starts_from_the_item_its_take_read(monkeypatch):
    item = due_item()
    [lease] = leases.take_next_due([item.run_id], limit=1)

    def read_again(pk):
        raise AssertionError("read again what the take read")

    monkeypatch.setattr(tasks.ITEM_WITH_RUN_AND_HOST, "get", read_again)
    stopped_at = []
    monkeypatch.setitem(
        stages.STAGE_STEPS, item.current_stage, lambda i, ctx: stopped_at.append(i) or None
    )
    monkeypatch.setattr(leases.HeldLease, "keep", lambda self, now=None: False)
    assert tasks.advance_item(item.pk, lease=lease) == "lost"
    assert [i.pk for i in stopped_at] == [item.pk]
