"""The read side at scale (issue #17): one run of N items (100,000 by default) with their events
on the database in use, then every list and detail endpoint and page timed R times.

``python -m benchmarks.read_side --database-url URL`` prints p50/p95 per endpoint and the
queries each answer cost; ``make bench`` runs it in a child process and puts the figures in its
table and ``var/bench.json``. On PostgreSQL the rows go into a database of their own
(``<name>_bench_read_<pid>``, created afresh and dropped afterwards), never into the one named.

Requests go through Django's test client in this process (URL routing, middleware, session
authentication, view, projection, template or serializer): the server's own cost per answer,
without a network in between.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
EVENTS_PER_ITEM = 5
BATCH = 2_000
HTML_PAGE_SIZE = 25  # batch_import.views.PAGE_SIZE
DEEP_FRACTION = 0.9  # the deep pages start 90% of the way down the list


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(len(ordered) * fraction) - 1)]


@contextlib.contextmanager
def _own_database(url: str, *, keep: bool = False, suffix: str = "_bench_read") -> Iterator[str]:
    """A PostgreSQL database of the bench's own beside the one named (``<name><suffix>_<pid>``:
    benches run side by side never drop each other's; dropped at the end unless ``keep``, to
    look into); a SQLite URL is used as given."""
    parts = urlsplit(url)
    if parts.scheme.split("+")[0] not in ("postgres", "postgresql", "pgsql"):
        yield url
        return
    import psycopg
    from psycopg import sql

    name = f"{parts.path.lstrip('/') or 'postgres'}{suffix}_{os.getpid()}"
    admin = psycopg.connect(url, autocommit=True)
    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    admin.execute(statement)
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        if not keep:
            admin.execute(statement)
        admin.close()


def setup_django(database_url: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="relay_project.settings",
        DEBUG="1",
        DATABASE_URL=database_url,
        RELAY_ALLOW_INSECURE_UPSTREAMS="1",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


@contextlib.contextmanager
def _timestamps_as_given(*models) -> Iterator[None]:
    """Seeding writes spread-out created/updated times instead of "now"."""
    fields = [
        field
        for model in models
        for field in model._meta.concrete_fields
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
    ]
    saved = [(field, field.auto_now, field.auto_now_add) for field in fields]
    for field in fields:
        field.auto_now = field.auto_now_add = False
    try:
        yield
    finally:
        for field, auto_now, auto_now_add in saved:
            field.auto_now, field.auto_now_add = auto_now, auto_now_add


def _item_shape(n: int) -> dict:
    """A run near its end: most items active, some broken/degraded/advisory, 5% unfinished."""
    from batch_import.models import ImportRunItem as Item

    Stage, Access, Conf = Item.Stage, Item.AccessStatus, Item.ConfirmationStatus
    bucket = n % 100
    if bucket < 5:
        stage = (Stage.PROBE, Stage.PROVISION, Stage.CONFIRM, Stage.VALIDATE)[n % 4]
        return {"current_stage": stage}
    done = {"current_stage": Stage.DONE, "confirmation_status": Conf.CONFIRMED}
    if bucket < 10:
        return {
            **done,
            "access_status": Access.BROKEN,
            "failure_class": Item.FailureClass.UPSTREAM_AUTH,
            "last_error_stage": Stage.VALIDATE,
            "last_error": "401 from the upstream",
            "has_warning": True,
        }
    if bucket < 13:
        return {
            **done,
            "access_status": Access.DEGRADED,
            "failure_class": Item.FailureClass.UPSTREAM_QUOTA,
            "has_warning": True,
        }
    if bucket < 15:
        return {
            **done,
            "access_status": Access.ACTIVE,
            "confirmation_status": Conf.ADVISORY,
            "advisory_messages": ["warmup_retried"],
            "has_warning": True,
        }
    return {**done, "access_status": Access.ACTIVE}


def seed(items: int, events_per_item: int) -> dict:
    from django.db import connection, transaction

    from batch_import.identity import api_key_digest, api_key_fingerprint
    from batch_import.models import ImportRun, ImportRunItem, ImportRunItemEvent
    from batch_import.transitions import refresh_run_state
    from hosts.models import Host

    started = time.perf_counter()
    host = Host.objects.create(
        name="bench-read",
        base_url="http://127.0.0.1:9",
        auth_type=Host.AuthType.ADMIN_API_KEY,
        admin_credential="admin-" + "a" * 64,
        status=Host.Status.SUPPORTED,
    )
    base = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    shapes = [_item_shape(n) for n in range(items)]
    run = ImportRun.objects.create(
        host=host,
        mode=ImportRun.Mode.PARTIAL,
        access_mode=ImportRun.AccessMode.SUBSCRIPTION,
        subscription_users=["bench@example.com"],
        subscription_days=30,
    )
    # A few other runs, so the runs list and the run's neighbours are not alone.
    for _ in range(20):
        ImportRun.objects.create(host=host, mode="partial", access_mode="subscription")
    key = "sk-bench-read-000000"
    with _timestamps_as_given(ImportRunItem, ImportRunItemEvent), transaction.atomic():
        for start in range(0, items, BATCH):
            rows, events = [], []
            for n in range(start, min(start + BATCH, items)):
                created = base + dt.timedelta(seconds=n)
                item = ImportRunItem(
                    run=run,
                    position=n,
                    base_url=f"https://relay{n % 500}.example.com/v1",
                    provider_id=f"relay{n % 500}-example-{n:08d}",
                    api_key=key,
                    api_key_fingerprint=api_key_fingerprint(key),
                    api_key_digest=api_key_digest(f"{key}{n}"),
                    requested_models=["kimi-k2.6"],
                    canonical_model_families=["kimi"],
                    resolved_smoke_model="kimi-k2.6",
                    created_at=created,
                    # Finishing order differs from input order.
                    updated_at=created + dt.timedelta(seconds=(n * 7919) % items),
                    **shapes[n],
                )
                rows.append(item)
                for e in range(events_per_item):
                    events.append(
                        ImportRunItemEvent(
                            run=run,
                            item=item,
                            event_type=ImportRunItemEvent.EventType.STAGE_COMPLETED,
                            stage=ImportRunItem.Stage.PROBE,
                            message="stage finished",
                            payload={"n": e},
                            created_at=created + dt.timedelta(milliseconds=e),
                        )
                    )
            ImportRunItem.objects.bulk_create(rows)
            ImportRunItemEvent.objects.bulk_create(events, batch_size=BATCH)
        refresh_run_state(run_id=run.run_id)  # its counts, as the service counts a new run
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE import_run_items")
            cursor.execute("VACUUM ANALYZE import_run_item_events")
            cursor.execute("VACUUM ANALYZE import_runs")
            cursor.execute("VACUUM ANALYZE import_run_counters")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {"run": run, "seconds": time.perf_counter() - started}


def _deep_cursor(run, position: int) -> str:
    """The keyset cursor of the row at ``position`` of the problems-first order (what a client
    paging down holds at that point)."""
    from batch_import.api.pagination import ITEMS_PROBLEMS_FIRST
    from batch_import.selectors import items_problems_first

    return ITEMS_PROBLEMS_FIRST.encode(items_problems_first(run)[position - 1])


def endpoints(run, items: int) -> dict[str, str]:
    from batch_import.models import ImportRunItem

    deep = max(1, int(items * DEEP_FRACTION))
    cursor = _deep_cursor(run, deep)
    item_id = (
        ImportRunItem.objects.filter(run=run, position=deep).values_list("pk", flat=True).get()
    )
    api = f"/api/batch-import/runs/{run.run_id}"
    page = f"/batch-import/runs/{run.run_id}"
    # The deep page carries both an offset page number and a cursor: an offset-paged view reads
    # one, a keyset-paged view the other (so the same bench measures either design).
    html_deep_page = deep // HTML_PAGE_SIZE + 1
    return {
        "API runs list": "/api/batch-import/runs",
        "API run detail": api,
        "API items, first page": f"{api}/items",
        "API items, deep page": f"{api}/items?cursor={cursor}",
        "API item detail": f"{api}/items/{item_id}",
        "HTML runs list": "/batch-import/runs",
        "HTML run page, first": page,
        "HTML run page, deep": f"{page}?page={html_deep_page}&cursor={cursor}",
        "HTML item page": f"{page}/items/{item_id}",
    }


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def measure(urls: dict[str, str], repeat: int) -> dict[str, dict]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    user = get_user_model().objects.create_user(
        "bench-reader", password="bench-reader-password", is_staff=True, is_superuser=True
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    results = {}
    for name, url in urls.items():
        for _ in range(2):  # warm: caches, prepared plans, templates
            response = client.get(url)
            assert response.status_code == 200, (name, response.status_code)
        counter = QueryCounter()
        with connection.execute_wrapper(counter):
            client.get(url)
        samples, cpu = [], []
        for _ in range(repeat):
            started, cpu_started = time.perf_counter(), time.process_time()
            client.get(url)
            samples.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - cpu_started) * 1000)
        results[name] = {
            "p50_ms": statistics.median(samples),
            "p95_ms": percentile(samples, 0.95),
            # This process's CPU per answer (the database's own is not in it): on a loaded
            # machine the wall time is mostly waiting for a core, this figure is not.
            "cpu_p50_ms": statistics.median(cpu),
            "queries": counter.count,
            "repeat": repeat,
        }
    return results


def bench_read_side(database_url: str, items: int, events_per_item: int, repeat: int) -> dict:
    from django.db import connection

    load_before = os.getloadavg()
    seeded = seed(items, events_per_item)
    urls = endpoints(seeded["run"], items)
    endpoints_measured = measure(urls, repeat)
    return {
        "database": connection.vendor,
        "items": items,
        "events": items * events_per_item,
        "seed_s": seeded["seconds"],
        "repeat": repeat,
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
        "endpoints": endpoints_measured,
    }


def table_rows(result: dict) -> list[tuple[str, str]]:
    head = (
        f"read side: {result['items']:,} items, {result['events']:,} events "
        f"({result['database']}), {result['repeat']} requests each, load average "
        f"{result['load_average']['before'][0]:.1f} → {result['load_average']['after'][0]:.1f}",
        "p50 / p95, queries, CPU p50 per answer",
    )
    rows = [head]
    for name, figures in result["endpoints"].items():
        rows.append(
            (
                f"  {name}",
                f"{figures['p50_ms']:.1f} / {figures['p95_ms']:.1f} ms, {figures['queries']} q, "
                f"CPU {figures['cpu_p50_ms']:.1f} ms",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", ""),
        help="the database in use (default: DATABASE_URL, else a temporary SQLite file)",
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--events-per-item", type=int, default=EVENTS_PER_ITEM)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--output", help="write the figures as JSON here")
    parser.add_argument(
        "--keep", action="store_true", help="keep the PostgreSQL database (to look into plans)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'read.sqlite3'}"
        with _own_database(url, keep=args.keep) as own:
            setup_django(own)
            result = bench_read_side(own, args.items, args.events_per_item, args.repeat)
            from django.db import connections

            connections.close_all()
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2))
    width = max(len(name) for name, _ in table_rows(result))
    for name, value in table_rows(result):
        print(f"{name.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
