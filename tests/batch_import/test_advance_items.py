"""A task keeps its places busy: a place whose item ended takes the next due item of its runs."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db.backends.signals import connection_created
from django.utils import timezone

from batch_import import leases, tasks
from batch_import.models import ImportRunItem
from tests.factories import ImportRunFactory, ImportRunItemFactory
from tests.integration.shared_db import shared_database_url

pytestmark = pytest.mark.django_db(transaction=True)


def due_items(run, count, **kwargs):
    due = timezone.now() - timedelta(seconds=1)
    return [ImportRunItemFactory(run=run, next_retry_at=due, **kwargs) for _ in range(count)]


@pytest.fixture
def advanced(monkeypatch):
    """Stands in for ``advance_item``: ends the item at once, notes who ran and how many at once."""
    shared_database_url()  # the item threads open connections of their own
    ran, running, lock = [], set(), threading.Lock()
    peak = [0]

    def advance_item(item_id, *args, **kwargs):
        with lock:
            running.add(item_id)
            peak[0] = max(peak[0], len(running))
        ImportRunItem.objects.filter(pk=item_id).update(current_stage=ImportRunItem.Stage.DONE)
        with lock:
            running.discard(item_id)
            ran.append(item_id)
        return "done"

    monkeypatch.setattr(tasks, "advance_item", advance_item)
    return ran, peak


def test_a_task_takes_the_next_due_items_of_its_run_into_places_that_free(advanced):
    ran, peak = advanced
    run = ImportRunFactory()
    items = [item.pk for item in due_items(run, 6)]

    outcomes = tasks.advance_items(items[:2])

    assert sorted(ran) == sorted(items)  # each once
    assert outcomes == dict.fromkeys(items, "done")
    assert peak[0] <= 2  # never more at once than the task's places


def test_a_task_whose_take_lost_a_race_takes_again_while_items_are_due(advanced, monkeypatch):
    """Another task's take at the same moment leased the rows this one chose, so it took
    none: items are still due, so the task takes again and does not end with them left."""
    ran, _ = advanced
    run = ImportRunFactory()
    items = [item.pk for item in due_items(run, 6)]
    take_next_due, takes = leases.take_next_due, []

    def first_take_lost(run_ids, *, limit, now=None):
        takes.append(limit)
        if len(takes) == 1:
            return []  # as when the rows it chose were leased under it
        return take_next_due(run_ids, limit=limit, now=now)

    monkeypatch.setattr(leases, "take_next_due", first_take_lost)

    outcomes = tasks.advance_items(items[:2])

    assert sorted(ran) == sorted(items)
    assert outcomes == dict.fromkeys(items, "done")
    assert len(takes) >= 2


def test_a_task_leaves_other_runs_items_not_yet_due_and_leased_ones(advanced):
    ran, _ = advanced
    run = ImportRunFactory()
    chunk = [item.pk for item in due_items(run, 2)]
    later = ImportRunItemFactory(run=run, next_retry_at=timezone.now() + timedelta(minutes=5))
    leased = due_items(run, 1, lease_owner="other", lease_until=timezone.now() + timedelta(1))[0]
    elsewhere = due_items(ImportRunFactory(), 1)[0]

    tasks.advance_items(chunk)

    assert sorted(ran) == sorted(chunk)
    assert {later.pk, leased.pk, elsewhere.pk}.isdisjoint(ran)


def test_a_task_takes_no_more_items_once_its_window_is_over(advanced, monkeypatch):
    ran, _ = advanced
    monkeypatch.setattr(tasks, "PULL_WINDOW", 0)
    run = ImportRunFactory()
    items = [item.pk for item in due_items(run, 4)]

    tasks.advance_items(items[:2])

    assert sorted(ran) == sorted(items[:2])


def test_a_place_opens_one_database_connection_for_all_its_items_and_tasks(advanced):
    """A connection per item, or per task, cost a connect (on PostgreSQL a backend and its
    catalog caches; on SQLite the WAL pragma) for each."""
    opened = []

    def note(sender, connection, **kwargs):
        if threading.current_thread().name.startswith("item"):
            opened.append(threading.current_thread().name)

    run, later = ImportRunFactory(), ImportRunFactory()
    items = [item.pk for item in due_items(run, 6)]
    later_items = [item.pk for item in due_items(later, 2)]
    connection_created.connect(note)
    try:
        tasks.advance_items(items[:2])
        tasks.advance_items(later_items)
    finally:
        connection_created.disconnect(note)

    assert sorted(advanced[0]) == sorted(items + later_items)
    assert len(opened) == len(set(opened)) <= 2  # one per place, however many items it ran


def test_an_item_that_raised_is_raised_by_the_task_once_every_place_has_ended(monkeypatch):
    shared_database_url()
    run = ImportRunFactory()
    items = [item.pk for item in due_items(run, 3)]
    ran = []

    def advance_item(item_id, *args, **kwargs):
        ran.append(item_id)
        if item_id == items[0]:
            raise RuntimeError("boom")
        return "done"

    monkeypatch.setattr(tasks, "advance_item", advance_item)
    with pytest.raises(RuntimeError, match="boom"):
        tasks.advance_items(items)
    assert sorted(ran) == sorted(items)


def started_places(monkeypatch) -> list[str]:
    """Names of the item threads (places) the task starts."""
    started, start = [], threading.Thread.start

    def noting_start(thread):
        if thread.name.startswith("item_"):
            started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", noting_start)
    return started


def test_a_task_whose_items_others_took_starts_no_place(advanced, monkeypatch):
    """The run's later tasks find their items taken by earlier tasks' places: they end at once,
    with no thread started for nothing."""
    started = started_places(monkeypatch)
    run = ImportRunFactory()
    until = timezone.now() + timedelta(minutes=1)
    items = [item.pk for item in due_items(run, 3, lease_owner="other", lease_until=until)]

    assert tasks.advance_items(items) == dict.fromkeys(items, "not_claimed")
    assert started == []
    assert advanced[0] == []


def test_a_task_opens_no_more_places_than_items_in_flight(advanced, monkeypatch):
    started = started_places(monkeypatch)
    run = ImportRunFactory()
    until = timezone.now() + timedelta(minutes=1)
    free = [item.pk for item in due_items(run, 2)]
    taken = [item.pk for item in due_items(run, 3, lease_owner="other", lease_until=until)]

    tasks.advance_items([*free, *taken])

    assert sorted(advanced[0]) == sorted(free)
    assert len(started) == 2
