"""Lists cost a fixed number of queries, whatever their length (STYLE: selectors)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batch_import.models import LegacyImportBatch
from tests.factories import (
    HostFactory,
    ImportRunFactory,
    ImportRunItemEventFactory,
    ImportRunItemFactory,
)

pytestmark = pytest.mark.django_db


def queries(api, path):
    with CaptureQueriesContext(connection) as captured:
        response = api.get(path, {"limit": 200})
    assert response.status_code == 200, response.content
    return len(captured)


def runs_with_items(count):
    for _ in range(count):
        ImportRunItemFactory(run=ImportRunFactory())


@pytest.mark.parametrize("count", [2, 30])
def test_runs_list(api, count):
    runs_with_items(count)
    assert queries(api, "/api/batch-import/runs") == 2  # token + runs


def test_runs_list_with_search_is_fixed_too(api):
    runs_with_items(2)
    small = queries(api, "/api/batch-import/runs?q=example")
    runs_with_items(28)
    assert queries(api, "/api/batch-import/runs?q=example") == small == 2


@pytest.mark.parametrize("count", [2, 30])
def test_items_list(api, count):
    run = ImportRunFactory()
    for _ in range(count):
        ImportRunItemFactory(run=run, advisory_messages=["warmup_retried"])
    assert queries(api, f"/api/batch-import/runs/{run.run_id}/items") == 3  # token, run, items


@pytest.mark.parametrize("count", [2, 30])
def test_item_detail_with_many_events(api, count):
    item = ImportRunItemFactory()
    for _ in range(count):
        ImportRunItemEventFactory(item=item)
    path = f"/api/batch-import/runs/{item.run_id}/items/{item.item_id}"
    assert queries(api, path) == 3  # token, item + run, events


@pytest.mark.parametrize("count", [2, 30])
def test_legacy_batches_list(api, count):
    for _ in range(count):
        run = ImportRunFactory()
        batch = LegacyImportBatch.objects.create(host=run.host, run_id=run.run_id, mode="partial")
        ImportRunItemFactory(run=run, legacy_batch=batch)
    assert queries(api, "/api/import-batches") == 3  # token, batches, their items


@pytest.mark.parametrize("count", [2, 30])
def test_hosts_list(api, count):
    for _ in range(count):
        HostFactory()
    assert queries(api, "/api/hosts") == 2  # token + hosts
