"""Every API route × {anonymous, non-staff token, non-staff session, staff}: the API requires
staff, like the pages. Routes are read from the URL resolver, so a new route is covered."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import get_resolver
from rest_framework.test import APIClient

from batch_import.models import ImportRun
from relay_project.models import ApiToken

pytestmark = pytest.mark.django_db

SAMPLE_VALUES = {
    "run_id": "run_nope",
    "item_id": "item_nope",
    "batch_id": "1",
    "host_id": "1",
    "pack_id": "nope",
    "id": "1",
    "account_id": "1",
    "switch": "enable",
}


def _routes(patterns, prefix=""):
    for pattern in patterns:
        if hasattr(pattern, "url_patterns"):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif getattr(pattern.callback, "actions", None):
            yield prefix + str(pattern.pattern), pattern.callback.actions


def _path(route: str) -> str:
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: SAMPLE_VALUES[m.group(1)], route)
    return "/" + path.replace("^", "").replace("$", "")


API_CALLS = sorted(
    (method, _path(route))
    for route, actions in _routes(get_resolver().url_patterns)
    if route.startswith("api/")
    for method in actions
)


def test_the_table_covers_the_api():
    assert len(API_CALLS) >= 15
    assert ("post", "/api/batch-import/runs") in API_CALLS
    assert ("post", "/api/hosts") in API_CALLS


def _client(kind: str) -> APIClient:
    client = APIClient()
    if kind == "anonymous":
        return client
    user = get_user_model().objects.create_user(
        username=kind, password="pw-" + kind, is_staff=kind == "staff"
    )
    if kind == "non-staff session":
        client.force_login(user)
    else:
        client.credentials(HTTP_AUTHORIZATION=f"Token {ApiToken.issue(user)}")
    return client


@pytest.mark.parametrize(("method", "path"), API_CALLS)
@pytest.mark.parametrize(
    ("kind", "refused"),
    [("anonymous", 401), ("non-staff token", 403), ("non-staff session", 403), ("staff", None)],
)
def test_only_staff_reach_the_api(method, path, kind, refused):
    response = getattr(_client(kind), method)(path, {}, format="json")
    if refused:
        assert response.status_code == refused, response.content
        assert response.json()["error"]["code"] in ("unauthorized", "forbidden")
    else:
        assert response.status_code not in (401, 403), response.content
    assert not ImportRun.objects.exists()
