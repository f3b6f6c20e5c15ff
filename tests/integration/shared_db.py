"""The test database as a URL other processes can open (worker-process tests)."""

from __future__ import annotations

import pytest
from django.db import connection


def shared_database_url() -> str:
    """PostgreSQL always; SQLite only when the test database is a file (``make test`` sets
    RELAY_SQLITE_TEST_NAME), never the default in-memory one. Skips otherwise."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        user, host, port = db["USER"] or "postgres", db["HOST"] or "127.0.0.1", db["PORT"] or 5432
        return f"postgres://{user}@{host}:{port}/{db['NAME']}"
    name = str(db["NAME"])
    if connection.vendor == "sqlite" and name and "memory" not in name:
        return f"sqlite:///{name}"
    pytest.skip("worker processes need a shared test database (PostgreSQL or a SQLite file)")
