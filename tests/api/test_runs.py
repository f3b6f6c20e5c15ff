"""Run routes (seed 004 §3.1-3.3, cancel) and their shapes (§6.1-6.3)."""

from __future__ import annotations

import pytest

from batch_import.api.serializers import RunOutputSerializer
from batch_import.models import ImportRun, ImportRunItem
from batch_import.projection import run_projection
from tests.factories import ImportRunFactory, ImportRunItemFactory

pytestmark = pytest.mark.django_db

RUN_FIELDS = {
    "run_id",
    "state",
    "mode",
    "access_mode",
    "host_id",
    "total_items",
    "completed_items",
    "active_items",
    "degraded_items",
    "broken_items",
    "warning_items",
    "started_at",
    "finished_at",
    "is_preview",
    "preview_of",
    "promoted_to",
}


def test_output_serializer_declares_every_projection_field():
    assert set(run_projection(ImportRunFactory.build(host_id=1))) == set(
        RunOutputSerializer().fields
    )


def test_list_runs_returns_projections_and_a_null_cursor(api):
    run = ImportRunFactory(state=ImportRun.State.COMPLETED_WITH_WARNINGS)
    response = api.get("/api/batch-import/runs")
    assert response.status_code == 200
    assert set(response.json()) == {"runs", "next_cursor"}
    assert response.json()["next_cursor"] is None
    [listed] = response.json()["runs"]
    assert set(listed) == RUN_FIELDS
    assert listed["run_id"] == run.run_id and listed["state"] == "completed_with_warnings"


def test_list_runs_newest_first(api):
    old, new = ImportRunFactory(), ImportRunFactory()
    ImportRun.objects.filter(pk=old.pk).update(started_at="2026-01-01T00:00:00Z")
    ids = [r["run_id"] for r in api.get("/api/batch-import/runs").json()["runs"]]
    assert ids == [new.run_id, old.run_id]


def test_get_run_returns_run_and_recent_warnings(api):
    run = ImportRunFactory(degraded_items=1, total_items=2)
    ImportRunItemFactory(run=run, confirmation_status=ImportRunItem.ConfirmationStatus.ADVISORY)
    body = api.get(f"/api/batch-import/runs/{run.run_id}").json()
    assert set(body) == {"run", "recent_warnings"}
    assert set(body["run"]) == RUN_FIELDS
    assert body["run"]["degraded_items"] == 1
    assert any("advisory" in text for text in body["recent_warnings"])
    assert any("degraded" in text for text in body["recent_warnings"])


def test_get_unknown_run_is_404(api):
    response = api.get("/api/batch-import/runs/run_nope")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "not_found",
        "message": "run run_nope does not exist",
    }


def test_create_run_answers_run_created_with_result_page(api, run_body):
    response = api.post("/api/batch-import/runs", run_body(), format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "run_id",
        "state",
        "result_page",
        "total_items",
        "active_items",
        "degraded_items",
        "broken_items",
        "warning_items",
    }
    assert body["state"] == "running" and body["total_items"] == 1
    assert body["result_page"] == f"/batch-import/runs/{body['run_id']}"
    assert response["Location"] == f"/api/batch-import/runs/{body['run_id']}"
    run = ImportRun.objects.with_counts().get(pk=body["run_id"])
    assert run.created_by == "ops"
    assert run.items.get().current_stage == "probe"  # no worker runs in tests


def test_create_run_waits_bounded_when_asked(api, run_body, settings, monkeypatch):
    settings.RELAY_API_MAX_WAIT_SEC = 2
    waited = []

    def fake_wait(*, run_id, timeout_sec):
        waited.append(timeout_sec)
        return ImportRun.objects.with_counts().get(pk=run_id)

    monkeypatch.setattr("batch_import.services.run_wait", fake_wait)
    response = api.post(
        "/api/batch-import/runs", run_body(confirm_wait_timeout_sec=600), format="json"
    )
    assert response.status_code == 201
    assert waited == [2]  # capped by RELAY_API_MAX_WAIT_SEC
    assert response.json()["state"] == "running"  # the state at that moment


def test_create_run_without_wait_does_not_wait(api, run_body, monkeypatch):
    monkeypatch.setattr("batch_import.services.run_wait", lambda **kw: pytest.fail("must not wait"))
    response = api.post("/api/batch-import/runs", run_body(), format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["state"], body["total_items"], body["active_items"]) == ("running", 1, 0)
    run = ImportRun.objects.with_counts().get(pk=body["run_id"])
    assert run.confirm_wait_timeout_sec == 0 and run.items.count() == 1


def test_cancel_run_returns_the_updated_projection(api):
    run = ImportRunFactory()
    ImportRunItemFactory(run=run)
    response = api.post(f"/api/batch-import/runs/{run.run_id}/cancel")
    assert response.status_code == 200
    assert response.json()["run"]["state"] == "cancelled"
    assert ImportRun.objects.with_counts().get(pk=run.pk).state == "cancelled"


def test_cancel_finished_run_is_409(api):
    run = ImportRunFactory(state=ImportRun.State.COMPLETED)
    response = api.post(f"/api/batch-import/runs/{run.run_id}/cancel")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert "already completed" in response.json()["error"]["message"]


def test_cancel_unknown_run_is_404(api):
    response = api.post("/api/batch-import/runs/run_nope/cancel")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_runs_cannot_be_written_directly(api):
    run = ImportRunFactory()
    for method in ("put", "patch", "delete"):
        response = getattr(api, method)(f"/api/batch-import/runs/{run.run_id}", {}, format="json")
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "invalid_request"
    assert ImportRun.objects.with_counts().get(pk=run.pk).state == "running"
