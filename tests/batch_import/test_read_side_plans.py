"""The read side at scale (issue #17), on PostgreSQL: every list is an index range scan, first
and deep pages alike, and every answer costs the same number of queries whatever the run's size.

The plans are PostgreSQL's own (``EXPLAIN (FORMAT JSON)`` of the very SQL an answer ran) over a
run of 20,000 items, enough for the planner to prefer a sequential scan and a sort if no index
served the order. SQLite runs of the suite skip this module.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from batch_import.api.pagination import ITEMS_PROBLEMS_FIRST
from batch_import.identity import api_key_digest, api_key_fingerprint
from batch_import.models import ImportRun, ImportRunCounterShard, ImportRunItem, ImportRunItemEvent
from batch_import.selectors import items_problems_first
from hosts.models import Host
from relay_project.models import ApiToken
from tests.factories import ImportRunFactory
from tests.plans import explain, nodes, postgresql_only, rows_read, the_query_on

pytestmark = [pytest.mark.django_db, postgresql_only]

ITEMS = 20_000
EVENTS_PER_ITEM = 2
API_LIMIT = 50
Stage, Access = ImportRunItem.Stage, ImportRunItem.AccessStatus


def _shape(n: int) -> dict:
    bucket = n % 20
    if bucket == 0:
        return {"current_stage": Stage.CONFIRM}
    if bucket == 1:
        return {
            "current_stage": Stage.DONE,
            "access_status": Access.BROKEN,
            "failure_class": ImportRunItem.FailureClass.UPSTREAM_AUTH,
        }
    if bucket == 2:
        return {
            "current_stage": Stage.DONE,
            "access_status": Access.ACTIVE,
            "confirmation_status": ImportRunItem.ConfirmationStatus.ADVISORY,
            "has_warning": True,
        }
    return {"current_stage": Stage.DONE, "access_status": Access.ACTIVE}


def seed(run: ImportRun, count: int, events_per_item: int) -> list[ImportRunItem]:
    key = "sk-plan-000000"
    items = [
        ImportRunItem(
            run=run,
            position=n,
            base_url=f"https://relay{n % 50}.example.com/v1",
            provider_id=f"relay{n % 50}-example-{n:08d}",
            api_key=key,
            api_key_fingerprint=api_key_fingerprint(key),
            api_key_digest=api_key_digest(f"{key}{n}"),
            **_shape(n),
        )
        for n in range(count)
    ]
    ImportRunItem.objects.bulk_create(items, batch_size=2_000)
    # Finishing order is not input order: spread updated_at.
    base = timezone.now() - dt.timedelta(days=1)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE import_run_items SET updated_at = %s + (position * 7919 %% %s) * "
            "interval '1 second' WHERE run_id = %s",
            [base, count, run.run_id],
        )
    events = [
        ImportRunItemEvent(
            run=run,
            item=item,
            event_type=ImportRunItemEvent.EventType.STAGE_COMPLETED,
            stage=Stage.PROBE,
        )
        for item in items
        for _ in range(events_per_item)
    ]
    ImportRunItemEvent.objects.bulk_create(events, batch_size=5_000)
    return items


@pytest.fixture
def staff(db, client):
    """The pages' client, logged in as staff."""
    user = get_user_model().objects.create_user(
        username="ops", password="ops-password", is_staff=True, is_superuser=True
    )
    client.force_login(user)
    return user


