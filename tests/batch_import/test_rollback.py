from __future__ import annotations

import pytest

from batch_import import dispatch, tasks
from batch_import.models import RunRollback
from batch_import.rollback import rollback_plan
from hosts.models import ManagedResource
from tests.factories import HostFactory, ImportRunFactory, ImportRunItemFactory

pytestmark = pytest.mark.django_db


def _account_of(run, account_id: int) -> ManagedResource:
    return ManagedResource.objects.create(
        host=run.host,
        resource_type="account",
        host_resource_id=str(account_id),
        logical_key="rm-x",
        created_by_run_id=run.run_id,
    )


def test_an_account_with_the_same_id_on_another_host_does_not_block_deletion():
    mine = ImportRunFactory(state="completed")
    _account_of(mine, 5)
    ImportRunItemFactory(run=ImportRunFactory(host=HostFactory()), account_id=5)
    [planned] = rollback_plan(mine)
    assert (planned.action, planned.reason) == ("delete", "")


def test_an_account_another_run_on_the_same_host_uses_is_kept():
    mine = ImportRunFactory(state="completed")
    _account_of(mine, 5)
    other = ImportRunItemFactory(run=ImportRunFactory(host=mine.host), account_id=5)
    [planned] = rollback_plan(mine)
    assert (planned.action, planned.reason) == ("keep", f"used by run {other.run_id}")


def test_a_run_that_was_rolled_back_no_longer_holds_resources():
    mine = ImportRunFactory(state="completed")
    _account_of(mine, 5)
    other = ImportRunItemFactory(run=ImportRunFactory(host=mine.host), account_id=5).run
    RunRollback.objects.create(run=other, status="rolled_back")
    assert rollback_plan(mine)[0].action == "delete"


def test_rollback_plan_lists_in_reverse_dependency_order():
    run = ImportRunFactory(state="completed")
    for rid, kind in enumerate(["user", "group", "channel", "account", "api_key", "subscription"]):
        ManagedResource.objects.create(
            host=run.host,
            resource_type=kind,
            host_resource_id=str(rid),
            logical_key="a@example.com|1",
            created_by_run_id=run.run_id,
        )
    kinds = [p.resource_type for p in rollback_plan(run)]
    assert kinds == ["subscription", "api_key", "account", "channel", "group", "user"]


def test_sweep_hands_due_partial_rollbacks_to_workers(monkeypatch):
    from django.utils import timezone

    due = RunRollback.objects.create(
        run=ImportRunFactory(), status="rollback_partial", next_attempt_at=timezone.now()
    )
    RunRollback.objects.create(run=ImportRunFactory(), status="rollback_partial")  # manual only
    sent: list[str] = []
    monkeypatch.setattr(dispatch, "enqueue_rollbacks", lambda ids: sent.extend(ids))
    monkeypatch.setattr(dispatch, "enqueue_items", lambda ids: None)
    tasks.sweep()
    assert sent == [due.run_id]
