"""Authentication: DRF token and session; anonymous is 401; the create_api_token command."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from relay_project.models import ApiToken
from tests.factories import ImportRunFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("get", "/api/batch-import/runs"),
    ("post", "/api/batch-import/runs"),
    ("get", "/api/batch-import/runs/run_x"),
    ("post", "/api/batch-import/runs/run_x/cancel"),
    ("get", "/api/batch-import/runs/run_x/items"),
    ("get", "/api/batch-import/runs/run_x/items/item_x"),
    ("post", "/api/batch-import/runs/run_x/items/item_x/retry"),
    ("get", "/api/hosts"),
    ("post", "/api/hosts"),
    ("get", "/api/hosts/1"),
    ("post", "/api/hosts/1/probe"),
    ("get", "/api/import-batches"),
    ("get", "/api/import-batches/1"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_is_401_for_anonymous(anon, method, path):
    response = getattr(anon, method)(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response["WWW-Authenticate"] == "Token"


def test_token_authenticates(api):
    run = ImportRunFactory()
    response = api.get("/api/batch-import/runs")
    assert response.status_code == 200
    assert response.wsgi_request.user.username == "ops"
    assert [r["run_id"] for r in response.json()["runs"]] == [run.run_id]


def test_session_authenticates(user):
    run = ImportRunFactory()
    client = APIClient()
    assert client.login(username="ops", password="ops-password")
    response = client.get("/api/batch-import/runs")
    assert response.status_code == 200
    assert response.wsgi_request.user == user
    assert [r["run_id"] for r in response.json()["runs"]] == [run.run_id]


def test_schema_and_docs_are_public(anon):
    schema = anon.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/batch-import/runs" in schema.content
    docs = anon.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def run_command(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_token", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def test_create_api_token_for_an_existing_user(user):
    key, err = run_command("ops")
    stored = ApiToken.objects.get(user=user)
    assert stored.digest == ApiToken.digest_of(key) and key not in (stored.digest, stored.prefix)
    assert "created token" in err


def test_an_existing_token_is_never_shown_again_only_rotated(token, api):
    with pytest.raises(CommandError, match="cannot be shown again"):
        run_command("ops")
    key, err = run_command("ops", "--rotate")
    assert key != token and "rotated token" in err
    assert ApiToken.objects.count() == 1
    assert api.get("/api/batch-import/runs").status_code == 401  # the old key stopped working
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert fresh.get("/api/batch-import/runs").status_code == 200


def test_tokens_are_stored_hashed(token):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM api_tokens")
        rows = cursor.fetchall()
    assert rows and not any(token in str(value) for row in rows for value in row)


def test_create_api_token_refuses_an_unknown_user_without_flag():
    with pytest.raises(CommandError, match="--create-user"):
        run_command("ghost")
    assert not get_user_model().objects.filter(username="ghost").exists()


def test_create_api_token_creates_the_user_when_asked():
    key, _ = run_command("bot", "--create-user")
    bot = get_user_model().objects.get(username="bot")
    assert not bot.has_usable_password() and bot.is_staff
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/batch-import/runs").status_code == 200


def test_create_api_token_refuses_a_non_staff_user():
    get_user_model().objects.create_user(username="viewer", password="pw")
    with pytest.raises(CommandError, match="not staff"):
        run_command("viewer")
    assert not ApiToken.objects.exists()