@pytest.fixture
def api(staff) -> APIClient:
    """The API's client, with a token as automation would hold."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {ApiToken.issue(staff)}")
    return client


@pytest.fixture(scope="module")
def big_run(django_db_setup, django_db_blocker) -> Iterator[ImportRun]:
    """Seeded once for the module (committed, outside the tests' transactions; removed at the
    end): seeding 20,000 items per test would dominate the suite."""
    with django_db_blocker.unblock():
        run = ImportRunFactory(total_items=ITEMS)
        neighbours = [ImportRunFactory() for _ in range(2)]
        seed(run, ITEMS, EVENTS_PER_ITEM)
        for neighbour in neighbours:  # so that "the run's rows" is not the whole table
            seed(neighbour, 500, 1)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE import_run_items")
            cursor.execute("ANALYZE import_run_item_events")
        yield run
        runs = [run.run_id, *(n.run_id for n in neighbours)]
        hosts = [run.host_id, *(n.host_id for n in neighbours)]
        with connection.cursor() as cursor:
            tables = ("import_run_item_events", "import_run_items", "import_run_counters")
            for table in (*tables, "import_runs"):
                cursor.execute(f"DELETE FROM {table} WHERE run_id = ANY(%s)", [runs])
        Host.objects.filter(pk__in=hosts).delete()


def assert_index_served(plan: dict, *, table: str, index: str, rows_bound: int) -> None:
    """Every read of ``table`` uses ``index``; no sequential scan, and no sort of more than
    ``rows_bound`` rows (the union of a keyset page's bounded ranges may be merged by a small
    sort; a sort of the run's items may not)."""
    scans = [n for n in nodes(plan) if n.get("Relation Name") == table]
    assert scans, plan
    for scan in scans:
        assert scan["Node Type"] in ("Index Scan", "Index Only Scan"), json.dumps(plan)
        assert scan["Index Name"] == index, json.dumps(plan)
    for node in nodes(plan):
        assert node["Node Type"] not in ("Seq Scan", "Bitmap Heap Scan"), json.dumps(plan)
        if "Sort" in node["Node Type"]:
            assert node["Plan Rows"] <= rows_bound, json.dumps(plan)


def deep_cursor(run: ImportRun, position: int) -> str:
    return ITEMS_PROBLEMS_FIRST.encode(items_problems_first(run)[position - 1])


def api_items_sql(api, run: ImportRun, query: dict) -> str:
    with CaptureQueriesContext(connection) as captured:
        response = api.get(f"/api/batch-import/runs/{run.run_id}/items", query)
    assert response.status_code == 200, response.content
    return the_query_on(captured, "import_run_items")


def test_the_items_first_page_is_an_index_scan(api, big_run):
    plan = explain(api_items_sql(api, big_run, {"limit": API_LIMIT}))
    assert_index_served(plan, table="import_run_items", index="item_run_problems_idx", rows_bound=0)


@pytest.mark.parametrize("depth", [0.5, 0.97])
def test_a_deep_items_page_is_an_index_range_scan(api, big_run, depth):
    cursor = deep_cursor(big_run, int(ITEMS * depth))
    plan = explain(api_items_sql(api, big_run, {"limit": API_LIMIT, "cursor": cursor}))
    bound = len(ITEMS_PROBLEMS_FIRST.keys) * (API_LIMIT + 1)
    assert_index_served(
        plan, table="import_run_items", index="item_run_problems_idx", rows_bound=bound
    )


def test_a_deep_items_page_reads_only_its_ranges(api, big_run):
    """Actual rows, not the planner's guess: a page 97% down reads a few pages' worth of rows,
    not the 19,400 rows above it."""
    cursor = deep_cursor(big_run, int(ITEMS * 0.97))
    sql = api_items_sql(api, big_run, {"limit": API_LIMIT, "cursor": cursor})
    plan = explain(sql, analyze=True)
    read = rows_read(plan, "import_run_items")
    assert read <= len(ITEMS_PROBLEMS_FIRST.keys) * (API_LIMIT + 1), json.dumps(plan)


def test_the_run_page_first_and_deep_pages_are_index_scans(client, staff, big_run):
    url = f"/batch-import/runs/{big_run.run_id}"
    cursor = deep_cursor(big_run, int(ITEMS * 0.9))
    for query in ({}, {"cursor": cursor}, {"before": cursor}):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url, query).status_code == 200
        listing = [
            q["sql"]
            for q in captured
            if 'FROM "import_run_items"' in q["sql"] and '"problem_rank"' in q["sql"]
        ]
        [sql] = [q for q in listing if "ORDER BY" in q and "COUNT(" not in q]
        assert_index_served(
            explain(sql),
            table="import_run_items",
            index="item_run_problems_idx",
            rows_bound=len(ITEMS_PROBLEMS_FIRST.keys) * 26,
        )


