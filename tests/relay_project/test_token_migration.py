"""Plain tokens left by DRF's authtoken table become hashed ones and the plain rows go."""

from __future__ import annotations

import hashlib

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("latest_schema_after"),
]


def test_plain_tokens_are_hashed_and_deleted():
    user = get_user_model().objects.create_user(username="bot", is_staff=True)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id integer, "
            "created timestamp)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token (key, user_id) VALUES (%s, %s)", ["a" * 40, user.pk]
        )
    try:
        executor = MigrationExecutor(connection)
        executor.migrate([("relay_project", "0001_api_tokens")])
        executor = MigrationExecutor(connection)
        executor.migrate([("relay_project", "0002_hash_existing_tokens")])
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM authtoken_token")
            assert cursor.fetchone()[0] == 0
            cursor.execute("SELECT user_id, digest, prefix FROM api_tokens")
            assert cursor.fetchall() == [(user.pk, hashlib.sha256(b"a" * 40).hexdigest(), "a" * 8)]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE authtoken_token")
