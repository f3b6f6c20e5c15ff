"""The records written before typed relations existed get them: group and user of a
subscription or user key from ``"email|group_id"``, an account's families and flags from
``metadata`` (whose copy of the item's verdict goes)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # Going back to hosts 0001 unapplies every later migration that depends on it (other
    # apps' too): latest_schema_after puts them all back for the tests after this one.
    pytest.mark.usefixtures("latest_schema_after"),
]
BEFORE = [("hosts", "0001_initial")]
AFTER = [("hosts", "0002_managed_resource_relations")]


def test_encoded_relations_become_columns():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Host = old.get_model("hosts", "Host")
    ManagedResource = old.get_model("hosts", "ManagedResource")
    host = Host.objects.create(
        name="h", base_url="http://127.0.0.1:1", auth_type="admin_api_key", admin_credential="x"
    )
    other = Host.objects.create(
        name="o", base_url="http://127.0.0.1:2", auth_type="admin_api_key", admin_credential="x"
    )

    def make(host, resource_type, resource_id, logical_key, **fields):
        return ManagedResource.objects.create(
            host=host,
            resource_type=resource_type,
            host_resource_id=resource_id,
            logical_key=logical_key,
            **fields,
        )

    user = make(host, "user", "7", "ops@example.com")
    make(other, "user", "7", "ops@example.com")  # same email on another host
    make(host, "api_key", "3", "ops@example.com|12")
    make(host, "subscription", "4", "ops@example.com|12")
    make(
        host,
        "account",
        "5",
        "rm-acme-abc",
        metadata={"families": ["glm-5"], "deprecated": True, "access_status": "broken"},
    )
    make(host, "account", "6", "rm-acme-def", metadata={"families": [], "adopted": True})

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = MigrationExecutor(connection).loader.project_state(AFTER).apps
    Record = new.get_model("hosts", "ManagedResource")

    for resource_type in ("api_key", "subscription"):
        record = Record.objects.get(host_id=host.pk, resource_type=resource_type)
        assert (record.host_group_id, record.user_record_id) == (12, user.pk)
    replaced = Record.objects.get(host_id=host.pk, host_resource_id="5")
    assert (replaced.families, replaced.deprecated, replaced.adopted) == (["glm-5"], True, False)
    assert replaced.metadata == {}
    adopted = Record.objects.get(host_id=host.pk, host_resource_id="6")
    assert (adopted.adopted, adopted.deprecated) == (True, False)
