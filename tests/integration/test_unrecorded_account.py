"""An account the host made but we never recorded (the worker died, or the record's write
failed, right after the create): the item's next provisioning finds it by its deterministic
name and records it instead of making a twin (a host without idempotent creates, [OLD])."""

from __future__ import annotations

import pytest

from hosts.resources import HostResources
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_an_account_created_but_not_recorded_is_adopted(
    host_simulator_factory, upstream_factory, monkeypatch
):
    sim = host_simulator_factory(old=True)  # no idempotent create to replay the first
    upstream = upstream_factory(models=("glm-4.5",))
    record = HostResources.record
    lost = []

    def losing_the_first_account(self, resource_type, host_resource_id, logical_key, **fields):
        if resource_type == "account" and not lost and not fields.get("adopted"):
            lost.append(host_resource_id)
            raise RuntimeError("the worker died before it recorded the account")
        return record(self, resource_type, host_resource_id, logical_key, **fields)

    monkeypatch.setattr(HostResources, "record", losing_the_first_account)
    run = drive(start(register(sim), [entry(upstream)], access_mode="subscription"))

    item = run.items.get()
    assert lost and item.account_id == int(lost[0])
    assert [a.id for a in sim.state.accounts.values()] == [item.account_id]  # no twin
    assert item.current_stage == "done"
