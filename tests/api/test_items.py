"""Item routes (seed 004 §3.4-3.5, retry) and their shapes (§6.4-6.5)."""

from __future__ import annotations

import json

import pytest

from batch_import.api.serializers import ItemDetailOutputSerializer, ItemOutputSerializer
from batch_import.models import ImportRunItem
from batch_import.projection import item_detail_projection, item_projection
from tests.factories import ImportRunFactory, ImportRunItemEventFactory, ImportRunItemFactory

pytestmark = pytest.mark.django_db

Stage = ImportRunItem.Stage
Access = ImportRunItem.AccessStatus

PROFILE = {
    "transport_profile": {
        "supports_openai_models": True,
        "supports_openai_chat_completions": True,
        "supports_openai_responses": False,
        "supports_anthropic_messages": False,
        "auth_style": "bearer",
        "model_id_style": "canonical",
        "known_advisories": ["responses_unsupported_but_chat_ok"],
    },
    "model_profiles": [
        {
            "raw_model_id": "kimi-k2.6",
            "normalized_model_id": "kimi-k2.6",
            "canonical_model_family": "kimi-k2.6",
            "supports_stream": True,
            "supports_tools": "unknown",
            "supports_reasoning_fields": "unknown",
            "smoke_chat_ok": True,
        }
    ],
}


def test_output_serializers_declare_every_projection_field():
    item = ImportRunItemFactory.build(run=ImportRunFactory.build())
    assert set(item_projection(item)) == set(ItemOutputSerializer().fields)
    assert set(item_detail_projection(item, [])) == set(ItemDetailOutputSerializer().fields)


def test_list_items_returns_projections(api):
    item = ImportRunItemFactory(advisory_messages=["responses_unsupported_but_chat_ok"])
    response = api.get(f"/api/batch-import/runs/{item.run_id}/items")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"items", "next_cursor"} and body["next_cursor"] is None
    [listed] = body["items"]
    assert listed == json.loads(json.dumps(item_projection(item)))
    assert "capability_profile" not in listed and "events" not in listed
    assert listed["advisory_messages"][0].startswith("The upstream does not support /v1/responses")


def test_list_items_problems_first(api):
    run = ImportRunFactory()
    done_ok = ImportRunItemFactory(run=run, current_stage=Stage.DONE, access_status=Access.ACTIVE)
    done_broken = ImportRunItemFactory(
        run=run, current_stage=Stage.DONE, access_status=Access.BROKEN
    )
    done_degraded = ImportRunItemFactory(
        run=run, current_stage=Stage.DONE, access_status=Access.DEGRADED
    )
    running = ImportRunItemFactory(run=run, current_stage=Stage.CONFIRM)
    ids = [
        i["item_id"] for i in api.get(f"/api/batch-import/runs/{run.run_id}/items").json()["items"]
    ]
    assert ids[0] == running.item_id
    assert set(ids[1:3]) == {done_broken.item_id, done_degraded.item_id}
    assert ids[1] == done_degraded.item_id  # most recently updated first within a group
    assert ids[3] == done_ok.item_id


def test_list_items_of_unknown_run_is_404(api):
    response = api.get("/api/batch-import/runs/run_nope/items")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_item_detail_has_capability_profile_and_event_trail(api):
    item = ImportRunItemFactory(
        capability_profile=PROFILE,
        raw_models=["kimi-k2.6"],
        recommended_models=["kimi-k2.6"],
        provision_reused=True,
        reused_from_provider_id="kimi-a7m-7d7ac291",
        reused_from_account_id=4,
    )
    first = ImportRunItemEventFactory(item=item, message="first", payload={"delay_ms": 500})
    second = ImportRunItemEventFactory(item=item, event_type="retry_scheduled", message="second")
    response = api.get(f"/api/batch-import/runs/{item.run_id}/items/{item.item_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["capability_profile"] == PROFILE
    assert [e["event_id"] for e in body["events"]] == [first.event_id, second.event_id]
    assert body["events"][0]["payload_json"] == '{"delay_ms": 500}'
    assert body["events"][1]["event_type"] == "retry_scheduled"
    assert body["recommended_models"] == [{"model": "kimi-k2.6", "raw_id": "kimi-k2.6"}]
    assert body["raw_models"] == ["kimi-k2.6"]
    assert body["provision_reused"] is True and body["reused_from_account_id"] == 4


def test_item_detail_reads_profiles_stored_as_yes_no_in_seed_004_types(api):
    """Rows probed before the profile took seed 004's shape (``"yes"``/``"no"``) read as
    booleans; "unknown" stays the string."""
    stored = {
        **PROFILE,
        "model_profiles": [
            {
                **PROFILE["model_profiles"][0],
                "supports_stream": "yes",
                "supports_tools": "no",
                "supports_reasoning_fields": "unknown",
            }
        ],
    }
    item = ImportRunItemFactory(capability_profile=stored)
    body = api.get(f"/api/batch-import/runs/{item.run_id}/items/{item.item_id}").json()
    [model] = body["capability_profile"]["model_profiles"]
    assert (model["supports_stream"], model["supports_tools"]) == (True, False)
    assert model["supports_reasoning_fields"] == "unknown"
    assert body["capability_profile"]["transport_profile"] == PROFILE["transport_profile"]


def test_recommendations_are_canonical_family_names_with_the_raw_id_beside_them(api):
    item = ImportRunItemFactory(
        recommended_models=["moonshotai/Kimi-K2.6", "gpt-4o-2024-08-06", "glm-4.5"]
    )
    body = api.get(f"/api/batch-import/runs/{item.run_id}/items/{item.item_id}").json()
    assert body["recommended_models"] == [
        {"model": "kimi-k2.6", "raw_id": "moonshotai/Kimi-K2.6"},
        {"model": "gpt-4o", "raw_id": "gpt-4o-2024-08-06"},
        {"model": "glm-4.5", "raw_id": "glm-4.5"},
    ]


def test_item_of_another_run_is_404(api):
    item = ImportRunItemFactory()
    other = ImportRunFactory()
    response = api.get(f"/api/batch-import/runs/{other.run_id}/items/{item.item_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_retry_done_item_returns_updated_detail(api):
    item = ImportRunItemFactory(
        current_stage=Stage.DONE,
        access_status=Access.BROKEN,
        last_error_stage=Stage.CONFIRM,
        last_error="API returned 403",
    )
    response = api.post(f"/api/batch-import/runs/{item.run_id}/items/{item.item_id}/retry")
    assert response.status_code == 200
    body = response.json()
    assert body["current_stage"] == "confirm" and body["attempt"] == 2
    assert body["events"][-1]["event_type"] == "retried"
    assert "by ops" in body["events"][-1]["message"]


def test_retry_unfinished_item_is_409(api):
    item = ImportRunItemFactory(current_stage=Stage.CONFIRM)
    response = api.post(f"/api/batch-import/runs/{item.run_id}/items/{item.item_id}/retry")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert "still in stage confirm" in response.json()["error"]["message"]


def test_retry_unknown_item_is_404(api):
    run = ImportRunFactory()
    response = api.post(f"/api/batch-import/runs/{run.run_id}/items/item_nope/retry")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
