"""Rollback of a run against the host simulator (ARCH §9, seed 002 §5.5)."""

from __future__ import annotations

import dataclasses

import pytest
from django.utils import timezone

from batch_import.models import LegacyImportBatch, RunRollback
from batch_import.rollback import due_rollbacks, rollback_plan, rollback_run
from batch_import.tasks import resume_rollback
from hosts.models import ManagedResource
from tests.api.conftest import api, token, user  # noqa: F401
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]
COLLECTIONS = ("groups", "channels", "accounts", "users", "subscriptions", "keys")


def dump(sim) -> dict:
    """Every host row, in full (the request log and login tokens aside)."""
    with sim.state.lock:
        return {
            name: {rid: dataclasses.asdict(row) for rid, row in getattr(sim.state, name).items()}
            for name in COLLECTIONS
        }


def test_rollback_after_a_full_run_restores_the_host_exactly(host_simulator, upstream_factory):
    a = upstream_factory(models=("kimi-k2.6",))
    b = upstream_factory(models=("glm-4.5",))
    host = register(host_simulator)
    before = dump(host_simulator)
    run = drive(start(host, [entry(a), entry(b)], subscription_users=["u1@example.com"]))
    assert run.state == "completed"
    assert LegacyImportBatch.objects.get(run_id=run.run_id).status == "succeeded"
    created = dump(host_simulator)
    assert all(created[name] for name in COLLECTIONS)  # the run made one of everything

    rollback = rollback_run(run_id=run.run_id, requested_by="ops")

    assert rollback.status == "rolled_back" and rollback.remaining == []
    assert dump(host_simulator) == before
    assert set(ManagedResource.objects.values_list("state", flat=True)) == {"deleted"}
    order = [d["resource_type"] for d in rollback.deleted]
    assert order == sorted(
        order, key=["subscription", "api_key", "account", "channel", "group", "user"].index
    )
    assert LegacyImportBatch.objects.get(run_id=run.run_id).status == "rolled_back"
    for item in run.items.all():
        assert item.rolled_back_at is not None
        assert item.events.filter(event_type="rolled_back").exists()
    deletions = run.events.filter(event_type="rolled_back", message__startswith="rollback:")
    assert deletions.count() == len(rollback.deleted)


def test_rollback_twice_is_harmless(host_simulator, upstream_factory):
    host = register(host_simulator)
    run = drive(start(host, [entry(upstream_factory(models=("glm-4.5",)))]))
    rollback_run(run_id=run.run_id)
    events = run.events.count()
    again = rollback_run(run_id=run.run_id)
    assert again.status == "rolled_back" and again.attempts == 1
    assert run.events.count() == events


def test_rollback_keeps_an_account_another_run_reused(host_simulator, upstream_factory):
    upstream = upstream_factory(models=("glm-4.5",))
    host = register(host_simulator)
    first = drive(start(host, [entry(upstream)]))
    second = drive(start(host, [entry(upstream)]))
    reused = second.items.get()
    assert reused.account_resolution == "reused"

    plan = {p.resource_type: p for p in rollback_plan(first)}
    assert plan["account"].action == "keep"
    assert plan["account"].reason == f"used by run {second.run_id}"
    rollback = rollback_run(run_id=first.run_id)
    assert rollback.status == "rolled_back"
    assert reused.account_id in host_simulator.state.accounts
    assert reused.group_id in host_simulator.state.groups
    assert {k["resource_type"] for k in rollback.kept} >= {"account", "channel", "group"}

    # Once the reusing run is rolled back too, the first run's leftovers can go.
    events = first.events.count()
    assert rollback_run(run_id=first.run_id).attempts == 1  # nothing deletable yet: no-op
    assert first.events.count() == events
    rollback_run(run_id=second.run_id)
    assert rollback_run(run_id=first.run_id).attempts == 2
    assert reused.account_id not in host_simulator.state.accounts


def test_host_failure_mid_rollback_leaves_a_resumable_state(host_simulator, upstream_factory):
    host = register(host_simulator)
    before = dump(host_simulator)
    run = drive(start(host, [entry(upstream_factory(models=("glm-4.5",)))]))
    item = run.items.get()
    host_simulator.fail_next("DELETE", "/api/v1/admin/accounts/", count=1, status=500)

    partial = rollback_run(run_id=run.run_id)

    assert partial.status == "rollback_partial"
    assert [(r["resource_type"], int(r["host_resource_id"])) for r in partial.remaining] == [
        ("account", item.account_id)
    ]
    assert item.account_id in host_simulator.state.accounts
    assert partial.next_attempt_at is not None and "500" in partial.last_error
    assert LegacyImportBatch.objects.get(run_id=run.run_id).status == "failed"
    assert run.events.filter(event_type="error", message__contains="left resources").exists()
    item.refresh_from_db()
    assert item.rolled_back_at is None

    # The sweep finds it once due; the retry task finishes it.
    assert due_rollbacks(partial.next_attempt_at) == [run.run_id]
    assert resume_rollback(run.run_id) == "rolled_back"
    assert dump(host_simulator) == before
    assert RunRollback.objects.get(pk=run.run_id).attempts == 2


def test_rollback_of_a_running_run_is_refused(host_simulator, upstream_factory):
    from batch_import.errors import Conflict

    host = register(host_simulator)
    run = start(host, [entry(upstream_factory(models=("glm-4.5",)))])
    with pytest.raises(Conflict, match="still running"):
        rollback_run(run_id=run.run_id)
    assert not RunRollback.objects.exists()


def test_a_rollback_left_running_by_a_dead_process_is_taken_over(host_simulator, upstream_factory):
    host = register(host_simulator)
    run = drive(start(host, [entry(upstream_factory(models=("glm-4.5",)))]))
    RunRollback.objects.create(run=run, status="rollback_running", lease_until=timezone.now())
    assert rollback_run(run_id=run.run_id).status == "rolled_back"


def test_something_the_run_makes_after_its_rollback_is_rolled_back_too(
    host_simulator,
    upstream_factory,
    api,  # noqa: F811
):
    from hosts.sub2api import client_for_host

    host = register(host_simulator)
    run = drive(start(host, [entry(upstream_factory(models=("glm-4.5",)))]))
    rollback_run(run_id=run.run_id)
    with client_for_host(host) as client:  # e.g. an item retried after the rollback
        group = client.groups.create(name="rm-again", platform="openai")
    ManagedResource.objects.create(
        host=host,
        resource_type="group",
        host_resource_id=str(group.id),
        logical_key="rm-again",
        created_by_run_id=run.run_id,
    )
    again = rollback_run(run_id=run.run_id)
    assert again.status == "rolled_back" and group.id not in host_simulator.state.groups
    item = api.get(f"/api/batch-import/runs/{run.run_id}/items").json()["items"][0]
    assert item["rolled_back_at"] is not None
