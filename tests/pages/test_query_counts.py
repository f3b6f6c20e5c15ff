from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import ImportRunFactory, ImportRunItemEventFactory, ImportRunItemFactory

pytestmark = pytest.mark.django_db


def queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def run_with(items: int):
    run = ImportRunFactory()
    made = ImportRunItemFactory.create_batch(items, run=run, current_stage="done")
    for item in made[:1]:
        ImportRunItemEventFactory.create_batch(items, item=item)
    return run, made[0]


@pytest.mark.parametrize("page", ["runs", "run", "item"])
def test_queries_do_not_grow_with_the_number_of_items(client, staff, page):
    counts = []
    for size in (3, 30):
        run, item = run_with(size)
        ImportRunFactory.create_batch(size)
        url = {
            "runs": "/batch-import/runs",
            "run": f"/batch-import/runs/{run.run_id}",
            "item": f"/batch-import/runs/{run.run_id}/items/{item.item_id}",
        }[page]
        counts.append(queries(client, url))
    assert counts[0] == counts[1], counts
