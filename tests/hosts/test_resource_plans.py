"""The reuse preflight reads one record per upstream key, however many keys a provider has
(issue #17: 1,000 keys of one provider read ~9,000 records per item). PostgreSQL's own plan."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from hosts.models import ManagedResource
from hosts.resources import HostResources, Owner
from tests.batch_import.test_read_side_plans import nodes
from tests.factories import HostFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="index plans are asserted on PostgreSQL"
    ),
]
KEYS = 5_000
Resource = ManagedResource.ResourceType


def test_a_keys_account_records_are_one_index_range_of_that_key():
    host = HostFactory()
    ManagedResource.objects.bulk_create(
        ManagedResource(
            host=host,
            resource_type=Resource.ACCOUNT,
            host_resource_id=str(n),
            logical_key=f"relay-manager-kimi-{n:06x}",
            provider_id="kimi",
            api_key_digest=f"{n:064x}",
            host_group_id=n % 3,
        )
        for n in range(KEYS)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE hosts_managedresource")
    resources = HostResources(host, client=None, owner=Owner("run", "item", "kimi"))
    sql, params = resources.account_records(f"{1234:064x}").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (raw,) = cursor.fetchone()
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    scans = [n for n in nodes(plan) if n.get("Index Name")]
    assert scans and all(s["Index Name"] == "managedres_provider_key_idx" for s in scans), (
        json.dumps(plan)
    )
    assert not any(n["Node Type"] == "Seq Scan" for n in nodes(plan)), json.dumps(plan)
    assert plan["Plan Rows"] < 10
