"""Authentication: DRF token and session; anonymous is 401; the create_api_token command."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

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
    assert api.get("/api/batch-import/runs").status_code == 200


def test_session_authenticates(user):
    client = APIClient()
    client.login(username="ops", password="ops-password")
    assert client.get("/api/batch-import/runs").status_code == 200


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
    assert key == Token.objects.get(user=user).key
    assert "created token" in err


def test_create_api_token_prints_the_existing_token(token):
    key, err = run_command("ops")
    assert key == token.key and "existing token" in err
    assert Token.objects.count() == 1


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
    assert not Token.objects.exists()
