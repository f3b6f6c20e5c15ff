"""The per-item lookups of an earlier sibling (the upstream's capability profile, the provider's
settled group) read one row whatever the run's size (issue #17), on PostgreSQL's own plans over
a run of 2,000 keys of one upstream; SQLite runs of the suite skip this module."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batch_import.models import ImportRunItem
from batch_import.reuse_preflight import settled_sibling
from batch_import.stages.upstream_probe import sibling_profile
from tests.factories import ImportRunFactory, ImportRunItemFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="plans are PostgreSQL's"),
]
ITEMS = 2_000


def rows_read(sql: str) -> tuple[int, list[str]]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        (raw,) = cursor.fetchone()
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    nodes, stack = [], [plan]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.get("Plans", []))
    read = sum(
        n["Actual Rows"] + n.get("Rows Removed by Filter", 0)
        for n in nodes
        if n.get("Relation Name") == "import_run_items"
    )
    return read, [n["Node Type"] for n in nodes]


@pytest.mark.parametrize("lookup", [sibling_profile, settled_sibling])
def test_a_sibling_lookup_reads_one_row_in_a_run_of_2000_keys_of_one_upstream(lookup):
    run = ImportRunFactory()
    ImportRunItem.objects.bulk_create(
        ImportRunItemFactory.build_batch(
            ITEMS,
            run=run,
            base_url="https://relay.example/v1",
            provider_id="relay-example",
            capability_profile={"transport_profile": {}, "model_profiles": []},
            group_id=7,
        ),
        batch_size=1_000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE import_run_items")
    item = run.items.select_related("run").order_by("-position").first()
    with CaptureQueriesContext(connection) as captured:
        assert lookup(item) is not None
    [sql] = [
        q["sql"]
        for q in captured.captured_queries
        if 'FROM "import_run_items"' in q["sql"] and "IS NOT NULL" in q["sql"]
    ]
    read, node_types = rows_read(sql)
    assert read <= 2, node_types
    assert not any("Sort" in t for t in node_types), node_types
