"""Reconcile, drift, health policy and model sync against the simulators (issue #18)."""

from __future__ import annotations

import pytest

from hosts.models import ManagedResource
from providers import services
from providers.models import Provider, ProviderAccount, ReconcileRun
from providers.reconcile import ReconcileContext, reconcile_run
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def imported(host_simulator, upstream, **options):
    host = register(host_simulator)
    run = drive(start(host, [entry(upstream)], **options))
    (provider,) = services.provider_absorb_run(run_id=run.run_id)
    return host, run, provider


def reconcile(provider, **options) -> ReconcileRun:
    run = services.reconcile_start(host=provider.host, provider_pks=[provider.pk], **options)
    assert reconcile_run(run.run_id, ReconcileContext(worker_id="test")) == "completed"
    run.refresh_from_db()
    return run


def account_of(provider) -> int:
    return provider.accounts.get().host_account_id


def test_an_import_makes_an_active_provider_with_its_path_in_events(
    host_simulator, upstream_factory
):
    _, run, provider = imported(host_simulator, upstream_factory(models=("glm-4.5",)))

    assert run.state == "completed"
    assert provider.state == "active" and provider.access_status == "subscription_ready"
    steps = list(provider.events.order_by("id").values_list("from_state", "to_state"))
    assert [s for s in steps if s[0]] == [
        ("discovered", "validated"),
        ("validated", "installed"),
        ("installed", "active"),
    ]
    account = provider.accounts.get()
    assert account.status == "active" and account.last_test_ok is True
    assert provider.checks.get().ok is True
    # Absorbing twice changes nothing.
    services.provider_absorb_run(run_id=run.run_id)
    assert provider.checks.count() == 1 and provider.accounts.count() == 1


def test_an_account_deleted_by_hand_makes_the_provider_drifted_naming_it(
    host_simulator, upstream_factory
):
    _, _, provider = imported(host_simulator, upstream_factory(models=("glm-4.5",)))
    first = reconcile(provider)
    assert first.results.filter(kind="baseline").count() == 3  # group, channel, account
    account_id = account_of(provider)
    with host_simulator.state.lock:
        del host_simulator.state.accounts[account_id]

    run = reconcile(provider)

    provider.refresh_from_db()
    assert provider.state == "drifted"
    missing = run.results.get(kind="missing")
    assert missing.resource_type == "account" and missing.host_resource_id == str(account_id)
    assert (
        f"account {account_id} is gone"
        in provider.events.filter(event_type="drift_found").first().message
    )
    assert (
        ManagedResource.objects.get(host_resource_id=str(account_id), resource_type="account").state
        == "drifted"
    )
    assert run.drifted_providers == 1


def test_a_channel_mapping_changed_by_hand_is_drift_with_the_difference(
    host_simulator, upstream_factory
):
    _, _, provider = imported(host_simulator, upstream_factory(models=("glm-4.5",)))
    reconcile(provider, test_accounts=False, sync_models=False)
    with host_simulator.state.lock:
        (channel,) = host_simulator.state.channels.values()
        before = dict(channel.model_mapping["openai"])
        channel.model_mapping = {"openai": {**before, "hand-made": "glm-4.5"}}

    run = reconcile(provider, test_accounts=False, sync_models=False)

    provider.refresh_from_db()
    assert provider.state == "drifted"
    changed = run.results.get(kind="changed")
    assert changed.resource_type == "channel"
    assert changed.diff["model_mapping"]["expected"] == dict(sorted(before.items()))
    assert changed.diff["model_mapping"]["found"]["hand-made"] == "glm-4.5"
    # The operator keeps the hand-made mapping: the next reconcile takes it as the baseline.
    services.provider_accept_drift(provider_pk=provider.pk, actor="ops")
    reconcile(provider, test_accounts=False, sync_models=False)
    provider.refresh_from_db()
    assert provider.state == "active" and provider.open_drift == []


def test_an_account_disabled_by_hand_is_reported_and_never_re_enabled(
    host_simulator, upstream_factory
):
    _, _, provider = imported(host_simulator, upstream_factory(models=("glm-4.5",)))
    reconcile(provider)
    account_id = account_of(provider)
    with host_simulator.state.lock:
        host_simulator.state.accounts[account_id].schedulable = False

    run = reconcile(provider)
    reconcile(provider)

    assert run.results.filter(kind="disabled_on_host").exists()
    assert host_simulator.state.accounts[account_id].schedulable is False
    assert provider.accounts.get().status == "disabled_on_host"
    assert provider.events.filter(event_type="account_disabled_on_host").count() == 1
    assert not run.results.filter(kind__in=("re_enabled", "test_passed")).exists()


