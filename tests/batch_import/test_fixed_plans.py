"""The worker's statements of a fixed plan (``fixed_plan=True``, issue #17), on PostgreSQL:
each is prepared on the server at its first run and every run takes its generic plan, made
without the values of its slots; that plan reads the tables as the plan made for the values
does, by the index each test names, and only about the rows it answers with.

A statement gets a fixed plan only where that holds: its constants are written into its text
(a partial index's condition, a column's statistics), and its slots are compared by equality
on an index's leading columns or walk an index in its order (the take). And only over the
items, which a run writes whole when it starts: a generic plan is made once per connection,
for the tables as they are then, and one made while a table held a page or two scans it at
every run however it grows (the reads of events and host records stay planned for their
values: docs/performance.md; ``tests/integration/test_rows_per_item.py`` grows the tables
under plans made small). The plans here are the ones the server ran, as ``auto_explain``
reports them (its module loaded in the test's session; actual rows counted), over runs seeded
with many providers and then analysed, as autovacuum would. SQLite runs skip this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batch_import.identity import api_key_digest, api_key_fingerprint
from batch_import.leases import NEXT_DUE
from batch_import.models import ImportRun, ImportRunItem
from batch_import.reuse_preflight import SETTLED_IN_RUN, SETTLED_OF_PROVIDER
from batch_import.stages.upstream_probe import PROFILED_SIBLING
from hosts.models import Host
from tests.factories import HostFactory, ImportRunFactory
from tests.plans import explain, nodes, postgresql_only, scans

pytestmark = [pytest.mark.django_db, postgresql_only]

RUNS = 4
ITEMS_PER_RUN = 1_500
PROVIDERS = 30
Stage = ImportRunItem.Stage


def _item(run: ImportRun, n: int) -> ImportRunItem:
    provider = n % PROVIDERS
    key = f"sk-fixed-{run.pk}-{n}"
    settled = n % 3 == 0
    return ImportRunItem(
        run=run,
        position=n,
        base_url=f"https://relay{provider}.example.com/v1",
        provider_id=f"relay{provider}-example",
        api_key=key,
        api_key_fingerprint=api_key_fingerprint(key),
        api_key_digest=api_key_digest(key),
        current_stage=Stage.DONE if settled else Stage.PROVISION,
        next_retry_at=None if settled else timezone.now() - timedelta(minutes=1),
        group_id=provider + 1 if settled else None,
        capability_profile={"chat": "yes"} if n % (2 * PROVIDERS) < PROVIDERS else None,
    )


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker) -> Iterator[ImportRun]:
    """Committed once for the module (removed at the end): runs of one host and their items."""
    with django_db_blocker.unblock():
        host = HostFactory()
        runs = [ImportRunFactory(host=host) for _ in range(RUNS)]
        for run in runs:
            ImportRunItem.objects.bulk_create(
                [_item(run, n) for n in range(ITEMS_PER_RUN)], batch_size=2_000
            )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE import_run_items")
        yield runs[1]
        with connection.cursor() as cursor:
            for table in ("import_run_items", "import_run_counters", "import_runs"):
                cursor.execute(
                    f"DELETE FROM {table} WHERE run_id = ANY(%s)", [[r.pk for r in runs]]
                )
        Host.objects.filter(pk=host.pk).delete()


@dataclass(frozen=True)
class Plans:
    """A read's plans: ``generic``, as the server ran its prepared statement (``auto_explain``,
    with the rows each node read), and ``for_values``, the plan made for the same statement
    with its values written in (``EXPLAIN``)."""

    generic: list[dict]
    for_values: dict


def plans_of(read: Callable[[], object], *, runs: int = 2) -> Plans:
    """``read`` once (its statement prepared on the connection), then ``runs`` times more."""
    with CaptureQueriesContext(connection) as first:
        read()
    [statement] = first.captured_queries
    heard: list[str] = []

    def hear(diagnostic) -> None:
        text = diagnostic.message_primary or ""
        if "plan:" in text:
            heard.append(text.split("plan:", 1)[1])

    with connection.cursor() as cursor:
        cursor.execute("LOAD 'auto_explain'")
        cursor.execute("SET auto_explain.log_min_duration = 0")
        cursor.execute("SET auto_explain.log_analyze = on")
        cursor.execute("SET auto_explain.log_format = json")
        cursor.execute("SET client_min_messages = log")
    connection.connection.add_notice_handler(hear)
    try:
        for _ in range(runs):
            read()
    finally:
        # A statement's plan comes after its answer (at its portal's end): the next
        # statement brings the last one in.
        with connection.cursor() as cursor:
            cursor.execute("SET auto_explain.log_min_duration = -1")
        connection.connection.remove_notice_handler(hear)
        with connection.cursor() as cursor:
            cursor.execute("RESET client_min_messages")
    assert len(heard) == runs, heard
    return Plans(
        generic=[json.loads(plan)["Plan"] for plan in heard],
        for_values=explain(statement["sql"]),
    )


def prepared_runs(statement_start: str) -> tuple[int, int]:
    """(generic plans, custom plans) run by the session's prepared statement that starts so."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE %s",
            [statement_start.replace("%", r"\%") + "%"],
        )
        rows = cursor.fetchall()
    assert len(rows) == 1, rows
    return rows[0]


