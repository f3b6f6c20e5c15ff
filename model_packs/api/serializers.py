"""Input and output serializers of the pack endpoints (seed 002 §3.1 "模型包管理")."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from relay_project.api.fields import StrictCharField


class PackUploadInputSerializer(serializers.Serializer):
    """A pack sent as a zip (multipart). With ``host_id`` the host's version must be in the
    pack's range."""

    # An empty file is well formed: the view refuses its content (422), as any bad archive.
    file = serializers.FileField(allow_empty_file=True, help_text="The pack as a zip archive.")
    # Multipart sends every field as text, so the integer is parsed, not type-checked.
    host_id = serializers.IntegerField(required=False, min_value=1)


class PackFolderInputSerializer(serializers.Serializer):
    """A pack named by its folder under RELAY_PACKS_DIR (JSON)."""

    folder = StrictCharField(max_length=200, help_text="A pack folder inside RELAY_PACKS_DIR.")
    host_id = serializers.IntegerField(required=False, min_value=1)


class PackProviderOutputSerializer(serializers.Serializer):
    provider_id = serializers.CharField()
    display_name = serializers.CharField()
    base_url = serializers.CharField()
    default_models = serializers.ListField(child=serializers.CharField())
    smoke_test_model = serializers.CharField()
    aliases = serializers.DictField(child=serializers.CharField())
    prices = serializers.DictField(
        child=serializers.DictField(child=serializers.FloatField()),
        help_text="model → {input, output, cache_read, cache_write} in USD per 1M tokens.",
    )
    prices_as_of = serializers.CharField()
    prices_source = serializers.CharField()
    notes = serializers.CharField()


class PackOutputSerializer(serializers.Serializer):
    pack_id = serializers.CharField()
    version = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    notes = serializers.CharField()
    host_versions = serializers.CharField()
    content_digest = serializers.CharField()
    is_current = serializers.BooleanField()
    provider_ids = serializers.SerializerMethodField()
    installed_at = serializers.DateTimeField()

    def get_provider_ids(self, pack) -> list[str]:
        return [p.provider_id for p in pack.providers.all()]


class PackDetailOutputSerializer(PackOutputSerializer):
    """The current version of a pack and every version installed."""

    versions = serializers.ListField(child=serializers.CharField())


class PackInstallOutputSerializer(serializers.Serializer):
    created = serializers.BooleanField(help_text="False: this exact pack was installed before.")
    pack = PackOutputSerializer()


@extend_schema_serializer(many=False)
class PackListOutputSerializer(serializers.Serializer):
    packs = PackOutputSerializer(many=True)


@extend_schema_serializer(many=False)
class PackProviderListOutputSerializer(serializers.Serializer):
    pack_id = serializers.CharField()
    version = serializers.CharField()
    providers = PackProviderOutputSerializer(many=True)
