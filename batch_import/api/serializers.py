"""Input and output serializers of the batch-import API.

Inputs check JSON types and sizes (so nothing oversized or mistyped reaches the database);
the rules of a run request (conditional fields, URL schemes, host existence) stay in
``batch_import.run_requests.validate_run_request``, shared with the form and the CLI.

Outputs describe the projections of ``batch_import.projection`` — the views serialize those
dicts through these classes, so the schema and the answers cannot drift apart. Every class has
a unique name: drf-spectacular names the schema components after them, and its docstring
becomes the component's description, so it is written for API clients.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from batch_import.models import ImportRun, ImportRunItem, ImportRunItemEvent, LegacyImportBatch
from batch_import.run_requests import (
    MAX_CONFIRM_WAIT_SEC,
    MAX_ENTRIES,
    MAX_MODEL_NAME_LENGTH,
    MAX_REQUESTED_MODELS,
    MAX_SUBSCRIPTION_DAYS,
)
from hosts.subscribers import Refusal, SubscriptionChange, UserOutcome
from relay_project.api.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
)
from relay_project.inputs import (
    EMAIL_PATTERN,
    KEY_PATTERN,
    MAX_URL_LENGTH,
    URL_PATTERN,
    any_text_pattern,
    text_pattern,
)

MAX_BIGINT = 2**63 - 1

# --- input --------------------------------------------------------------------------------------


class EntryInputSerializer(serializers.Serializer):
    base_url = StrictCharField(
        max_length=MAX_URL_LENGTH,
        schema_pattern=URL_PATTERN,
        pattern_bounds_length=False,  # the pattern does not bound the path
        help_text=(
            "OpenAI-compatible base URL, e.g. https://relay.example.com/v1 (plain http only when "
            "the server allows insecure upstreams; IDN and IPv6 hosts are accepted too)."
        ),
    )
    api_key = StrictCharField(
        max_length=4096,
        schema_pattern=KEY_PATTERN,
        write_only=True,
        help_text="Upstream API key; stored encrypted, answered only as api_key_fingerprint.",
    )
    requested_models = serializers.ListField(
        child=StrictCharField(max_length=255, schema_pattern=text_pattern(MAX_MODEL_NAME_LENGTH)),
        required=False,
        max_length=MAX_REQUESTED_MODELS,
        help_text="Hints only: the upstream's /v1/models is the source of truth.",
    )


class RunCreateInputSerializer(serializers.Serializer):
    host_id = StrictIntegerField(min_value=1, max_value=MAX_BIGINT)
    mode = StrictChoiceField(choices=ImportRun.Mode.choices)
    access_mode = StrictChoiceField(choices=ImportRun.AccessMode.choices)
    subscription_users = serializers.ListField(
        child=StrictCharField(max_length=254, schema_pattern=any_text_pattern(254)),
        required=False,
        allow_null=True,
        max_length=MAX_ENTRIES,
        help_text="Emails of host users to subscribe. Required when access_mode=subscription.",
    )
    subscription_days = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_SUBSCRIPTION_DAYS,
        help_text="Subscription length. Required when access_mode=subscription.",
    )
    probe_api_key = StrictCharField(
        required=False,
        allow_null=True,
        max_length=4096,
        schema_pattern=any_text_pattern(4096),
        write_only=True,
        help_text="Host user key used for validation. Required when access_mode=self_service.",
    )
    confirm_wait_timeout_sec = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=MAX_CONFIRM_WAIT_SEC,
        help_text=(
            "Wait up to this many seconds (capped by the server) for the run to finish before "
            "answering; the answer is the run's state at that moment either way."
        ),
    )
    entries = serializers.ListField(
        child=EntryInputSerializer(), min_length=1, max_length=MAX_ENTRIES
    )
    dry_run = StrictBooleanField(
        required=False,
        default=False,
        help_text=(
            "Preview: probe every entry and plan the host resources without writing anything "
            "to the host; `POST …/runs/{run_id}/promote` then starts the real run."
        ),
    )


def _exactly(value: str) -> dict[str, str]:
    """One value, as a pattern: drf-spectacular would merge a one-value enum with the field's."""
    return {"type": "string", "pattern": f"^{value}$"}


