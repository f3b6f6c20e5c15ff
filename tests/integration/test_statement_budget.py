"""The control plane's database work per item (issue #17): one item's whole pipeline, from
claim to release, stays within a statement budget, the same for every item whatever the run's
size. Lower the budget when a change saves statements; a change that needs more says why here.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batch_import.stages import StageContext
from batch_import.tasks import advance_item
from tests.integration.pipeline import entry, register, start

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

# Statements (transaction control included) of one item after the first of its provider, which
# also sets up the provider's group, channel and the users' access.
BUDGET = 45
# The last item also ends the run: the run's end is written and its after-import task enqueued.
RUN_END = 3


def test_each_items_pipeline_stays_within_the_statement_budget(host_simulator, upstream_factory):
    upstream = upstream_factory(models=("kimi-k2.6",), api_key=None)
    entries = [entry(upstream, key=f"sk-budget-{n}") for n in range(5)]
    run = start(register(host_simulator), entries)
    first, *later = run.items.order_by("position").values_list("item_id", flat=True)
    context = StageContext(worker_id="budget")
    assert advance_item(first, worker_id="budget", context=context) == "done"

    statements, host_reads = [], []
    for item_id in later:
        with CaptureQueriesContext(connection) as queries:
            assert advance_item(item_id, worker_id="budget", context=context) == "done"
        statements.append(len(queries))
        host_reads.append(sum('"hosts_host"' in q["sql"] for q in queries.captured_queries))

    run.refresh_from_db()
    assert (run.state, run.active_items) == ("completed", 5)
    *steady, last = statements
    assert len(set(steady)) == 1, statements  # the same for every item: constant with run size
    assert steady[0] <= BUDGET and last <= BUDGET + RUN_END, statements
    assert set(host_reads) == {1}  # the host row is the same for all of an item's stages
