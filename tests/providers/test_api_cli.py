"""The provider API and `manage.py reconcile` against the simulators (issue #18)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from providers import services
from providers.models import Provider, ReconcileRun
from providers.reconcile import ReconcileContext, reconcile_run
from tests.api.conftest import api, token, user  # noqa: F401
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def provider(host_simulator, upstream_factory):
    host = register(host_simulator)
    run = drive(start(host, [entry(upstream_factory(models=("glm-4.5",)))]))
    (provider,) = services.provider_absorb_run(run_id=run.run_id)
    return provider


def test_list_filters_and_searches(api, provider, upstream_factory):  # noqa: F811
    body = api.get("/api/providers").json()
    assert [p["provider_id"] for p in body["providers"]] == [provider.provider_id]
    (row,) = body["providers"]
    assert row["state"] == "active" and row["access_status"] == "subscription_ready"
    assert row["accounts"][0]["status"] == "active" and "api_key" not in str(row)
    assert api.get("/api/providers?state=drifted").json()["providers"] == []
    assert len(api.get("/api/providers?q=glm-4.5").json()["providers"]) == 1
    fingerprint = row["accounts"][0]["key_fingerprint"]
    assert len(api.get(f"/api/providers?q={fingerprint}").json()["providers"]) == 1
    assert api.get("/api/providers?q=nothing-like-this").json()["providers"] == []
    bad = api.get("/api/providers?state=shiny")
    assert bad.status_code == 400 and "state" in bad.json()["error"]["fields"]


def test_detail_status_resources_and_access(api, provider):  # noqa: F811
    base = f"/api/providers/{provider.pk}"
    assert api.get(base).json()["provider_id"] == provider.provider_id
    resources = api.get(f"{base}/resources").json()["resources"]
    assert {r["resource_type"] for r in resources} >= {"group", "channel", "account"}
    assert all("secret" not in r for r in resources)
    access = api.get(f"{base}/access/status").json()
    assert access["access_status"] == "subscription_ready"
    assert access["checks"][0]["access_mode"] == "subscription" and access["checks"][0]["ok"]
    status = api.get(f"{base}/status").json()
    assert status["state"] == "active" and status["latest_reconcile"] is None
    host_access = api.get(f"/api/hosts/{provider.host_id}/access/status").json()
    assert host_access["access_status"] == "subscription_ready"
    assert api.get("/api/providers/999999").status_code == 404
    assert api.get("/api/hosts/999999/access/status").status_code == 404


def test_reconcile_and_test_start_recorded_runs(api, provider):  # noqa: F811
    answer = api.post(f"/api/providers/{provider.pk}/reconcile", {}, format="json")
    assert answer.status_code == 202
    run_id = answer.json()["run_id"]
    assert answer.json()["state"] == "running" and answer.json()["sync_models"] is True
    reconcile_run(run_id, ReconcileContext(worker_id="w"))
    run = api.get(f"/api/reconcile-runs/{run_id}").json()
    assert run["state"] == "completed"
    assert {"baseline", "test_passed", "access_ok"} <= {r["kind"] for r in run["results"]}
    assert (
        api.get(f"/api/providers/{provider.pk}/status").json()["latest_reconcile"]["run_id"]
        == run_id
    )
    test = api.post(f"/api/providers/{provider.pk}/test", format="json").json()
    assert test["sync_models"] is False and test["test_accounts"] is True
    bad = api.post(f"/api/providers/{provider.pk}/reconcile", {"sync_models": "x"}, format="json")
    assert bad.status_code == 400
    assert api.get("/api/reconcile-runs/rec_nope").status_code == 404


def test_disable_enable_and_bulk(api, provider):  # noqa: F811
    disabled = api.post(f"/api/providers/{provider.pk}/disable").json()
    assert disabled["state"] == "disabled"
    refused = api.post(f"/api/providers/{provider.pk}/reconcile", {}, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "conflict"
    assert api.post(f"/api/providers/{provider.pk}/enable").json()["state"] == "active"
    runs = api.post("/api/providers/bulk", {"ids": [provider.pk], "action": "test"}, format="json")
    assert runs.status_code == 202 and runs.json()[0]["provider_ids"] == [provider.pk]
    moved = api.post(
        "/api/providers/bulk", {"ids": [provider.pk], "action": "disable"}, format="json"
    )
    assert moved.json()["providers"][0]["state"] == "disabled"
    events = list(Provider.objects.get().events.values_list("to_state", flat=True))
    assert events.count("disabled") == 2
    nothing = api.post("/api/providers/bulk", {"ids": [], "action": "test"}, format="json")
    assert nothing.status_code == 400 and "ids" in nothing.json()["error"]["fields"]


def test_reconcile_command_prints_findings(provider, host_simulator, capsys):
    call_command("reconcile", "--provider", str(provider.pk))
    account_id = provider.accounts.get().host_account_id
    with host_simulator.state.lock:
        del host_simulator.state.accounts[account_id]
    call_command("reconcile", "--host", str(provider.host_id), "--no-model-sync")
    out = capsys.readouterr().out
    assert f"missing account {account_id} is gone from the host" in out
    assert f"{provider.provider_id}: drifted" in out
    assert ReconcileRun.objects.filter(state="completed").count() == 2
    with pytest.raises(CommandError, match="--provider: no enabled provider with id 999"):
        call_command("reconcile", "--provider", "999")


def test_an_operator_switches_an_account_off_and_on(api, provider, host_simulator):  # noqa: F811
    account_id = provider.accounts.get().host_account_id
    call_command("reconcile", "--provider", str(provider.pk))  # baseline
    off = api.post(f"/api/providers/{provider.pk}/accounts/{account_id}/disable")
    assert off.status_code == 200
    assert off.json()["accounts"][0]["status"] == "disabled_by_operator"
    assert host_simulator.state.accounts[account_id].schedulable is False
    call_command("reconcile", "--provider", str(provider.pk))
    run = ReconcileRun.objects.order_by("-started_at").first()
    assert not run.results.filter(kind__in=("changed", "test_passed", "re_enabled")).exists()
    assert host_simulator.state.accounts[account_id].schedulable is False
    on = api.post(f"/api/providers/{provider.pk}/accounts/{account_id}/enable")
    assert on.json()["accounts"][0]["status"] == "active"
    assert host_simulator.state.accounts[account_id].schedulable is True
    kinds = list(provider.events.values_list("event_type", flat=True))
    assert kinds.count("account_disabled") == 1 and kinds.count("account_enabled") == 1
    missing = api.post(f"/api/providers/{provider.pk}/accounts/999/enable")
    assert missing.status_code == 404


def test_reconcile_results_read_in_the_readers_language(api, provider, host_simulator):  # noqa: F811
    """Findings are stored with a message id: the API and the command say them in the
    reader's language, the host's ids verbatim."""
    call_command("reconcile", "--provider", str(provider.pk))
    account_id = provider.accounts.get().host_account_id
    with host_simulator.state.lock:
        del host_simulator.state.accounts[account_id]
    call_command("reconcile", "--provider", str(provider.pk), "--no-model-sync")
    run_id = ReconcileRun.objects.order_by("-started_at").first().run_id

    def missing(language: str) -> str:
        run = api.get(f"/api/reconcile-runs/{run_id}", HTTP_ACCEPT_LANGUAGE=language).json()
        (result,) = [r for r in run["results"] if r["kind"] == "missing"]
        return result["message"]

    assert missing("en") == f"account {account_id} is gone from the host"
    chinese = missing("zh-hans")
    assert str(account_id) in chinese and "gone" not in chinese