class RunCreateInputSchema(OpenApiSerializerExtension):
    """The fields each access mode requires (``validate_run_request``), as one branch each."""

    target_class = RunCreateInputSerializer

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["oneOf"] = [
            {
                "type": "object",
                "properties": {
                    "access_mode": _exactly(ImportRun.AccessMode.SUBSCRIPTION),
                    "subscription_users": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string", "pattern": EMAIL_PATTERN},
                    },
                    "subscription_days": {"type": "integer"},
                },
                "required": ["subscription_users", "subscription_days"],
            },
            {
                "type": "object",
                "properties": {
                    "access_mode": _exactly(ImportRun.AccessMode.SELF_SERVICE),
                    "probe_api_key": {"type": "string", "pattern": KEY_PATTERN},
                },
                "required": ["probe_api_key"],
            },
        ]
        return schema


# --- output: runs -------------------------------------------------------------------------------


class RunOutputSerializer(serializers.Serializer):
    # run_projection, seed 004 §6.2.
    """A run and its counters."""

    run_id = serializers.CharField()
    state = serializers.ChoiceField(choices=ImportRun.State.choices)
    mode = serializers.ChoiceField(choices=ImportRun.Mode.choices)
    access_mode = serializers.ChoiceField(choices=ImportRun.AccessMode.choices)
    host_id = serializers.IntegerField()
    total_items = serializers.IntegerField()
    completed_items = serializers.IntegerField()
    active_items = serializers.IntegerField()
    degraded_items = serializers.IntegerField()
    broken_items = serializers.IntegerField()
    warning_items = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    is_preview = serializers.BooleanField(help_text="A dry run: nothing was written to the host.")
    preview_of = serializers.CharField(allow_null=True, help_text="The preview this run promoted.")
    promoted_to = serializers.CharField(
        allow_null=True, help_text="The real run this preview became."
    )


class RunCreatedOutputSerializer(serializers.Serializer):
    # Seed 004 §6.1.
    """The run exists — this is not its final result. `result_page` is where a person
    follows it."""

    run_id = serializers.CharField()
    state = serializers.ChoiceField(choices=ImportRun.State.choices)
    result_page = serializers.CharField()
    total_items = serializers.IntegerField()
    active_items = serializers.IntegerField()
    degraded_items = serializers.IntegerField()
    broken_items = serializers.IntegerField()
    warning_items = serializers.IntegerField()


@extend_schema_serializer(many=False)
class RunListOutputSerializer(serializers.Serializer):
    runs = RunOutputSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class RunDetailOutputSerializer(serializers.Serializer):
    run = RunOutputSerializer()
    recent_warnings = serializers.ListField(child=serializers.CharField())


# --- output: items ------------------------------------------------------------------------------

STAGE_CHOICES = ImportRunItem.Stage.choices


class ValidationEvidenceSerializer(serializers.Serializer):
    http_status = serializers.IntegerField(allow_null=True, help_text="null: no HTTP answer")
    model = serializers.CharField(help_text="The model the validation asked the gateway for.")
    answered_model = serializers.CharField(help_text="The model the answer named, if any.")
    latency_ms = serializers.IntegerField(allow_null=True)
    preview = serializers.CharField(help_text="The answer's first characters, or its error.")


class ItemOutputSerializer(serializers.Serializer):
    # item_projection, seed 004 §6.4.
    """One entry of a run; its key only as a fingerprint."""

    item_id = serializers.CharField()
    run_id = serializers.CharField()
    base_url = serializers.CharField()
    provider_id = serializers.CharField()
    api_key_fingerprint = serializers.CharField(help_text='"sha256:" + 8 hex digits')
    requested_models = serializers.ListField(child=serializers.CharField())
    canonical_model_families = serializers.ListField(child=serializers.CharField())
    resolved_smoke_model = serializers.CharField(allow_null=True)
    current_stage = serializers.ChoiceField(choices=STAGE_CHOICES)
    confirmation_status = serializers.ChoiceField(choices=ImportRunItem.ConfirmationStatus.choices)
    access_status = serializers.ChoiceField(choices=ImportRunItem.AccessStatus.choices)
    matched_account_state = serializers.ChoiceField(
        choices=ImportRunItem.MatchedAccountState.choices, allow_null=True
    )
    account_resolution = serializers.ChoiceField(
        choices=ImportRunItem.AccountResolution.choices, allow_null=True
    )
    provision_reused = serializers.BooleanField()
    has_warning = serializers.BooleanField()
    retry_count = serializers.IntegerField()
    last_retry_at = serializers.DateTimeField(allow_null=True)
    advisory_messages = serializers.ListField(
        child=serializers.CharField(), help_text="Texts from the projection layer."
    )
    last_error_stage = serializers.ChoiceField(choices=STAGE_CHOICES, allow_null=True)
    last_error = serializers.CharField(allow_null=True)
    failure_class = serializers.ChoiceField(
        choices=ImportRunItem.FailureClass.choices,
        allow_null=True,
        help_text="Why a degraded or broken item is so (null while active or unfinished).",
    )
    validation_evidence = ValidationEvidenceSerializer(
        allow_null=True,
        help_text="The last gateway validation: what the host answered (null before one ran).",
    )
    rolled_back_at = serializers.DateTimeField(
        allow_null=True, help_text="Set when the run's rollback removed what it created."
    )


