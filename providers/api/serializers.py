"""Output and input serializers of the provider endpoints. Class docstrings are schema
descriptions, written for API clients."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from hosts.models import ManagedResource
from providers.models import (
    AccessMode,
    Provider,
    ProviderAccount,
    ReconcileResult,
    ReconcileRun,
)
from providers.services import BulkAction
from relay_project.api.fields import StrictBooleanField
from relay_project.api.pagination import MAX_BIGINT


class ProviderAccountOutputSerializer(serializers.Serializer):
    account_id = serializers.IntegerField(source="host_account_id")
    key_fingerprint = serializers.CharField()
    status = serializers.ChoiceField(choices=ProviderAccount.Status.choices)
    consecutive_failures = serializers.IntegerField()
    last_test_at = serializers.DateTimeField(allow_null=True)
    last_test_ok = serializers.BooleanField(allow_null=True)
    last_latency_ms = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()


class DriftFindingOutputSerializer(serializers.Serializer):
    resource_type = serializers.CharField()
    host_resource_id = serializers.CharField()
    kind = serializers.ChoiceField(
        choices=[ReconcileResult.Kind.MISSING, ReconcileResult.Kind.CHANGED]
    )
    diff = serializers.DictField(help_text="field → {expected, found}")


class ProviderOutputSerializer(serializers.Serializer):
    """A provider (host + provider_id) with its state (seed 002 §4.1), access closure
    (§4.3) and accounts."""

    id = serializers.IntegerField(source="pk")
    host_id = serializers.IntegerField()
    provider_id = serializers.CharField()
    base_url = serializers.CharField()
    families = serializers.ListField(child=serializers.CharField())
    upstream_models = serializers.ListField(child=serializers.CharField())
    state = serializers.ChoiceField(choices=Provider.State.choices)
    state_reason = serializers.CharField(source="state_reason_text")
    access_status = serializers.ChoiceField(choices=Provider.AccessClosure.choices)
    open_drift = DriftFindingOutputSerializer(many=True)
    last_import_run_id = serializers.CharField()
    last_reconciled_at = serializers.DateTimeField(allow_null=True)
    models_synced_at = serializers.DateTimeField(allow_null=True)
    accounts = ProviderAccountOutputSerializer(many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(many=False)
class ProviderListOutputSerializer(serializers.Serializer):
    providers = ProviderOutputSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class ReconcileResultOutputSerializer(serializers.Serializer):
    provider = serializers.IntegerField(source="provider_id")
    kind = serializers.ChoiceField(choices=ReconcileResult.Kind.choices)
    resource_type = serializers.CharField()
    host_resource_id = serializers.CharField()
    message = serializers.CharField(source="message_text", help_text="In the request's language.")
    diff = serializers.DictField()
    created_at = serializers.DateTimeField()


class ReconcileRunOutputSerializer(serializers.Serializer):
    """A reconcile run: what it covered, where it stands, and each finding."""

    run_id = serializers.CharField()
    host_id = serializers.IntegerField()
    trigger = serializers.ChoiceField(choices=ReconcileRun.Trigger.choices)
    state = serializers.ChoiceField(choices=ReconcileRun.State.choices)
    requested_by = serializers.CharField()
    test_accounts = serializers.BooleanField()
    sync_models = serializers.BooleanField()
    provider_ids = serializers.ListField(child=serializers.IntegerField())
    pending_provider_ids = serializers.ListField(child=serializers.IntegerField())
    drifted_providers = serializers.IntegerField()
    failed_checks = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    results = ReconcileResultOutputSerializer(many=True)


class ProviderStatusOutputSerializer(serializers.Serializer):
    """Seed 002 §3.1 `status`: the state, why, open drift and the latest reconcile."""

    id = serializers.IntegerField(source="pk")
    provider_id = serializers.CharField()
    state = serializers.ChoiceField(choices=Provider.State.choices)
    state_reason = serializers.CharField(source="state_reason_text")
    open_drift = DriftFindingOutputSerializer(many=True)
    last_reconciled_at = serializers.DateTimeField(allow_null=True)
    latest_reconcile = ReconcileRunOutputSerializer(allow_null=True)


class ManagedResourceOutputSerializer(serializers.Serializer):
    resource_type = serializers.ChoiceField(choices=ManagedResource.ResourceType.choices)
    host_resource_id = serializers.CharField()
    logical_key = serializers.CharField()
    state = serializers.ChoiceField(choices=ManagedResource.State.choices)
    created_by_run_id = serializers.CharField()
    baseline = serializers.DictField(allow_null=True, help_text="What the last reconcile accepted.")


class ProviderResourcesOutputSerializer(serializers.Serializer):
    """The host resources relay-manager made for this provider (and nothing else)."""

    id = serializers.IntegerField()
    resources = ManagedResourceOutputSerializer(many=True)


class AccessCheckOutputSerializer(serializers.Serializer):
    access_mode = serializers.ChoiceField(choices=AccessMode.choices)
    ok = serializers.BooleanField()
    latency_ms = serializers.IntegerField(allow_null=True)
    message = serializers.CharField()
    checked_at = serializers.DateTimeField(source="created_at")


class ProviderAccessOutputSerializer(serializers.Serializer):
    """Access closure (seed 002 §4.3) from the latest real gateway check of each mode."""

    id = serializers.IntegerField()
    access_status = serializers.ChoiceField(choices=Provider.AccessClosure.choices)
    checks = AccessCheckOutputSerializer(many=True)


# Served by a list route (a host's sub-path) but one object, not an array.
@extend_schema_serializer(many=False)
class HostAccessOutputSerializer(serializers.Serializer):
    """A host's access closure: a mode is ready when every provider checked in it passed its
    latest check."""

    host_id = serializers.IntegerField()
    access_status = serializers.ChoiceField(choices=Provider.AccessClosure.choices)
    providers = serializers.DictField(child=serializers.CharField(), help_text="id → status")


class ReconcileInputSerializer(serializers.Serializer):
    test_accounts = StrictBooleanField(required=False, default=True)
    sync_models = StrictBooleanField(required=False, default=True)


class ProviderBulkInputSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_BIGINT),
        min_length=1,
        max_length=500,
    )
    action = serializers.ChoiceField(choices=BulkAction.ALL)
