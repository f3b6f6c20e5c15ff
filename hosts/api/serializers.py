"""Input and output serializers of the host endpoints. The admin credential goes in, never
out. Class docstrings are schema descriptions, written for API clients."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from hosts.models import Host
from relay_project.api.fields import StrictCharField, StrictChoiceField
from relay_project.inputs import (
    ADMIN_KEY_PATTERN,
    MAX_URL_LENGTH,
    SPACE,
    URL_PATTERN,
    any_text_pattern,
    text_pattern,
)


class HostRegisterInputSerializer(serializers.Serializer):
    name = StrictCharField(
        max_length=100, schema_pattern=any_text_pattern(100), help_text="Unique among hosts."
    )
    base_url = StrictCharField(
        max_length=MAX_URL_LENGTH,
        schema_pattern=URL_PATTERN,
        pattern_bounds_length=False,  # the pattern does not bound the path
        help_text=(
            "The sub2api host, e.g. https://h.example (plain http only for a loopback or "
            "private address)."
        ),
    )
    auth_type = StrictChoiceField(choices=Host.AuthType.choices)
    admin_credential = StrictCharField(
        max_length=4096,
        schema_pattern=any_text_pattern(4096),
        write_only=True,
        help_text="Admin API key (admin-<64 hex>) or admin password; stored encrypted.",
    )
    admin_email = StrictCharField(
        max_length=254,
        schema_pattern="^[^\\x00]*$",
        required=False,
        allow_blank=True,
        default="",
        help_text="Required when auth_type=password.",
    )


def _exactly(value: str) -> dict[str, str]:
    """One value, as a pattern: drf-spectacular would merge a one-value enum with the field's."""
    return {"type": "string", "pattern": f"^{value}$"}


# ``hosts.services.EMAIL_RE`` on the stripped value.
_ADMIN_EMAIL = f"^[{SPACE}]*[^@\\x00{SPACE}]+@[^@\\x00{SPACE}]+[{SPACE}]*$"


class HostRegisterInputSchema(OpenApiSerializerExtension):
    """What each auth type requires of the credential (``validate_registration``)."""

    target_class = HostRegisterInputSerializer

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["oneOf"] = [
            {
                "type": "object",
                "properties": {
                    "auth_type": _exactly(Host.AuthType.ADMIN_API_KEY),
                    "admin_credential": {"type": "string", "pattern": ADMIN_KEY_PATTERN},
                },
            },
            {
                "type": "object",
                "properties": {
                    "auth_type": _exactly(Host.AuthType.PASSWORD),
                    "admin_credential": {"type": "string", "pattern": text_pattern(512)},
                    "admin_email": {"type": "string", "pattern": _ADMIN_EMAIL},
                },
                "required": ["auth_type", "admin_credential", "admin_email"],
            },
        ]
        return schema


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