@extend_schema_serializer(many=False)
class ItemListOutputSerializer(serializers.Serializer):
    items = ItemOutputSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class EventOutputSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    event_type = serializers.ChoiceField(choices=ImportRunItemEvent.EventType.choices)
    stage = serializers.ChoiceField(choices=STAGE_CHOICES)
    attempt = serializers.IntegerField()
    message = serializers.CharField()
    payload_json = serializers.CharField(help_text="The event payload as a JSON text.")
    created_at = serializers.DateTimeField()


_TRI_STATE = {
    "oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["unknown"]}],
    "description": 'true/false once the probe settled it, "unknown" when it could not (seed 004)',
}

CAPABILITY_PROFILE_SCHEMA = {
    "type": "object",
    "nullable": True,
    "description": "Capability profile from the probe stage (null until probed).",
    "properties": {
        "transport_profile": {
            "type": "object",
            "properties": {
                "supports_openai_models": {"type": "boolean"},
                "supports_openai_chat_completions": {"type": "boolean"},
                "supports_openai_responses": {"type": "boolean"},
                "supports_anthropic_messages": {"type": "boolean"},
                "auth_style": {"type": "string"},
                "model_id_style": {"type": "string"},
                "known_advisories": {"type": "array", "items": {"type": "string"}},
            },
        },
        "model_profiles": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "raw_model_id": {"type": "string"},
                    "normalized_model_id": {"type": "string"},
                    "canonical_model_family": {"type": "string"},
                    "supports_stream": _TRI_STATE,
                    "supports_tools": _TRI_STATE,
                    "supports_reasoning_fields": _TRI_STATE,
                    "smoke_chat_ok": {"type": "boolean"},
                },
            },
        },
    },
}


@extend_schema_field(CAPABILITY_PROFILE_SCHEMA)
class CapabilityProfileField(serializers.JSONField):
    """Passed through as stored: the probe stage owns its shape."""


PREVIEW_PLAN_SCHEMA = {
    "type": "object",
    "nullable": True,
    "description": (
        "Previews only: `decision` (the reuse decision: create / reuse / patch / reactivate / "
        "replace), `group`, `channel` (action and `mapping_added`), `account`, `access` (per "
        "subscription user: user, subscription, key), `duplicate_entries` (request entries merged "
        "into this one) and `conflicts`."
    ),
    "additionalProperties": True,
}


@extend_schema_field(PREVIEW_PLAN_SCHEMA)
class PreviewPlanField(serializers.JSONField):
    """Passed through as stored: the preview stage owns its shape."""


class RecommendationOutputSerializer(serializers.Serializer):
    """A model the upstream offers close to a requested name it does not serve."""

    model = serializers.CharField(help_text="Canonical family name (what the host exposes).")
    raw_id = serializers.CharField(help_text="The upstream's own id for it.")


class SubscriptionAccessOutputSerializer(serializers.Serializer):
    """One user of a subscription-mode item: what relay-manager found and did, or why not."""

    email = serializers.CharField()
    outcome = serializers.ChoiceField(
        choices=UserOutcome.choices,
        help_text="created: made by this run; managed: made by relay-manager before; existing: "
        "the host's own user (subscription through the admin API, no key); refused: nothing.",
    )
    outcome_label = serializers.CharField(help_text="The outcome in the request's language.")
    host_user_id = serializers.IntegerField(allow_null=True)
    subscription_id = serializers.IntegerField(allow_null=True)
    subscription = serializers.ChoiceField(
        choices=[("", ""), *SubscriptionChange.choices],
        help_text="What the assignment did; empty when refused.",
    )
    subscription_label = serializers.CharField()
    subscription_ours = serializers.BooleanField(
        help_text="relay-manager made the subscription: a rollback revokes it (never the user "
        "unless relay-manager created it)."
    )
    expires_at = serializers.CharField(allow_null=True)
    has_key = serializers.BooleanField(help_text="relay-manager holds a key of this user.")
    validation = serializers.BooleanField(help_text="Its key is the gateway validation key.")
    listed = serializers.BooleanField(
        help_text="false: relay-manager's own validation user, not one of subscription_users."
    )
    refusal = serializers.ChoiceField(choices=Refusal.choices, allow_null=True)
    reason = serializers.CharField(help_text="Why it was refused, in the request's language.")


