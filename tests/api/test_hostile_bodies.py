"""Hostile request bodies get a 4xx that says why, never a 500, and nothing is written."""

from __future__ import annotations

import pytest

from batch_import.models import ImportRun

pytestmark = pytest.mark.django_db
RUNS = "/api/batch-import/runs"


def test_a_body_over_the_limit_is_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    body = b'{"entries": "' + b"x" * (70 * 1024) + b'"}'
    response = api.post(RUNS, body, content_type="application/json")
    assert response.status_code == 413
    assert "larger than 65536 bytes" in response.json()["error"]["message"]
    assert not ImportRun.objects.exists()


def test_deeply_nested_json_is_400(api):
    response = api.post(RUNS, b"[" * 100_000 + b"]" * 100_000, content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]["message"]


def test_invalid_utf8_is_400(api):
    response = api.post(RUNS, b'{"mode": "\xff\xfe"}', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
