"""The worker's reads of a fixed plan (``fixed_plan=True``, issue #17), on PostgreSQL: each is
prepared on the server at its first run and every run takes its generic plan, made without
the values; that plan reads by the index the read names and only the rows it answers with.

A read gets a fixed plan only when the plan made for any of its values is the one made
without them; the claims and the reads that filter on ranges or join through another row
(``USER_KEY``) do not, and their generic plans scanned far more (docs/performance.md). The
plans here are the ones the server ran, as ``auto_explain`` reports them (its module loaded
in the test's session; actual rows counted), over tables seeded with many runs, providers,
keys and records and then analysed, as autovacuum would. SQLite runs skip this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batch_import.identity import api_key_digest, api_key_fingerprint
from batch_import.models import ImportRun, ImportRunItem, ImportRunItemEvent
from batch_import.reuse_preflight import (
    EARLIER_PROVISIONING,
    SETTLED_IN_RUN,
    SETTLED_OF_PROVIDER,
)
from batch_import.stages.upstream_probe import PROFILED_SIBLING
from hosts.models import Host, ManagedResource
from hosts.resources import ACCOUNT_RECORDS
from tests.factories import ImportRunFactory
from tests.plans import explain, nodes, postgresql_only

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
        group_id=provider + 1 if settled else None,
        capability_profile={"chat": "yes"} if n % (2 * PROVIDERS) < PROVIDERS else None,
    )


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker) -> Iterator[ImportRun]:
    """Committed once for the module (removed at the end): runs of one host, their items and
    events, and an account record per item."""
    with django_db_blocker.unblock():
        host = ImportRunFactory().host
        runs = [ImportRunFactory(host=host) for _ in range(RUNS)]
        now = timezone.now()
        for run in runs:
            items = ImportRunItem.objects.bulk_create(
                [_item(run, n) for n in range(ITEMS_PER_RUN)], batch_size=2_000
            )
            ImportRunItemEvent.objects.bulk_create(
                [
                    ImportRunItemEvent(
                        run_id=run.pk,
                        item=item,
                        event_type=ImportRunItemEvent.EventType.STAGE_STARTED,
                        stage=stage,
                        created_at=now,
                    )
                    for item in items
                    for stage in (Stage.PROBE, Stage.PROVISION)
                ],
                batch_size=2_000,
            )
            ManagedResource.objects.bulk_create(
                [
                    ManagedResource(
                        host=host,
                        resource_type=ManagedResource.ResourceType.ACCOUNT,
                        host_resource_id=f"{run.pk}-{item.position}",
                        logical_key=f"{item.provider_id}|{item.api_key_fingerprint}",
                        provider_id=item.provider_id,
                        api_key_digest=item.api_key_digest,
                    )
                    for item in items
                ],
                batch_size=2_000,
            )
        with connection.cursor() as cursor:
            for table in ("import_run_items", "import_run_item_events", "hosts_managedresource"):
                cursor.execute(f"ANALYZE {table}")
        yield runs[1]
        with connection.cursor() as cursor:
            tables = ("import_run_item_events", "import_run_items", "import_run_counters")
            for table in (*tables, "import_runs"):
                cursor.execute(
                    f"DELETE FROM {table} WHERE run_id = ANY(%s)", [[r.pk for r in runs]]
                )
        ManagedResource.objects.filter(host=host).delete()
        ImportRun.objects.filter(host=host).delete()
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


def scans(plan: dict) -> list[tuple[str, str | None]]:
    """Each table a plan reads, with the index it reads it by (None: not by an index)."""
    return [
        (node["Relation Name"], node.get("Index Name"))
        for node in nodes(plan)
        if "Relation Name" in node
    ]


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


def assert_fixed(plans: Plans, *, indexes: dict[str, str], rows_bound: int) -> None:
    """Every generic plan reads the tables as the plan made for the values does, each table in
    ``indexes`` by its index, none whole, at most ``rows_bound`` rows in all (returned plus
    filtered out)."""
    for plan in plans.generic:
        assert scans(plan) == scans(plans.for_values), json.dumps([plan, plans.for_values])
        read = 0
        for node in nodes(plan):
            assert node["Node Type"] != "Seq Scan", json.dumps(plan)
            table = node.get("Relation Name")
            if table in indexes:
                assert node.get("Index Name") == indexes[table], json.dumps(plan)
            if table is not None:
                loops = node["Actual Loops"]
                read += node["Actual Rows"] * loops + node.get("Rows Removed by Filter", 0)
        assert read <= rows_bound, json.dumps(plan)


def a_settled_item(run: ImportRun) -> ImportRunItem:
    return run.items.filter(group_id__isnull=False).order_by("-position").first()


def test_a_keys_earlier_provisioning_reads_the_keys_items_and_the_items_events(seeded):
    item = a_settled_item(seeded)
    answers = []

    plans = plans_of(
        lambda: answers.extend(
            EARLIER_PROVISIONING.rows(
                item=item.pk,
                provider=item.provider_id,
                digest=item.api_key_digest,
                host=seeded.host_id,
            )
        )
    )

    assert answers == [(False, 1)] * 3  # no other item of the key; the item's one start
    assert_fixed(
        plans,
        indexes={"import_run_item_events": "event_item_timeline_idx"},
        rows_bound=12,
    )
    assert prepared_runs("SELECT EXISTS(") == (3, 0)


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
    # Of a provider: the index of settled items by run and provider. In the run: the run's
    # items in order (a third of them settled), for the values as without them.
    indexes = {"import_run_items": "item_run_settled_idx"} if of_provider else {}
    assert_fixed(plans, indexes=indexes, rows_bound=4)
    assert prepared_runs('SELECT "import_run_items"."item_id"') == (3, 0)


def test_a_keys_account_records_are_read_by_the_records_key_index(seeded):
    item = a_settled_item(seeded)
    found = []

    plans = plans_of(
        lambda: found.append(
            ACCOUNT_RECORDS.rows(
                host=seeded.host_id, provider=item.provider_id, digest=item.api_key_digest
            )
        )
    )

    assert [len(records) for records in found] == [1, 1, 1]
    assert_fixed(
        plans, indexes={"hosts_managedresource": "managedres_provider_key_idx"}, rows_bound=2
    )
    assert prepared_runs('SELECT "hosts_managedresource"."id"') == (3, 0)


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
    assert_fixed(plans, indexes={"import_run_items": "item_run_profile_idx"}, rows_bound=2)
    assert prepared_runs('SELECT "import_run_items"."item_id"') == (3, 0)