class ItemDetailOutputSerializer(ItemOutputSerializer):
    # item_detail_projection, seed 004 §6.5.
    """An item in full: the list fields plus models, reuse, capability profile and the event
    trail, oldest first."""

    raw_models = serializers.ListField(child=serializers.CharField())
    normalized_models = serializers.ListField(child=serializers.CharField())
    recommended_models = RecommendationOutputSerializer(many=True)
    reused_from_provider_id = serializers.CharField(allow_null=True)
    reused_from_account_id = serializers.IntegerField(allow_null=True)
    channel_id = serializers.IntegerField(allow_null=True)
    account_id = serializers.IntegerField(allow_null=True)
    group_id = serializers.IntegerField(allow_null=True)
    attempt = serializers.IntegerField()
    confirmation_attempts = serializers.IntegerField()
    next_retry_at = serializers.DateTimeField(allow_null=True)
    lease_owner = serializers.CharField(allow_null=True)
    lease_until = serializers.DateTimeField(allow_null=True)
    legacy_batch_id = serializers.IntegerField(allow_null=True)
    legacy_provider_id = serializers.CharField(allow_null=True)
    capability_profile = CapabilityProfileField(allow_null=True)
    preview_plan = PreviewPlanField(allow_null=True)
    subscription_access = SubscriptionAccessOutputSerializer(
        many=True, help_text="subscription mode: the users found, created or refused (and why)."
    )
    events = EventOutputSerializer(many=True)


# --- output: legacy import batches ---------------------------------------------------------------


class LegacyBatchItemOutputSerializer(serializers.Serializer):
    item_id = serializers.CharField()
    provider_id = serializers.CharField()
    legacy_provider_id = serializers.CharField(allow_null=True)


class LegacyBatchOutputSerializer(serializers.Serializer):
    """A V1 import batch (deprecated); the V2 state lives on the run named by `run_id`."""

    batch_id = serializers.IntegerField(source="pk")
    host_id = serializers.IntegerField()
    run_id = serializers.CharField()
    mode = serializers.CharField()
    status = serializers.ChoiceField(choices=LegacyImportBatch.Status.choices)
    provider_ids = serializers.SerializerMethodField()
    items = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_provider_ids(self, batch: LegacyImportBatch) -> list[str]:
        linked = [item.legacy_provider_id or item.provider_id for item in batch.items.all()]
        return list(dict.fromkeys([*map(str, batch.provider_ids or []), *linked]))

    @extend_schema_field(LegacyBatchItemOutputSerializer(many=True))
    def get_items(self, batch: LegacyImportBatch) -> list[dict]:
        return LegacyBatchItemOutputSerializer(batch.items.all(), many=True).data


@extend_schema_serializer(many=False)
class LegacyBatchListOutputSerializer(serializers.Serializer):
    import_batches = LegacyBatchOutputSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class RollbackResourceOutputSerializer(serializers.Serializer):
    resource_type = serializers.CharField()
    host_resource_id = serializers.CharField()
    logical_key = serializers.CharField()
    action = serializers.ChoiceField(choices=["delete", "keep"])
    reason = serializers.CharField(help_text="Why it is kept, or why its deletion failed.")


class RunRollbackOutputSerializer(serializers.Serializer):
    """A run's rollback: `plan` is what a rollback would do now (deletions in reverse
    dependency order, and what is kept because another run uses it); `remaining` is what a
    partial rollback could not delete yet (retried automatically while `next_attempt_at` is
    set; POST again to resume by hand)."""

    run_id = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["not_started", "rollback_running", "rollback_partial", "rolled_back"]
    )
    plan = RollbackResourceOutputSerializer(many=True)
    deleted = RollbackResourceOutputSerializer(many=True)
    kept = RollbackResourceOutputSerializer(many=True)
    remaining = RollbackResourceOutputSerializer(many=True)
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)
    requested_by = serializers.CharField(allow_blank=True)
    finished_at = serializers.DateTimeField(allow_null=True)
