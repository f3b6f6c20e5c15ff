"""Rows read per item (issue #17): every item's whole pipeline, run inline over the simulators,
and the after-run hook that folds the run into the inventory, read as many rows of each table
per item in a run of 100 items as in a run of 10, and cost the same statements; on
PostgreSQL's own counters (pg_stat_user_tables: rows of sequential scans plus rows fetched
through indexes). SQLite runs of the suite skip this module.

The database has seen earlier work, so its tables are of a size where an index beats a scan,
and its statistics are taken just before the run starts (as autovacuum's would be): they have
seen neither the run's items nor the records it makes on its new host, which is when the
planner is easiest to mislead.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager

import pytest
from django.db import connection

from batch_import.models import ImportRun, ImportRunCounterShard, ImportRunItem, LegacyImportBatch
from batch_import.stages import StageContext
from batch_import.tasks import advance_item
from hosts.models import Host, ManagedResource
from providers.models import Provider, ProviderAccount, ProviderCheck
from providers.tasks import after_import_run
from tests.factories import HostFactory, ImportRunFactory, ImportRunItemFactory
from tests.integration.pipeline import entry, register, start

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.integration,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's counters"),
]
SMALL, BIG = 10, 100
# Each upstream gets as many keys in both runs, so each item's work is alike: one item in five
# is the first of its upstream (it makes the group and channel, probes the routes).
KEYS_PER_UPSTREAM = 5
EARLIER_HOSTS, EARLIER_RUNS, EARLIER_ITEMS = 200, 1_000, 4_000
# What may differ without growing with N: the small run amortizes the run's own work (its
# end, the hand-over, the reconcile it starts) over 10 items instead of 100, which only
# lowers the big run's figure; and the two runs meet slightly different statistics (the small
# run's host and rows exist when the big one starts), a lookup may then read a row more. A
# read that grows with N reads ~10x the rows at 10x the items (before this test: 348 vs 40
# managed records per item, 25 vs 8 providers, 277 vs 52 items), far outside RATIO x small +
# SLACK. The small run stays below ANALYZE_AT_ITEMS: its lookups may read its few items.
RATIO, SLACK = 1.25, 3.0


def rows_read() -> Counter:
    """Rows each table gave so far: sequential scans' rows plus rows fetched by index scans."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")  # ours, at this statement's end
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT relname, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)"
            " FROM pg_stat_user_tables"
        )
        return Counter(dict(cursor.fetchall()))


def earlier_work() -> None:
    """Hosts, runs, items, records and providers from before: 4,000 keys on one host."""
    hosts = Host.objects.bulk_create(HostFactory.build_batch(EARLIER_HOSTS))
    runs = ImportRun.objects.bulk_create(
        ImportRunFactory.build(host=hosts[n % EARLIER_HOSTS], state="completed")
        for n in range(EARLIER_RUNS)
    )
    LegacyImportBatch.objects.bulk_create(
        LegacyImportBatch(host_id=run.host_id, run_id=run.run_id, mode=run.mode) for run in runs
    )
    ImportRunCounterShard.objects.bulk_create(
        (
            ImportRunCounterShard(run=run, shard=n, total_items=1 if n == 0 else 0)
            for run in runs
            for n in range(ImportRunCounterShard.SHARDS)
        ),
        batch_size=2_000,
    )
    host = hosts[0]
    for n, run in enumerate(r for r in runs if r.host_id == host.pk):
        if n == 4:
            break
        items = ImportRunItemFactory.build_batch(
            EARLIER_ITEMS // 4,
            run=run,
            current_stage="done",
            access_status="active",
            confirmation_status="confirmed",
            capability_profile={"transport_profile": {}, "model_profiles": []},
        )
        for i, item in enumerate(items):
            item.group_id = item.channel_id = 10_000 + n * 100 + i % 100
            item.account_id = 100_000 + n * 10_000 + i
        ImportRunItem.objects.bulk_create(items, batch_size=1_000)
        ManagedResource.objects.bulk_create(
            (
                ManagedResource(
                    host=host,
                    resource_type="account",
                    host_resource_id=str(item.account_id),
                    logical_key=f"acct-{item.account_id}",
                    provider_id=item.provider_id,
                    api_key_digest=item.api_key_digest,
                    host_group_id=item.group_id,
                    created_by_run_id=run.run_id,
                    created_by_item_id=item.item_id,
                )
                for item in items
            ),
            batch_size=1_000,
        )
        providers = Provider.objects.bulk_create(
            Provider(host=host, provider_id=item.provider_id, base_url=item.base_url)
            for item in items
        )
        accounts = ProviderAccount.objects.bulk_create(
            ProviderAccount(
                provider=provider,
                host_account_id=item.account_id,
                api_key_digest=item.api_key_digest,
            )
            for provider, item in zip(providers, items, strict=True)
        )
        ProviderCheck.objects.bulk_create(
            ProviderCheck(
                provider=account.provider,
                account=account,
                kind=ProviderCheck.Kind.GATEWAY,
                access_mode=run.access_mode,
                ok=True,
                import_item_id=item.item_id,
                created_at=run.started_at,
            )
            for account, item in zip(accounts, items, strict=True)
        )


