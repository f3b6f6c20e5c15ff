"""A task's free places take the next due items of its runs (``leases.take_next_due``) by an
index walk that reads the items in flight and the few it takes, however many items the run
still has: at 10,000 entries a walk over every unfinished item per finished item read ≈16,000
item rows per item. Whether any is still due (``leases.any_due``) is read by the same walk.
On PostgreSQL; SQLite runs of the suite skip this module."""

from __future__ import annotations

import datetime as dt
import json
from unittest.mock import ANY

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batch_import.leases import any_due, take_next_due
from batch_import.models import ImportRunItem
from tests.factories import ImportRunFactory, item_row
from tests.plans import explain, postgresql_only, scans_of, the_query_on

pytestmark = [pytest.mark.django_db, postgresql_only]

ITEMS = 10_000
IN_FLIGHT = 64
PLACES = 32


def seeded_run():
    """A run of ``ITEMS``: the first half done, the next ``IN_FLIGHT`` leased, the rest due;
    beside it another run of 2,000 alike."""
    run = ImportRunFactory(total_items=ITEMS)
    neighbour = ImportRunFactory(total_items=2_000)
    now = timezone.now()
    rows = []
    for owner, count in ((run, ITEMS), (neighbour, 2_000)):
        for n in range(count):
            rows.append(
                item_row(
                    owner,
                    n,
                    f"sk-due-{owner.pk}-{n:06d}",
                    base_url=f"https://relay{n % 20}.example.com/v1",
                    provider_id=f"relay{n % 20}-example-com",
                    next_retry_at=now - dt.timedelta(seconds=1),
                    # the first ones are done, the next ones in flight
                    current_stage=(
                        ImportRunItem.Stage.DONE if n < count // 2 else ImportRunItem.Stage.PROBE
                    ),
                    lease_owner="w" if count // 2 <= n < count // 2 + IN_FLIGHT else "",
                    lease_until=(
                        now + dt.timedelta(minutes=2)
                        if count // 2 <= n < count // 2 + IN_FLIGHT
                        else None
                    ),
                )
            )
    ImportRunItem.objects.bulk_create(rows, batch_size=2_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE import_run_items")
    return run


def rows_read(scans: list[dict]) -> int:
    """The rows the plan's scans read, those their filter dropped included."""
    return sum(
        (s["Actual Rows"] + s.get("Rows Removed by Filter", 0)) * s["Actual Loops"] for s in scans
    )


def test_the_next_due_items_are_taken_by_an_index_walk_past_those_in_flight():
    run = seeded_run()

    with CaptureQueriesContext(connection) as captured:
        taken = take_next_due([run.run_id], limit=PLACES)
    assert sorted(lease.item_id for lease in taken) == sorted(
        run.items.filter(position__gte=ITEMS // 2 + IN_FLIGHT)
        .order_by("position")
        .values_list("item_id", flat=True)[:PLACES]
    )
    # The same statement again (it takes the next ones): the walk, then a row each by its key.
    plan = explain(the_query_on(captured, "import_run_items"), analyze=True)
    reads = [s for s in scans_of(plan, "import_run_items") if s["Node Type"] != "ModifyTable"]
    assert [s["Index Name"] for s in reads] == ["item_run_due_idx", ANY], json.dumps(plan)
    assert {s["Node Type"] for s in reads} == {"Index Scan"}, json.dumps(plan)
    read = rows_read(reads)
    assert read <= IN_FLIGHT + 2 * PLACES + PLACES, json.dumps(plan)


def test_whether_any_item_is_due_is_read_by_the_same_walk_not_a_scan_of_the_run():
    """A task whose take came back empty asks whether items are still due
    (``tasks.advance_items``): as an ``EXISTS`` without the take's order it was planned as a
    scan of the table, through every finished item of the run (rows read per item grew with
    the run: 221 at 10,000 entries against 63 at 1,000)."""
    run = seeded_run()

    with CaptureQueriesContext(connection) as captured:
        assert any_due([run.run_id]) is True
    plan = explain(the_query_on(captured, "import_run_items"), analyze=True)
    reads = scans_of(plan, "import_run_items")
    assert [s["Index Name"] for s in reads] == ["item_run_due_idx"], json.dumps(plan)
    read = rows_read(reads)
    assert read <= IN_FLIGHT + 1, json.dumps(plan)
