"""One worker process keeps several items in flight: ``advance_items`` runs them side by side."""

from __future__ import annotations

import threading

import pytest
from django.test import override_settings
from django_q.conf import Conf

from batch_import import stages
from batch_import.tasks import advance_items
from tests.integration.pipeline import entry, register, start
from tests.integration.shared_db import shared_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
ITEMS = 4


def test_the_items_of_one_task_run_side_by_side(host_simulator, upstream_factory, monkeypatch):
    """Every item's probe waits at a barrier for the others: run one after another, the first
    would wait alone until the barrier breaks."""
    shared_database_url()  # threads write side by side: not on in-memory SQLite's table locks
    barrier = threading.Barrier(ITEMS, timeout=20)
    real_probe = stages.STAGE_STEPS["probe"]
    met = []

    def probe_once_all_are_here(item, context):
        met.append(barrier.wait())
        real_probe(item, context)

    monkeypatch.setitem(stages.STAGE_STEPS, "probe", probe_once_all_are_here)
    upstreams = [upstream_factory(models=("kimi-k2.6",)) for _ in range(ITEMS)]
    run = start(register(host_simulator), [entry(upstream) for upstream in upstreams])
    item_ids = list(run.items.values_list("item_id", flat=True))

    outcomes = advance_items(item_ids)

    assert sorted(met) == list(range(ITEMS))
    assert outcomes == dict.fromkeys(item_ids, "done")
    run.refresh_from_db()
    assert run.state == "completed"
    assert set(run.items.values_list("access_status", flat=True)) == {"active"}


@override_settings(RELAY_ITEMS_PER_WORKER=3)
def test_a_run_is_enqueued_in_tasks_of_items_per_worker(
    host_simulator, upstream_factory, monkeypatch
):
    sent = []
    monkeypatch.setattr(
        "batch_import.dispatch.async_task", lambda func, ids, **kw: sent.append((func, ids))
    )
    upstream = upstream_factory(models=("kimi-k2.6",))
    run = start(
        register(host_simulator),
        [entry(upstream, key=f"sk-{n}") for n in range(7)],
    )
    item_ids = sorted(run.items.values_list("item_id", flat=True))
    assert [func for func, _ in sent] == ["batch_import.tasks.advance_items"] * 3
    assert [len(ids) for _, ids in sent] == [3, 3, 1]
    assert sorted(i for _, ids in sent for i in ids) == item_ids
    assert Conf.SYNC is False
