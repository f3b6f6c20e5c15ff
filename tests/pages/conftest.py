from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.factories import ImportRunFactory, ImportRunItemEventFactory, ImportRunItemFactory

SECRET_KEYS = ("sk-known-secret-upstream-0001", "sk-known-secret-upstream-0002")
PROBE_KEY = "sk-known-secret-probe-key"


@pytest.fixture
def staff(db, client):
    user = get_user_model().objects.create_user(
        username="ops", password="ops-password", is_staff=True, is_superuser=True
    )
    client.force_login(user)
    return user


@pytest.fixture
def rich_run(db):
    """A finished run holding every badge kind."""
    run = ImportRunFactory(
        state="completed_with_warnings",
        probe_api_key=PROBE_KEY,
        total_items=4,
        completed_items=4,
        active_items=3,
        broken_items=1,
        warning_items=1,
    )
    profile = {
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
                "raw_model_id": "Kimi-K2.6",
                "normalized_model_id": "kimi-k2.6",
                "canonical_model_family": "kimi-k2.6",
                "supports_stream": "yes",
                "supports_tools": "unknown",
                "supports_reasoning_fields": "no",
                "smoke_chat_ok": True,
            },
        ],
    }
    items = [
        ImportRunItemFactory(
            run=run,
            key=SECRET_KEYS[0],
            current_stage="done",
            confirmation_status="advisory",
            access_status="active",
            matched_account_state="deprecated",
            account_resolution="reactivated",
            provision_reused=True,
            raw_models=["Kimi-K2.6"],
            resolved_smoke_model="Kimi-K2.6",
            capability_profile=profile,
            advisory_messages=["probe_race_absorbed"],
            has_warning=True,
            account_id=4,
        ),
        ImportRunItemFactory(
            run=run,
            key=SECRET_KEYS[1],
            current_stage="done",
            confirmation_status="failed",
            access_status="broken",
            matched_account_state="broken",
            account_resolution="replaced",
            last_error_stage="validate",
            last_error="gateway refused: HTTP 403",
            failure_class="host_refused",
        ),
        ImportRunItemFactory(
            run=run,
            current_stage="done",
            confirmation_status="confirmed",
            access_status="active",
            matched_account_state="active",
            account_resolution="reused",
            provision_reused=True,
        ),
        ImportRunItemFactory(
            run=run,
            current_stage="done",
            confirmation_status="confirmed",
            access_status="active",
            matched_account_state="disabled",
            account_resolution="created",
        ),
    ]
    ImportRunItemEventFactory(
        item=items[0],
        event_type="retry_scheduled",
        stage="confirm",
        payload={"delay_ms": 500},
        message="initial 503, retry scheduled",
    )
    return run
