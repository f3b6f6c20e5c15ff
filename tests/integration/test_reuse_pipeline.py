from __future__ import annotations

import pytest

from hosts.models import ManagedResource
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def imported(host_simulator, upstream_factory):
    """One upstream imported once: (host row, upstream, first item)."""
    upstream = upstream_factory(models=("kimi-k2.6", "glm-4.5"))
    host = register(host_simulator)
    first = drive(start(host, [entry(upstream)])).items.get()
    assert first.access_status == "active"
    return host, upstream, first


def test_duplicate_active_account_is_reused_without_a_second_account(host_simulator, imported):
    host, upstream, first = imported
    run = drive(start(host, [entry(upstream)]))
    item = run.items.get()
    assert (item.matched_account_state, item.account_resolution) == ("active", "reused")
    assert item.provision_reused is True
    assert (item.reused_from_account_id, item.account_id) == (first.account_id, first.account_id)
    assert len(host_simulator.state.accounts) == 1
    assert item.access_status == "active"
    assert item.events.filter(event_type="reused").exists()


def test_disabled_account_is_reactivated(host_simulator, imported):
    host, upstream, first = imported
    host_simulator.state.accounts[first.account_id].schedulable = False
    item = drive(start(host, [entry(upstream)])).items.get()
    assert (item.matched_account_state, item.account_resolution) == ("disabled", "reactivated")
    assert host_simulator.state.accounts[first.account_id].schedulable is True
    assert len(host_simulator.state.accounts) == 1
    assert item.access_status == "active"


def test_broken_account_is_replaced_and_the_old_one_deprecated_then_reactivated(
    host_simulator, imported
):
    host, upstream, first = imported
    host_simulator.state.accounts[first.account_id].status = "error"
    replaced = drive(start(host, [entry(upstream)])).items.get()
    assert (replaced.matched_account_state, replaced.account_resolution) == ("broken", "replaced")
    assert replaced.account_id != first.account_id and replaced.provision_reused is False
    assert host_simulator.state.accounts[first.account_id].schedulable is False
    assert replaced.access_status == "active"
    # The replacement breaks too; the old, deprecated one comes back instead of a third.
    host_simulator.state.accounts[replaced.account_id].status = "error"
    host_simulator.state.accounts[first.account_id].status = "active"
    again = drive(start(host, [entry(upstream)])).items.get()
    assert (again.matched_account_state, again.account_resolution) == (
        "deprecated",
        "reactivated",
    )
    assert again.account_id == first.account_id
    assert len(host_simulator.state.accounts) == 2


def test_same_family_under_a_new_alias_is_patch_only(host_simulator, imported):
    host, upstream, first = imported
    upstream.config.set_models(["kimi-k2.6", "glm-4.5", "Kimi K2.6", "deepseek-chat"])
    item = drive(start(host, [entry(upstream)])).items.get()
    assert (item.account_resolution, item.account_id) == ("reused", first.account_id)
    assert item.events.filter(event_type="patched").exists()
    account = host_simulator.state.accounts[first.account_id]
    assert "deepseek-chat" in account.model_mapping
    channel = host_simulator.state.channels[item.channel_id]
    assert channel.model_mapping["openai"]["Kimi K2.6"] == "kimi-k2.6"
    assert len(host_simulator.state.accounts) == 1


def test_duplicate_entries_in_one_run_make_one_account(host_simulator, upstream_factory):
    upstream = upstream_factory(models=("kimi-k2.6",))
    run = drive(start(register(host_simulator), [entry(upstream), entry(upstream)]))
    assert run.total_items == 1 and run.duplicate_entries == 1
    assert len(host_simulator.state.accounts) == 1
    assert run.items.get().events.filter(event_type="duplicate").exists()


def test_two_keys_of_one_provider_share_its_group(host_simulator, upstream_factory):
    upstream = upstream_factory(models=("kimi-k2.6",), api_key=None)
    run = drive(start(register(host_simulator), [entry(upstream, "sk-a"), entry(upstream, "sk-b")]))
    a, b = run.items.order_by("position")
    assert a.group_id == b.group_id and a.account_id != b.account_id
    assert (a.access_status, b.access_status) == ("active", "active")
    assert ManagedResource.objects.filter(resource_type="group").count() == 1