# The tables a run makes grow with it: none of them is ever read whole.
GROWING = ("import_run_items", "import_run_item_events", "hosts_managedresource")


def assert_fixed(plans: Plans, *, rows_bound: int) -> None:
    """Every generic plan reads the tables as the plan made for the values does, none of the
    growing ones whole, at most ``rows_bound`` rows in all (returned plus filtered out)."""
    for plan in plans.generic:
        assert scans(plan) == scans(plans.for_values), json.dumps([plan, plans.for_values])
        read = 0
        for node in nodes(plan):
            table = node.get("Relation Name")
            assert not (table in GROWING and node["Node Type"] == "Seq Scan"), json.dumps(plan)
            if table is not None:
                loops = node["Actual Loops"]
                read += node["Actual Rows"] * loops + node.get("Rows Removed by Filter", 0)
        assert read <= rows_bound, json.dumps(plan)


def indexes_read(plans: Plans, table: str) -> set[str | None]:
    """The indexes the generic plans read ``table`` by (None: not by an index)."""
    return {index for plan in plans.generic for name, index in scans(plan) if name == table}


def a_settled_item(run: ImportRun) -> ImportRunItem:
    return run.items.filter(group_id__isnull=False).order_by("-position").first()


@pytest.mark.parametrize("of_provider", [False, True], ids=["in run", "of provider"])
def test_a_settled_sibling_is_read_as_for_its_values(seeded, of_provider):
    item = a_settled_item(seeded)
    if of_provider:
        read, values = SETTLED_OF_PROVIDER, {"provider": item.provider_id}
    else:
        read, values = SETTLED_IN_RUN, {}
    found = []

    plans = plans_of(lambda: found.append(read.first(run=seeded.pk, item=item.pk, **values)))

    assert all(s is not None and s.pk != item.pk and s.group_id for s in found)
    assert_fixed(plans, rows_bound=4)
    # Of a provider: the index of settled items by run and provider. In the run: the run's
    # items in order (a third of them settled), for the values as without them.
    expected = "item_run_settled_idx" if of_provider else "item_run_position_idx"
    assert indexes_read(plans, "import_run_items") == {expected}
    assert prepared_runs('SELECT "import_run_items"."item_id"') == (3, 0)


def test_a_profiled_sibling_is_read_by_the_profile_index(seeded):
    item = seeded.items.filter(capability_profile__isnull=True).first()
    found = []

    plans = plans_of(
        lambda: found.append(
            PROFILED_SIBLING.first(
                run=seeded.pk, provider=item.provider_id, base_url=item.base_url, item=item.pk
            )
        )
    )

    assert all(s is not None and s.capability_profile for s in found)
    assert_fixed(plans, rows_bound=2)
    assert indexes_read(plans, "import_run_items") == {"item_run_profile_idx"}
    assert prepared_runs('SELECT "import_run_items"."item_id"') == (3, 0)


def test_the_take_of_due_items_walks_the_due_index(seeded):
    taken = []

    plans = plans_of(
        lambda: taken.extend(
            NEXT_DUE.update_objects(
                (1, 8),
                now=timezone.now(),
                owner="worker-fixed-plans",
                until=timezone.now() + timedelta(minutes=5),
                run_0=seeded.pk,
            )
        )
    )

    assert len({item.pk for item in taken}) == 24
    assert all(item.current_stage == Stage.PROVISION for item in taken)
    assert_fixed(plans, rows_bound=64)
    # The due items by the partial index of unfinished ones (its condition matched by the
    # stage written in), then each by its key.
    assert "item_run_due_idx" in indexes_read(plans, "import_run_items")
    assert prepared_runs('WITH "import_run_items" AS (UPDATE') == (3, 0)
