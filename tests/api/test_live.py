from __future__ import annotations

import pytest

from hosts.models import Host, HostCapabilitySnapshot

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_register_and_reprobe_a_real_simulated_host_through_the_api(api, host_simulator):
    answer = api.post(
        "/api/hosts",
        {
            "name": "sim",
            "base_url": host_simulator.url,
            "auth_type": "admin_api_key",
            "admin_credential": host_simulator.admin_key,
        },
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["status"] == "supported"
    assert host_simulator.admin_key not in answer.content.decode()
    host = Host.objects.get(name="sim")
    again = api.post(f"/api/hosts/{host.pk}/probe")
    assert again.status_code == 200
    assert HostCapabilitySnapshot.objects.filter(host=host).count() == 2
    assert not host_simulator.state.accounts  # registration never creates anything


def test_register_with_a_wrong_admin_key_names_the_field_and_saves_nothing(api, host_simulator):
    answer = api.post(
        "/api/hosts",
        {
            "name": "sim",
            "base_url": host_simulator.url,
            "auth_type": "admin_api_key",
            "admin_credential": "admin-wrong",
        },
        format="json",
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_request"
    assert not Host.objects.exists()


def test_a_run_started_over_the_api_reads_back_finished(
    api, host_simulator, upstream_factory, fast_pipeline
):
    from tests.integration.pipeline import drive, register

    host = register(host_simulator)
    upstream = upstream_factory(models=("kimi-k2.6",))
    created = api.post(
        "/api/batch-import/runs",
        {
            "host_id": host.pk,
            "mode": "partial",
            "access_mode": "subscription",
            "subscription_users": ["ops@example.com"],
            "subscription_days": 30,
            "entries": [{"base_url": upstream.base_url, "api_key": upstream.api_key}],
        },
        format="json",
    )
    assert created.status_code == 201
    run_id = created.json()["run_id"]
    from batch_import.models import ImportRun

    drive(ImportRun.objects.with_counts().get(pk=run_id))
    detail = api.get(f"/api/batch-import/runs/{run_id}").json()
    assert detail["run"]["state"] == "completed" and detail["run"]["active_items"] == 1
    items = api.get(f"/api/batch-import/runs/{run_id}/items").json()["items"]
    item = api.get(f"/api/batch-import/runs/{run_id}/items/{items[0]['item_id']}").json()
    assert item["access_status"] == "active" and item["events"][-1]["event_type"] == "validated"
    assert upstream.api_key not in str(items) + str(item)