def test_a_failing_upstream_degrades_then_is_disabled_after_n_then_re_enabled(
    host_simulator, upstream_factory, settings
):
    settings.RELAY_HEALTH_DISABLE_AFTER = 2
    upstream = upstream_factory(models=("glm-4.5",))
    _, _, provider = imported(host_simulator, upstream)
    reconcile(provider)
    account_id = account_of(provider)
    upstream.configure(api_key="sk-rotated-by-the-provider")  # our key is now refused (401)

    reconcile(provider, sync_models=False)
    account = ProviderAccount.objects.get(provider=provider)
    provider.refresh_from_db()
    assert account.status == "failing" and account.consecutive_failures == 1
    assert provider.state == "failed" and provider.access_status == "broken"
    assert host_simulator.state.accounts[account_id].schedulable is True

    second = reconcile(provider, sync_models=False)
    account.refresh_from_db()
    assert account.status == "disabled_by_policy"
    assert host_simulator.state.accounts[account_id].schedulable is False
    assert second.results.filter(kind="disabled_by_policy").exists()
    assert not second.results.filter(kind="changed").exists()  # our own change is no drift

    upstream.configure(api_key="sk-sim-upstream-key")
    with host_simulator.state.lock:  # the host marked the account broken after the 401
        host_simulator.state.accounts[account_id].status = "active"
    third = reconcile(provider, sync_models=False)
    account.refresh_from_db()
    provider.refresh_from_db()
    assert third.results.filter(kind="re_enabled").exists()
    assert host_simulator.state.accounts[account_id].schedulable is True
    assert account.status == "active" and account.consecutive_failures == 0
    assert provider.state == "active"
    kinds = list(provider.events.values_list("event_type", flat=True))
    assert "account_disabled" in kinds and "account_enabled" in kinds


def test_a_new_upstream_model_is_added_as_a_patch_only_import(host_simulator, upstream_factory):
    upstream = upstream_factory(models=("glm-4.5",))
    _, first_run, provider = imported(host_simulator, upstream)
    upstream.configure(models=["glm-4.5", "kimi-k2.6"])
    accounts_before = set(host_simulator.state.accounts)

    run = reconcile(provider, test_accounts=False)

    added = run.results.get(kind="models_added")
    assert added.diff["added"] == ["kimi-k2.6"]
    patch_run = drive(type(first_run).objects.get(pk=added.diff["import_run_id"]))
    assert patch_run.state in ("completed", "completed_with_warnings")
    item = patch_run.items.get()
    assert item.account_resolution == "reused" and item.provision_reused
    assert set(host_simulator.state.accounts) == accounts_before  # no new account
    (account,) = host_simulator.state.accounts.values()
    assert "kimi-k2.6" in account.credentials.get("model_mapping", {}).values()
    assert provider.events.filter(event_type="models_added").exists()


def test_a_model_gone_upstream_is_reported_and_kept(host_simulator, upstream_factory):
    upstream = upstream_factory(models=("glm-4.5", "kimi-k2.6"))
    _, _, provider = imported(host_simulator, upstream)
    upstream.configure(models=["glm-4.5"])

    run = reconcile(provider, test_accounts=False)

    removed = run.results.get(kind="models_removed")
    assert removed.diff == {"removed": ["kimi-k2.6"]}
    assert not run.results.filter(kind="models_added").exists()
    (account,) = host_simulator.state.accounts.values()
    assert "kimi-k2.6" in account.credentials.get("model_mapping", {}).values()


def test_self_service_access_closure(host_simulator, upstream_factory):
    host = register(host_simulator)
    # The self-service probe key is a user key of a group made by a subscription run first.
    upstream = upstream_factory(models=("glm-4.5",))
    sub = drive(start(host, [entry(upstream)]))
    services.provider_absorb_run(run_id=sub.run_id)
    provider = Provider.objects.get()
    assert provider.access_status == "subscription_ready"
    key = ManagedResource.objects.get(resource_type="api_key").secret
    self_run = drive(
        start(host, [entry(upstream)], access_mode="self_service", probe_api_key=key.reveal())
    )
    assert self_run.items.get().access_status == "active"
    services.provider_absorb_run(run_id=self_run.run_id)
    provider.refresh_from_db()
    assert provider.access_status == "fully_ready"


def test_a_killed_reconcile_is_resumed_where_it_stopped(host_simulator, upstream_factory):
    _, _, provider = imported(host_simulator, upstream_factory(models=("glm-4.5",)))
    run = services.reconcile_start(host=provider.host, provider_pks=[provider.pk])
    # A worker claimed it and died: the lease lapses, the sweep hands it out again.
    ReconcileRun.objects.filter(pk=run.pk).update(lease_owner="dead", lease_until=None)
    from providers.reconcile import resumable_runs

    assert resumable_runs() == [run.run_id]
    assert reconcile_run(run.run_id, ReconcileContext(worker_id="w2")) == "completed"
    run.refresh_from_db()
    assert run.pending_provider_ids == [] and run.results.exists()
    assert resumable_runs() == []
