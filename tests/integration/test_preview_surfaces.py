"""Preview through the API and the pages: start one, read its plan, promote it."""

from __future__ import annotations

import pytest

from batch_import.models import ImportRun
from tests.api.conftest import api, token, user  # noqa: F401
from tests.integration.pipeline import drive, register
from tests.pages.conftest import staff  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def _body(host, upstream, **extra):
    return {
        "host_id": host.pk,
        "mode": "partial",
        "access_mode": "subscription",
        "subscription_users": ["ops@example.com"],
        "subscription_days": 30,
        "entries": [{"base_url": upstream.base_url, "api_key": upstream.api_key}],
        **extra,
    }


def test_api_preview_then_promote(api, host_simulator, upstream_factory):  # noqa: F811
    host = register(host_simulator)
    upstream = upstream_factory(models=("glm-4.5",))
    created = api.post("/api/batch-import/runs", _body(host, upstream, dry_run=True), format="json")
    assert created.status_code == 201, created.json()
    run_id = created.json()["run_id"]
    drive(ImportRun.objects.with_counts().get(pk=run_id))
    run = api.get(f"/api/batch-import/runs/{run_id}").json()["run"]
    assert run["is_preview"] is True and run["promoted_to"] is None
    item_id = api.get(f"/api/batch-import/runs/{run_id}/items").json()["items"][0]["item_id"]
    detail = api.get(f"/api/batch-import/runs/{run_id}/items/{item_id}").json()
    assert detail["preview_plan"]["decision"]["action"] == "create"
    assert detail["access_status"] == "unknown"
    assert not host_simulator.state.accounts

    promoted = api.post(f"/api/batch-import/runs/{run_id}/promote")
    assert promoted.status_code == 201
    real = drive(ImportRun.objects.with_counts().get(pk=promoted.json()["run_id"]))
    assert real.preview_of == run_id and real.items.get().access_status == "active"
    again = api.post(f"/api/batch-import/runs/{run_id}/promote")
    assert again.status_code == 409


def test_api_rejects_a_non_boolean_dry_run(api, host_simulator, upstream_factory):  # noqa: F811
    host = register(host_simulator)
    body = _body(host, upstream_factory(models=("glm-4.5",)), dry_run="yes")
    response = api.post("/api/batch-import/runs", body, format="json")
    assert response.status_code == 400 and "dry_run" in response.json()["error"]["fields"]
    assert not ImportRun.objects.exists() and host_simulator.state.accounts == {}


def test_pages_preview_button_plan_and_run_it_for_real(
    client,
    staff,  # noqa: F811
    host_simulator,
    upstream_factory,
):
    host = register(host_simulator)
    upstream = upstream_factory(models=("glm-4.5",))
    form = {
        "host_id": host.pk,
        "mode": "partial",
        "access_mode": "subscription",
        "subscription_users": "ops@example.com",
        "subscription_days": 30,
        "entries": f"{upstream.base_url},{upstream.api_key}",
        "preview": "1",
    }
    assert b'name="preview"' in client.get("/batch-import/runs/new").content
    response = client.post("/batch-import/runs/new", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    preview = drive(ImportRun.objects.with_counts().get())
    assert preview.is_preview
    page = client.get(f"/batch-import/runs/{preview.run_id}").content.decode()
    assert "Preview: nothing was written to the host." in page and "Run it for real" in page
    item = preview.items.get()
    item_page = client.get(f"/batch-import/runs/{preview.run_id}/items/{item.item_id}")
    assert b"Preview plan" in item_page.content and b"&quot;decision&quot;" in item_page.content
    promoted = client.post(f"/batch-import/runs/{preview.run_id}/promote")
    real = ImportRun.objects.exclude(pk=preview.run_id).get()
    assert promoted.url == f"/batch-import/runs/{real.run_id}"
    assert not host_simulator.state.accounts  # nothing yet: the real run has just started
