"""Whether a key was provisioned on a host before reads one index range of that key's items and
one of the item's events, however many keys and events the host has (issue #17). PostgreSQL's
own plan."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batch_import.models import ImportRunItem, ImportRunItemEvent
from batch_import.reuse_preflight import provisioned_before
from tests.factories import ImportRunFactory, item_row
from tests.plans import explain, nodes, postgresql_only, rows_read

pytestmark = [pytest.mark.django_db, postgresql_only]
KEYS = 5_000
Stage = ImportRunItem.Stage
EventType = ImportRunItemEvent.EventType


def test_a_keys_earlier_provisioning_is_read_by_index():
    run = ImportRunFactory()
    items = ImportRunItem.objects.bulk_create(
        [item_row(run, n, f"sk-plan-{n:06d}", current_stage=Stage.PROVISION) for n in range(KEYS)],
        batch_size=2_000,
    )
    ImportRunItemEvent.objects.bulk_create(
        (
            ImportRunItemEvent(run=run, item=item, event_type=event_type, stage=stage)
            for item in items
            for event_type, stage in (
                (EventType.STAGE_STARTED, Stage.PROBE),
                (EventType.STAGE_COMPLETED, Stage.PROBE),
                (EventType.STAGE_STARTED, Stage.PROVISION),
            )
        ),
        batch_size=5_000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE import_run_items")
        cursor.execute("ANALYZE import_run_item_events")
    item = ImportRunItem.objects.select_related("run").get(pk=items[1234].pk)

    with CaptureQueriesContext(connection) as captured:
        assert provisioned_before(item) is False  # its own start only
    (query,) = captured.captured_queries
    plan = explain(query["sql"], analyze=True)
    assert not any(n["Node Type"] == "Seq Scan" for n in nodes(plan)), plan
    assert rows_read(plan, "import_run_items") <= 2  # the item, and its key's one
    assert rows_read(plan, "import_run_item_events") <= 3  # the item's own
