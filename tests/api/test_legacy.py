"""Legacy /api/import-batches: read-only, deprecated, linked to V2 items."""

from __future__ import annotations

import pytest
import yaml

from batch_import.models import LegacyImportBatch
from tests.factories import HostFactory, ImportRunFactory, ImportRunItemFactory

pytestmark = pytest.mark.django_db


def make_batch(**kwargs):
    run = ImportRunFactory()
    batch = LegacyImportBatch.objects.create(
        host=run.host, run_id=run.run_id, mode="partial", **kwargs
    )
    return run, batch


def test_list_legacy_batches_newest_first(api):
    _, older = make_batch()
    _, newer = make_batch()
    body = api.get("/api/import-batches").json()
    assert set(body) == {"import_batches", "next_cursor"}
    assert [b["batch_id"] for b in body["import_batches"]] == [newer.pk, older.pk]


def test_legacy_batch_detail_lists_its_items_ids(api):
    run, batch = make_batch(provider_ids=["kimi-a7m-7d7ac291"])
    linked = ImportRunItemFactory(
        run=run, legacy_batch=batch, provider_id="relay-x", legacy_provider_id="relay-x-legacy"
    )
    ImportRunItemFactory(run=run)  # not linked
    body = api.get(f"/api/import-batches/{batch.pk}").json()
    assert body["run_id"] == run.run_id and body["status"] == "running"
    assert body["items"] == [
        {
            "item_id": linked.item_id,
            "provider_id": "relay-x",
            "legacy_provider_id": "relay-x-legacy",
        }
    ]
    assert body["provider_ids"] == ["kimi-a7m-7d7ac291", "relay-x-legacy"]


def test_unknown_legacy_batch_is_404(api):
    response = api.get("/api/import-batches/999999")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_legacy_batches_are_read_only(api):
    host = HostFactory()
    response = api.post("/api/import-batches", {"host_id": host.pk}, format="json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "invalid_request"  # every other 4xx (errors.py)
    assert "POST" not in response["Allow"] and "GET" in response["Allow"]
    assert not LegacyImportBatch.objects.exists()


def test_legacy_endpoints_are_deprecated_in_the_schema(api):
    schema = yaml.safe_load(api.get("/api/schema/").content)
    for path in ("/api/import-batches", "/api/import-batches/{batch_id}"):
        assert schema["paths"][path]["get"]["deprecated"] is True
    assert "deprecated" not in schema["paths"]["/api/batch-import/runs"]["get"]