@contextmanager
def counting(statements: Counter, key):
    def count(execute, sql, params, many, context):
        statements[key] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        yield


def one_run(host_simulator_factory, upstream_factory, size: int):
    """A run of ``size`` keys on a new host, each item advanced inline, then the after-run
    hook. Returns rows read per item by table, statements per item, the hook's statements."""
    host = register(host_simulator_factory(), name=f"sim-{size}")
    upstreams = [
        upstream_factory(models=("kimi-k2.6",), api_key=None)
        for _ in range(size // KEYS_PER_UPSTREAM)
    ]
    entries = [entry(upstreams[n % len(upstreams)], key=f"sk-{size}-{n}") for n in range(size)]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # what autovacuum saw before the run
    run = start(host, entries)  # the run's creation is per run, not per item: not counted
    context = StageContext(worker_id="rows")
    statements: Counter = Counter()
    before = rows_read()
    for position, item_id in enumerate(
        run.items.order_by("position").values_list("item_id", flat=True)
    ):
        with counting(statements, position):
            assert advance_item(item_id, worker_id="rows", context=context) == "done"
    with counting(statements, "after_run"):
        after_import_run(run.run_id)
    after = rows_read()
    run.refresh_from_db()
    assert (run.state, run.active_items) == ("completed", size)
    rows = {table: (after[table] - before[table]) / size for table in after}
    hook = statements.pop("after_run")
    return rows, Counter(statements.values()), hook / size


def test_rows_and_statements_per_item_do_not_grow_with_the_run(
    host_simulator_factory, upstream_factory
):
    earlier_work()
    small, small_statements, small_hook = one_run(host_simulator_factory, upstream_factory, SMALL)
    big, big_statements, big_hook = one_run(host_simulator_factory, upstream_factory, BIG)

    grown = {
        table: (round(small[table], 2), round(big[table], 2))
        for table in big
        if big[table] > RATIO * small[table] + SLACK
    }
    assert not grown, grown  # table: (rows per item at N=10, at N=100)
    # Statements per item: the same kinds of item (the first of the host, the first of each
    # upstream, the others, the last one that ends the run) cost the same in both runs, or
    # one fewer where the item's counter shard still counted another's unfinished item (the
    # big run's items share the shards): such an item settles nothing.
    kinds = set(small_statements)
    assert set(big_statements) <= kinds | {n - 1 for n in kinds}, (
        small_statements,
        big_statements,
    )
    usual = small_statements.most_common(1)[0][0]
    assert big_statements.most_common(1)[0][0] in (usual, usual - 1)
    # The hook's statements are per item and per upstream, plus a few per run.
    assert big_hook <= small_hook, (small_hook, big_hook)
