"""Cursor pagination: limit/cursor/next_cursor over the §8 orderings, stable under inserts."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from django.utils import timezone

from batch_import.models import ImportRun, ImportRunItem
from tests.factories import ImportRunFactory, ImportRunItemFactory

pytestmark = pytest.mark.django_db

RUNS = "/api/batch-import/runs"
Stage, Access = ImportRunItem.Stage, ImportRunItem.AccessStatus


def fetch_all(api, url, key, limit, between_pages=None):
    """Every page of a list; ``between_pages`` runs after each page (to insert rows)."""
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = api.get(url, query)
        assert response.status_code == 200, response.json()
        body = response.json()
        assert len(body[key]) <= limit
        seen += [row[f"{key[:-1]}_id"] for row in body[key]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages
        if between_pages:
            between_pages()


def make_runs(count, *, same_time=False):
    base = timezone.now() - dt.timedelta(hours=1)
    runs = []
    for index in range(count):
        run = ImportRunFactory()
        started = base if same_time else base + dt.timedelta(seconds=index)
        ImportRun.objects.filter(pk=run.pk).update(started_at=started)
        runs.append(run.run_id)
    return runs


def test_runs_pages_follow_started_at_desc(api):
    runs = make_runs(5)
    seen, pages = fetch_all(api, RUNS, "runs", limit=2)
    assert seen == list(reversed(runs)) and pages == 3


def test_runs_pages_break_started_at_ties_by_run_id(api):
    runs = make_runs(5, same_time=True)
    seen, _ = fetch_all(api, RUNS, "runs", limit=2)
    assert seen == sorted(runs, reverse=True)


def test_runs_pages_are_stable_when_runs_are_inserted_between_fetches(api):
    runs = make_runs(6)
    seen, _ = fetch_all(api, RUNS, "runs", limit=2, between_pages=ImportRunFactory)
    # New runs are newer than the cursor: they belong to page one, never shift later pages.
    assert seen == list(reversed(runs))


def test_runs_inserted_behind_the_cursor_appear_once_and_shift_nothing(api):
    runs = make_runs(6)
    inserted = []

    def insert_older():
        run = ImportRunFactory()
        ImportRun.objects.filter(pk=run.pk).update(started_at="2020-01-01T00:00:00Z")
        inserted.append(run.run_id)

    seen, _ = fetch_all(api, RUNS, "runs", limit=2, between_pages=insert_older)
    assert [r for r in seen if r in runs] == list(reversed(runs))
    assert len(seen) == len(set(seen)) and set(seen) - set(runs) <= set(inserted)


def test_last_full_page_has_no_next_cursor(api):
    make_runs(2)
    body = api.get(RUNS, {"limit": 2}).json()
    assert len(body["runs"]) == 2 and body["next_cursor"] is None


def make_items(run, specs):
    base = timezone.now() - dt.timedelta(hours=1)
    items = []
    for index, (stage, access) in enumerate(specs):
        item = ImportRunItemFactory(run=run, current_stage=stage, access_status=access)
        ImportRunItem.objects.filter(pk=item.pk).update(
            updated_at=base + dt.timedelta(seconds=index % 3)  # some ties on updated_at
        )
        items.append(item.item_id)
    return items


SPECS = [
    (Stage.DONE, Access.ACTIVE),
    (Stage.DONE, Access.BROKEN),
    (Stage.PROBE, Access.UNKNOWN),
    (Stage.DONE, Access.DEGRADED),
    (Stage.VALIDATE, Access.UNKNOWN),
    (Stage.DONE, Access.ACTIVE),
    (Stage.CONFIRM, Access.UNKNOWN),
    (Stage.DONE, Access.BROKEN),
]


def test_items_pages_match_the_unpaged_problems_first_order(api):
    run = ImportRunFactory()
    make_items(run, SPECS)
    url = f"{RUNS}/{run.run_id}/items"
    full = [i["item_id"] for i in api.get(url, {"limit": 200}).json()["items"]]
    seen, pages = fetch_all(api, url, "items", limit=3)
    assert seen == full and pages == 3
    rows = [ImportRunItem.objects.get(pk=i) for i in full]
    ranks = [
        (r.current_stage == "done", r.access_status not in ("broken", "degraded")) for r in rows
    ]
    assert ranks == sorted(ranks)  # unfinished, then broken/degraded, then the rest


def test_items_pages_are_stable_when_items_are_inserted_between_fetches(api):
    run = ImportRunFactory()
    original = make_items(run, SPECS)
    url = f"{RUNS}/{run.run_id}/items"

    def insert():
        # One row sorting before every cursor, one after: neither may shift the boundary.
        ImportRunItemFactory(run=run, current_stage=Stage.PROBE)
        late = ImportRunItemFactory(run=run, current_stage=Stage.DONE, access_status="active")
        ImportRunItem.objects.filter(pk=late.pk).update(
            updated_at=timezone.now() - dt.timedelta(days=1)
        )

    seen, _ = fetch_all(api, url, "items", limit=2, between_pages=insert)
    original_seen = [item_id for item_id in seen if item_id in original]
    assert sorted(original_seen) == sorted(original)  # each original row exactly once
    assert len(seen) == len(set(seen))  # and no row twice


def test_default_limit_is_50(api):
    make_runs(51)
    body = api.get(RUNS).json()
    assert len(body["runs"]) == 50 and body["next_cursor"]


@pytest.mark.parametrize("limit", ["0", "201", "-1", "abc", "1.5"])
def test_limit_out_of_range_is_400(api, limit):
    response = api.get(RUNS, {"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"limit": "must be an integer between 1 and 200"}


def test_limit_200_is_allowed(api):
    runs = make_runs(3)
    response = api.get(RUNS, {"limit": 200})
    assert response.status_code == 200
    body = response.json()
    assert sorted(r["run_id"] for r in body["runs"]) == sorted(runs)
    assert body["next_cursor"] is None


@pytest.mark.parametrize("cursor", ["garbage", "eyJrIjoicnVucyJ9", "x" * 600, "%00"])
def test_bad_cursor_is_400(api, cursor):
    response = api.get(RUNS, {"cursor": cursor})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"cursor"}


def test_cursor_of_another_list_is_400(api):
    make_runs(3)
    cursor = api.get(RUNS, {"limit": 1}).json()["next_cursor"]
    run = ImportRunFactory()
    response = api.get(f"{RUNS}/{run.run_id}/items", {"cursor": cursor})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"cursor"}


def test_cursor_is_opaque_base64(api):
    make_runs(3)
    cursor = api.get(RUNS, {"limit": 1}).json()["next_cursor"]
    assert cursor.replace("-", "").replace("_", "").isalnum()


def crafted(kind, values):
    raw = json.dumps({"k": kind, "v": values}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "values",
    [
        ["2026-01-01T00:00:00+00:00"],  # too few keys
        ["2026-01-01T00:00:00", "run_x"],  # naive timestamp
        ["0001-01-01T00:00:00+05:00", "run_x"],  # overflows when made UTC
        ["not a time", "run_x"],
        [12, "run_x"],
        ["2026-01-01T00:00:00+00:00", 5],
        ["2026-01-01T00:00:00+00:00", "run\x00x"],  # PostgreSQL refuses NUL in text
    ],
)
def test_crafted_runs_cursor_is_400_not_500(api, values):
    response = api.get(RUNS, {"cursor": crafted("runs", values)})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"cursor"}


@pytest.mark.parametrize("rank", [10**30, True, "0", 1.5])
def test_crafted_items_cursor_is_400_not_500(api, rank):
    run = ImportRunFactory()
    cursor = crafted("items", [rank, 0, "2026-01-01T00:00:00+00:00", "item_x"])
    response = api.get(f"{RUNS}/{run.run_id}/items", {"cursor": cursor})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and set(error["fields"]) == {"cursor"}


def test_crafted_but_valid_cursor_pages_on(api):
    runs = make_runs(3)
    run = ImportRun.objects.with_counts().get(pk=runs[1])
    cursor = crafted("runs", [run.started_at.isoformat(), run.run_id])
    assert [r["run_id"] for r in api.get(RUNS, {"cursor": cursor}).json()["runs"]] == [runs[0]]
