"""Reconcile at scale (issue #17), on PostgreSQL: a pass reads each provider's latest finished
item by an index walk that stops at the first match, however many items the provider has
finished (a provider fed 10,000 keys over its life would otherwise be read whole and sorted once
per provider, account and access mode on every pass). SQLite runs of the suite skip this module.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batch_import.models import ImportRunItem
from providers.models import Provider
from providers.reconcile import _latest_item
from tests.factories import ImportRunFactory, item_row
from tests.plans import explain, nodes, postgresql_only, scans_of, the_query_on

pytestmark = [pytest.mark.django_db, postgresql_only]

ITEMS = 5_000
PROVIDER = "relay-example-com"


@pytest.fixture
def provider_with_history() -> Iterator[Provider]:
    run = ImportRunFactory(total_items=ITEMS)
    start = timezone.now() - dt.timedelta(days=30)
    items = []
    for n in range(ITEMS):
        items.append(
            item_row(
                run,
                n,
                f"sk-history-{n:06d}",
                provider_id=PROVIDER,
                current_stage=ImportRunItem.Stage.DONE,
                account_id=n + 1,
            )
        )
    ImportRunItem.objects.bulk_create(items, batch_size=2_000)
    for offset in range(0, ITEMS, 1_000):  # finishing order is not input order
        ImportRunItem.objects.filter(run=run, position__gte=offset).update(
            updated_at=start + dt.timedelta(minutes=offset)
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE import_run_items")
    yield Provider.objects.create(
        host=run.host, provider_id=PROVIDER, base_url="https://relay.example.com/v1"
    )


@pytest.mark.parametrize(
    "lookup", [{}, {"with_account": True}, {"access_mode": "subscription"}], ids=str
)
def test_the_latest_finished_item_is_one_index_walk_not_a_sort_of_all(
    provider_with_history, lookup
):
    with CaptureQueriesContext(connection) as captured:
        assert _latest_item(provider_with_history, **lookup) is not None
    plan = explain(the_query_on(captured, "import_run_items"), analyze=True)
    scans = scans_of(plan, "import_run_items")
    assert [s["Node Type"] for s in scans] == ["Index Scan"], json.dumps(plan)
    assert scans[0]["Index Name"] == "item_provider_latest_idx", json.dumps(plan)
    assert not [n for n in nodes(plan) if "Sort" in n["Node Type"]], json.dumps(plan)
    assert scans[0]["Actual Rows"] <= 1, json.dumps(plan)
