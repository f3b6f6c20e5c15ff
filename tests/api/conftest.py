from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from relay_project.models import ApiToken
from tests.factories import HostFactory


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user(
        username="ops", password="ops-password", is_staff=True
    )


@pytest.fixture
def token(user):
    """The key of the user's API token (only its digest is stored)."""
    return ApiToken.issue(user)


@pytest.fixture
def api(token):
    """An API client authenticated with a DRF token, as automation would be."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def anon():
    return APIClient()


@pytest.fixture
def host(db):
    return HostFactory()


@pytest.fixture
def run_body(host):
    """A valid POST /api/batch-import/runs body; tests override what they exercise."""

    def make(**overrides):
        body = {
            "host_id": host.pk,
            "mode": "partial",
            "access_mode": "subscription",
            "subscription_users": ["ops@example.com"],
            "subscription_days": 30,
            "entries": [
                {"base_url": "https://a.example.com/v1", "api_key": "sk-a", "requested_models": []}
            ],
        }
        body.update(overrides)
        return body

    return make
