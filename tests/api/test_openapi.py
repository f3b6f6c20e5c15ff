"""docs/openapi.yaml is generated from the code and must be current (``make openapi``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"

SEED_ROUTES = {
    ("post", "/api/batch-import/runs"),
    ("get", "/api/batch-import/runs"),
    ("get", "/api/batch-import/runs/{run_id}"),
    ("post", "/api/batch-import/runs/{run_id}/cancel"),
    ("get", "/api/batch-import/runs/{run_id}/items"),
    ("get", "/api/batch-import/runs/{run_id}/items/{item_id}"),
    ("post", "/api/batch-import/runs/{run_id}/items/{item_id}/retry"),
    ("post", "/api/hosts"),
    ("get", "/api/hosts"),
    ("get", "/api/hosts/{host_id}"),
    ("post", "/api/hosts/{host_id}/probe"),
    ("get", "/api/import-batches"),
    ("get", "/api/import-batches/{batch_id}"),
    ("get", "/api/batch-import/runs/{run_id}/rollback"),
    ("post", "/api/batch-import/runs/{run_id}/rollback"),
    ("post", "/api/batch-import/runs/{run_id}/promote"),
    ("post", "/api/packs/install"),
    ("get", "/api/packs"),
    ("get", "/api/packs/{pack_id}"),
    ("get", "/api/packs/{pack_id}/providers"),
    # Seed 002 §3.1 "对账与状态" and "访问闭环" (issue #18).
    ("get", "/api/providers"),
    ("get", "/api/providers/{id}"),
    ("get", "/api/providers/{id}/status"),
    ("get", "/api/providers/{id}/resources"),
    ("get", "/api/providers/{id}/access/status"),
    ("post", "/api/providers/{id}/reconcile"),
    ("post", "/api/providers/{id}/test"),
    ("post", "/api/providers/{id}/disable"),
    ("post", "/api/providers/{id}/enable"),
    ("post", "/api/providers/{id}/accept-drift"),
    ("post", "/api/providers/bulk"),
    ("post", "/api/providers/{id}/accounts/{account_id}/{switch}"),
    ("get", "/api/reconcile-runs/{run_id}"),
    ("get", "/api/hosts/{host_id}/access/status"),
}


@pytest.fixture(scope="module")
def schema():
    return yaml.safe_load(DOC.read_text())


def test_committed_schema_is_current(tmp_path):
    fresh = tmp_path / "openapi.yaml"
    call_command("spectacular", "--file", str(fresh), "--validate", "--fail-on-warn")
    assert fresh.read_text() == DOC.read_text(), "docs/openapi.yaml is stale: run `make openapi`"


def test_schema_has_exactly_the_api_routes(schema):
    operations = {
        (method, path)
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert operations == SEED_ROUTES


def test_every_operation_documents_its_errors_with_the_envelope(schema):
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert {"401", "403", "500"} <= set(responses), (method, path)
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    assert response["content"]["application/json"]["schema"] == envelope
            if "{" in path:
                assert "404" in responses, (method, path)
            if method == "post" and path != "/api/hosts":
                assert "409" in responses or path.endswith("/probe"), (method, path)


def test_list_operations_document_limit_and_cursor(schema):
    for path in ("/api/batch-import/runs", "/api/batch-import/runs/{run_id}/items"):
        names = {p["name"] for p in schema["paths"][path]["get"]["parameters"]}
        assert {"limit", "cursor"} <= names
    item_filters = {
        p["name"]
        for p in schema["paths"]["/api/batch-import/runs/{run_id}/items"]["get"]["parameters"]
    }
    assert {
        "current_stage",
        "confirmation_status",
        "access_status",
        "has_warning",
        "provider_id",
        "matched_account_state",
        "account_resolution",
        "q",
    } <= item_filters


def test_input_and_output_components_are_separate(schema):
    components = schema["components"]["schemas"]
    assert "RunCreateInputRequest" in components and "RunCreatedOutput" in components
    assert "api_key" not in components["ItemOutput"]["properties"]
    assert "probe_api_key" not in components["RunOutput"]["properties"]
    assert components["EntryInputRequest"]["properties"]["api_key"]["writeOnly"] is True


def test_seed_examples_are_attached(schema):
    post = schema["paths"]["/api/batch-import/runs"]["post"]
    created = post["responses"]["201"]["content"]["application/json"]["examples"]
    assert next(iter(created.values()))["value"]["result_page"].startswith("/batch-import/runs/")
    detail = schema["paths"]["/api/batch-import/runs/{run_id}/items/{item_id}"]["get"]
    example = next(
        iter(detail["responses"]["200"]["content"]["application/json"]["examples"].values())
    )
    assert example["value"]["capability_profile"]["transport_profile"]["auth_style"] == "bearer"


def test_model_features_are_seed_004_tri_states(schema):
    """Seed 004 §6.5: ``supports_stream: true``, ``supports_tools: "unknown"``: a boolean or
    the one string "unknown", nothing else (no yes/no)."""
    detail = schema["components"]["schemas"]["ItemDetailOutput"]["properties"]
    model = detail["capability_profile"]["properties"]["model_profiles"]["items"]["properties"]
    for name in ("supports_stream", "supports_tools", "supports_reasoning_fields"):
        assert model[name]["oneOf"] == [
            {"type": "boolean"},
            {"type": "string", "enum": ["unknown"]},
        ]
    assert model["smoke_chat_ok"] == {"type": "boolean"}


def test_recommendations_are_objects_with_the_family_and_the_raw_id(schema):
    detail = schema["components"]["schemas"]["ItemDetailOutput"]["properties"]
    items = detail["recommended_models"]["items"]
    assert items == {"$ref": "#/components/schemas/RecommendationOutput"}
    recommendation = schema["components"]["schemas"]["RecommendationOutput"]
    assert set(recommendation["properties"]) == {"model", "raw_id"}
    assert set(recommendation["required"]) == {"model", "raw_id"}