def test_an_items_events_are_read_in_index_order(api, big_run):
    item = ImportRunItem.objects.filter(run=big_run, position=ITEMS // 2).get()
    with CaptureQueriesContext(connection) as captured:
        response = api.get(f"/api/batch-import/runs/{big_run.run_id}/items/{item.item_id}")
    assert response.status_code == 200 and len(response.json()["events"]) == EVENTS_PER_ITEM
    plan = explain(the_query_on(captured, "import_run_item_events"))
    assert_index_served(
        plan, table="import_run_item_events", index="event_item_timeline_idx", rows_bound=0
    )


@pytest.mark.parametrize(
    ("name", "sql_ending", "index"),
    [
        ("advisory items", "\"confirmation_status\" = 'advisory')", "item_run_advisory_idx"),
        ("other warnings", "IN ('degraded', 'broken')))", "item_run_warning_idx"),
        ("failure reasons", "ORDER BY 2 DESC, 1 ASC", "item_run_failure_idx"),
    ],
)
def test_run_detail_counts_read_only_their_index(api, big_run, name, sql_ending, index):
    ImportRunCounterShard.objects.filter(run=big_run, shard=0).update(broken_items=ITEMS // 20)
    with CaptureQueriesContext(connection) as captured:
        assert api.get(f"/api/batch-import/runs/{big_run.run_id}").status_code == 200
    [sql] = [
        q["sql"]
        for q in captured
        if 'FROM "import_run_items"' in q["sql"] and q["sql"].endswith(sql_ending)
    ]
    plan = explain(sql)
    scans = [n for n in nodes(plan) if n.get("Relation Name") == "import_run_items"]
    assert [(n["Node Type"].replace(" Only", ""), n["Index Name"]) for n in scans] == [
        ("Index Scan", index)
    ], (name, json.dumps(plan))


def test_the_run_pages_stage_counts_read_only_unfinished_items(client, staff, big_run):
    with CaptureQueriesContext(connection) as captured:
        assert client.get(f"/batch-import/runs/{big_run.run_id}").status_code == 200
    [sql] = [q["sql"] for q in captured if "= 'done')) GROUP BY 1" in q["sql"]]
    scans = [n for n in nodes(explain(sql)) if n.get("Relation Name") == "import_run_items"]
    assert [(n["Node Type"].replace(" Only", ""), n["Index Name"]) for n in scans] == [
        ("Index Scan", "item_run_unfinished_idx")
    ]


def endpoint_urls(run: ImportRun, *, deep: int) -> dict[str, tuple[str, str, dict]]:
    item = ImportRunItem.objects.filter(run=run).order_by("position")[deep - 1]
    cursor = deep_cursor(run, deep)
    api, page = f"/api/batch-import/runs/{run.run_id}", f"/batch-import/runs/{run.run_id}"
    return {
        "api run": ("api", api, {}),
        "api items first": ("api", f"{api}/items", {}),
        "api items deep": ("api", f"{api}/items", {"cursor": cursor}),
        "api item": ("api", f"{api}/items/{item.item_id}", {}),
        "page run first": ("client", page, {}),
        "page run deep": ("client", page, {"cursor": cursor}),
        "page run back": ("client", page, {"before": cursor}),
        "page item": ("client", f"{page}/items/{item.item_id}", {}),
    }


# token or session, run, and the answer's own reads.
EXPECTED_QUERIES = {
    "api run": 4,  # token, run, advisory count, other-warnings count
    "api items first": 3,  # token, run, items
    "api items deep": 3,
    "api item": 3,  # token, item + run, events
    "page run first": 9,
    "page run deep": 9,
    "page run back": 9,
    "page item": 4,  # session, user, item + run, events
}


@pytest.mark.parametrize("endpoint", sorted(EXPECTED_QUERIES))
def test_each_answer_costs_a_fixed_number_of_queries(
    api, client, staff, big_run, endpoint, django_assert_num_queries
):
    small = ImportRunFactory(total_items=40)
    seed(small, 40, EVENTS_PER_ITEM)
    for run, deep in ((small, 30), (big_run, int(ITEMS * 0.9))):
        kind, url, query = endpoint_urls(run, deep=deep)[endpoint]
        with django_assert_num_queries(EXPECTED_QUERIES[endpoint]):
            response = {"api": api, "client": client}[kind].get(url, query)
        assert response.status_code == 200
