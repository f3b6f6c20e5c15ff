from __future__ import annotations

import pytest
from django.db import DatabaseError

from relay_project import health


@pytest.mark.django_db
def test_healthz_and_readyz_answer_without_login(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "broker": "ok"},
    }
    assert "no-cache" in answer["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_503_when_migrations_are_pending(client, monkeypatch):
    class Pending:
        def __init__(self, connection):
            self.loader = type("L", (), {"graph": type("G", (), {"leaf_nodes": lambda s: []})()})()

        def migration_plan(self, targets):
            return [("batch_import", "9999_future")]

    monkeypatch.setattr(health, "MigrationExecutor", Pending)
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["migrations"] == "pending"


@pytest.mark.django_db
def test_readyz_is_503_when_the_database_fails(client, monkeypatch):
    class BrokenCursor:
        def __enter__(self):
            raise DatabaseError("gone")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(health.connection, "cursor", BrokenCursor)
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["database"] == "unavailable"


@pytest.mark.django_db
def test_readyz_checks_the_redis_broker_when_configured(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["broker"] == "unavailable"


def test_health_answers_only_safe_methods(client):
    refused = client.post("/healthz")
    assert refused.status_code == 405
    assert set(refused["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}
    assert client.head("/healthz").status_code == 200
