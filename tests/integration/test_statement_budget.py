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
# also sets up the provider's group, channel and the users' access. 45 before the worker went
# on with the row each stage's transition had read (a read of the item and its run per stage),
# the sibling lookup loaded its run id (a query per lookup) and the provision stage's move
# took no savepoint of its own inside the batch link's transaction; 38 before the provision
# stage took the model pack the probe stage had looked up; 37 before it took the V1 batch
# from a settled sibling of the same provider instead of reading it; 36 before the transition
# that finishes the item ended its lease (the worker wrote the row once more to release it);
# 35 before the UPDATE of the run's counters returned them (the row was read back); 34 until
# the counts went to counter shards: the UPDATE of the item's shard returns nothing a settle
# needs, so the settle reads the shards with the run's state after the commit (one statement
# more, and no lock on the run's row, which every finishing item took before); 31 before each
# stage's start was written with the transition into it (three statements); 28, and 27 for an
# item whose counter shard still counts unfinished items, which settles nothing. On
# PostgreSQL each held item's transition became one statement (``transition_statement``:
# 27 → 16: its BEGIN and COMMIT, its events' INSERT and its shard's UPDATE gone), and 14
# once the provision stage's move, its provider listed in the V1 batch already, went without
# the batch link's transaction around it.
BUDGET = {"sqlite": 28, "postgresql": 14}
# The last item also ends the run, in a transaction of its own after its commit (BEGIN, the
# shards read again under the run's row lock, the run's end written, the V1 batch, COMMIT),
# and its after-import task is enqueued.
RUN_END = 6


def item_statements(host, upstream_factory, size: int) -> tuple[list[int], list[int]]:
    """A run of ``size`` keys of one upstream, each item advanced inline in turn: the
    statements of each item after the first, and the host rows each of them read."""
    upstream = upstream_factory(models=("kimi-k2.6",), api_key=None)
    entries = [entry(upstream, key=f"sk-budget-{size}-{n}") for n in range(size)]
    run = start(host, entries)
    first, *later = run.items.order_by("position").values_list("item_id", flat=True)
    assert advance_item(first, worker_id="budget", context=StageContext("budget")) == "done"

    statements, host_reads = [], []
    for item_id in later:
        context = StageContext(worker_id="budget")  # one per item, as a worker's place has
        with CaptureQueriesContext(connection) as queries:
            assert advance_item(item_id, worker_id="budget", context=context) == "done"
        statements.append(len(queries))
        host_reads.append(sum('"hosts_host"' in q["sql"] for q in queries.captured_queries))

    run.refresh_from_db()
    assert (run.state, run.active_items) == ("completed", size)
    return statements, host_reads


def test_each_items_pipeline_stays_within_the_statement_budget(
    host_simulator_factory, upstream_factory
):
    small, small_host_reads = item_statements(
        register(host_simulator_factory(), name="sim-5"), upstream_factory, 5
    )
    big, big_host_reads = item_statements(
        register(host_simulator_factory(), name="sim-20"), upstream_factory, 20
    )

    *steady, last = small
    settled = max(steady)  # an item whose shard another item left unfinished: one fewer
    assert set(steady) <= {settled - 1, settled}, small  # the same for every item of the run
    assert set(big[:-1]) <= {settled - 1, settled}, (small, big)  # and of a run 4 times its size
    assert settled - 1 in big, big  # runs of more items than shards: items share a shard
    budget = BUDGET[connection.vendor]
    assert settled <= budget and last <= budget + RUN_END, small
    assert big[-1] == last, (small, big)
    # The host row is the same for all of an item's stages: read with the first only.
    assert set(small_host_reads) == set(big_host_reads) == {1}
