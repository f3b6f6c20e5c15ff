from __future__ import annotations

import pytest

from hosts.sub2api import Sub2ApiClient
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def operator_key(sim, *, balance=10.0) -> tuple[str, int]:
    """An operator's own key on a standard group, as a self_service user would have."""
    with Sub2ApiClient(sim.url, admin_api_key=sim.admin_key, retries=0) as client:
        group = client.groups.create(name="team", platform="openai")
        client.users.create(email="me@example.com", password="secret-pw", balance=balance)
        session = client.login("me@example.com", "secret-pw")
        key = client.keys.create(session, name="mine", group_id=group.id)
        return key.key.reveal(), group.id


def test_self_service_binds_accounts_to_the_operators_group_and_validates_with_its_key(
    host_simulator, upstream_factory
):
    key, group_id = operator_key(host_simulator)
    upstream = upstream_factory(models=("kimi-k2.6",))
    run = drive(
        start(
            register(host_simulator),
            [entry(upstream)],
            access_mode="self_service",
            probe_api_key=key,
        )
    )
    item = run.items.get()
    assert item.group_id == group_id and item.access_status == "active"
    assert group_id in host_simulator.state.accounts[item.account_id].group_ids
    assert not host_simulator.state.users.keys() - {1, 2}  # no managed users were created


def test_self_service_without_balance_is_broken_with_the_hosts_reason(
    host_simulator, upstream_factory
):
    key, _ = operator_key(host_simulator, balance=0)
    upstream = upstream_factory(models=("kimi-k2.6",))
    run = drive(
        start(
            register(host_simulator),
            [entry(upstream)],
            access_mode="self_service",
            probe_api_key=key,
        )
    )
    item = run.items.get()
    assert item.access_status == "broken"
    assert "INSUFFICIENT_BALANCE" in item.last_error


def test_self_service_with_a_key_the_host_does_not_know_fails_provisioning(
    host_simulator, upstream_factory
):
    upstream = upstream_factory(models=("kimi-k2.6",))
    run = drive(
        start(
            register(host_simulator),
            [entry(upstream)],
            access_mode="self_service",
            probe_api_key="sk-unknown",
        )
    )
    item = run.items.get()
    assert item.last_error_stage == "provision"
    assert "probe_api_key" in item.last_error


def test_subscription_mode_creates_managed_users_subscriptions_and_keys(
    host_simulator, upstream_factory
):
    upstream = upstream_factory(models=("kimi-k2.6",))
    run = drive(
        start(
            register(host_simulator),
            [entry(upstream)],
            subscription_users=["a@example.com", "b@example.com"],
            subscription_days=7,
        )
    )
    item = run.items.get()
    assert item.access_status == "active"
    state = host_simulator.state
    emails = {u.email for u in state.users.values()}
    assert {"a@example.com", "b@example.com"} <= emails
    subs = [s for s in state.subscriptions.values() if s.group_id == item.group_id]
    assert len(subs) == 2
    assert sum(1 for k in state.keys.values() if k.group_id == item.group_id) == 2


def test_old_host_degrades_gracefully_with_advisories(old_host_simulator, upstream_factory):
    upstream = upstream_factory(models=("kimi-k2.6",))
    run = drive(start(register(old_host_simulator), [entry(upstream)]))
    item = run.items.get()
    assert item.channel_id is None
    assert "channels_unsupported" in item.advisory_messages
    assert "chat_completions_unsupported" in item.advisory_messages
    assert item.access_status == "degraded"
