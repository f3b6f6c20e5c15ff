"""OpenAPI examples, taken from seed 004 §6 (plus the projection fields the seed leaves out)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample

RUN = {
    "run_id": "run_20260522_0001",
    "state": "completed_with_warnings",
    "mode": "partial",
    "access_mode": "subscription",
    "host_id": 1,
    "total_items": 2,
    "completed_items": 2,
    "active_items": 1,
    "degraded_items": 1,
    "broken_items": 0,
    "warning_items": 1,
    "started_at": "2026-05-22T12:20:00+08:00",
    "finished_at": "2026-05-22T12:20:07+08:00",
    "is_preview": False,
    "preview_of": None,
    "promoted_to": None,
}

ITEM = {
    "item_id": "item_01",
    "run_id": "run_20260522_0001",
    "base_url": "https://kimi.a7m.com.cn/v1",
    "provider_id": "kimi-a7m-7d7ac291",
    "api_key_fingerprint": "sha256:8d8c4b5f",
    "requested_models": ["kimi-k2.6"],
    "canonical_model_families": ["kimi-k2.6"],
    "resolved_smoke_model": "kimi-k2.6",
    "current_stage": "done",
    "confirmation_status": "advisory",
    "access_status": "active",
    "matched_account_state": "active",
    "account_resolution": "reused",
    "provision_reused": True,
    "has_warning": True,
    "retry_count": 2,
    "last_retry_at": "2026-05-22T12:20:05+08:00",
    "advisory_messages": [
        "The upstream does not support /v1/responses; the host falls back to /v1/chat/completions."
    ],
    "last_error_stage": "confirm",
    "last_error": "API returned 403: Forbidden",
    "rolled_back_at": None,
}

ITEM_DETAIL = {
    **ITEM,
    "matched_account_state": "deprecated",
    "account_resolution": "reactivated",
    "raw_models": ["kimi-k2.6"],
    "normalized_models": ["kimi-k2.6"],
    "recommended_models": [],
    "reused_from_provider_id": "kimi-a7m-7d7ac291",
    "reused_from_account_id": 4,
    "channel_id": 12,
    "account_id": 4,
    "group_id": 7,
    "attempt": 1,
    "confirmation_attempts": 2,
    "next_retry_at": None,
    "lease_owner": None,
    "lease_until": None,
    "legacy_batch_id": 1,
    "legacy_provider_id": "kimi-a7m-7d7ac291",
    "capability_profile": {
        "transport_profile": {
            "supports_openai_models": True,
            "supports_openai_chat_completions": True,
            "supports_openai_responses": False,
            "supports_anthropic_messages": False,
            "auth_style": "bearer",
            "model_id_style": "canonical",
            "known_advisories": [
                "responses_unsupported_but_chat_ok",
                "initial_probe_race_expected",
            ],
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
    },
    "preview_plan": None,
    "events": [
        {
            "event_id": "evt_01",
            "event_type": "retry_scheduled",
            "stage": "confirm",
            "attempt": 1,
            "message": "initial 503 no available accounts, retry scheduled",
            "payload_json": '{"delay_ms":500}',
            "created_at": "2026-05-22T12:20:04+08:00",
        }
    ],
}


def response(name: str, value: dict, *, status: int = 200) -> OpenApiExample:
    return OpenApiExample(name, value=value, response_only=True, status_codes=[status])


def request(name: str, value: dict) -> OpenApiExample:
    return OpenApiExample(name, value=value, request_only=True)


RUN_CREATE_SUBSCRIPTION = request(
    "subscription access",
    {
        "host_id": 1,
        "mode": "partial",
        "access_mode": "subscription",
        "subscription_users": ["ops@example.com"],
        "subscription_days": 30,
        "confirm_wait_timeout_sec": 0,
        "entries": [
            {
                "base_url": "https://kimi.a7m.com.cn/v1",
                "api_key": "sk-example-1",
                "requested_models": ["kimi-k2.6"],
            },
            {"base_url": "https://relay.example.com/v1", "api_key": "sk-example-2"},
        ],
    },
)
RUN_CREATE_SELF_SERVICE = request(
    "self-service access",
    {
        "host_id": 1,
        "mode": "strict",
        "access_mode": "self_service",
        "probe_api_key": "sk-host-user-key",
        "entries": [{"base_url": "https://relay.example.com/v1", "api_key": "sk-example-3"}],
    },
)
RUN_CREATED = {
    "run_id": "run_20260522_0001",
    "state": "running",
    "result_page": "/batch-import/runs/run_20260522_0001",
    "total_items": 2,
    "active_items": 0,
    "degraded_items": 0,
    "broken_items": 0,
    "warning_items": 0,
}
RUN_LIST = {"runs": [RUN], "next_cursor": None}
RUN_DETAIL = {
    "run": RUN,
    "recent_warnings": [
        "This run has 1 advisory item; check its capability profile and retry trail."
    ],
}
ITEM_LIST = {"items": [ITEM], "next_cursor": None}
