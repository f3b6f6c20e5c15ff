"""Input and output serializers of the host endpoints. The admin credential goes in, never
out. Class docstrings are schema descriptions, written for API clients."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from hosts.models import Host
from relay_project.api.fields import StrictCharField, StrictChoiceField


class HostRegisterInputSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100)
    base_url = StrictCharField(max_length=500, help_text="The sub2api host, e.g. https://h.example")
    auth_type = StrictChoiceField(choices=Host.AuthType.choices)
    admin_credential = StrictCharField(
        max_length=4096,
        write_only=True,
        help_text="Admin API key (admin-<64 hex>) or admin password; stored encrypted.",
    )
    admin_email = StrictCharField(
        max_length=254,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required when auth_type=password.",
    )


class HostCapabilitySnapshotOutputSerializer(serializers.Serializer):
    snapshot_id = serializers.IntegerField(source="pk")
    version = serializers.CharField()
    capabilities = serializers.DictField(child=serializers.BooleanField())
    missing_capabilities = serializers.ListField(child=serializers.CharField())
    supported = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class HostOutputSerializer(serializers.Serializer):
    host_id = serializers.IntegerField(source="pk")
    name = serializers.CharField()
    base_url = serializers.CharField()
    auth_type = serializers.ChoiceField(choices=Host.AuthType.choices)
    admin_email = serializers.CharField()
    version = serializers.CharField()
    status = serializers.ChoiceField(choices=Host.Status.choices)
    missing_capabilities = serializers.ListField(child=serializers.CharField())
    last_error = serializers.CharField()
    last_probed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


# The view passes the latest snapshot (or None) as ``context["snapshot"]``.
class HostDetailOutputSerializer(HostOutputSerializer):
    # Seed 002 §6.1.
    """A host with what its latest capability probe found."""

    capabilities = serializers.SerializerMethodField(
        help_text="Capability → present, from the latest snapshot ({} before any)."
    )
    latest_snapshot = serializers.SerializerMethodField()

    @extend_schema_field(serializers.DictField(child=serializers.BooleanField()))
    def get_capabilities(self, host: Host) -> dict[str, bool]:
        snapshot = self.context.get("snapshot")
        return dict(snapshot.capabilities) if snapshot else {}

    @extend_schema_field(HostCapabilitySnapshotOutputSerializer(allow_null=True))
    def get_latest_snapshot(self, host: Host) -> dict | None:
        snapshot = self.context.get("snapshot")
        return HostCapabilitySnapshotOutputSerializer(snapshot).data if snapshot else None


@extend_schema_serializer(many=False)
class HostListOutputSerializer(serializers.Serializer):
    hosts = HostOutputSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
