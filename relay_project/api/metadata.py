"""OPTIONS answers: what the endpoint renders and parses, without the serializer introspection
of DRF's SimpleMetadata (these views pick input and output serializers per action, so there is
no single ``serializer_class`` to describe; the OpenAPI document at /api/schema/ does that)."""

from __future__ import annotations

from typing import Any

from rest_framework.metadata import SimpleMetadata


class ApiMetadata(SimpleMetadata):
    def determine_actions(self, request: Any, view: Any) -> dict[str, Any]:
        return {}
