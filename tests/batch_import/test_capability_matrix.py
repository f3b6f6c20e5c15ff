"""The item page's capability matrix reads a stored profile as the typed profile does."""

from __future__ import annotations

from django.utils import translation

from batch_import.projection import capability_matrix


def test_an_old_shape_reads_as_the_typed_profile_and_junk_is_skipped():
    stored = {
        "transport_profile": {"supports_openai_models": True},
        "model_profiles": [
            {"raw_model_id": "m", "smoke_chat_ok": True, "supports_stream": "yes"},
            "junk",
        ],
    }
    with translation.override("en"):
        matrix = capability_matrix(stored)
    transport = dict(matrix.transport)
    assert transport["GET /v1/models"] == "yes"
    assert transport["POST /v1/responses"] == "no"  # missing in the old row: not supported
    assert [m["raw"] for m in matrix.models] == ["m"]
    assert matrix.models[0]["stream"] == "yes" and matrix.models[0]["tools"] == "unknown"
    assert matrix.advisories == []


def test_no_profile_no_matrix():
    assert capability_matrix(None) is None and capability_matrix({}) is None
