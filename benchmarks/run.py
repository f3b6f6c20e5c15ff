"""Benchmarks: ``make bench`` (``QUICK=1`` for a short subset, ``BIG=1`` adds the 10,000-entry
run) prints one table and writes ``var/bench.json``.

- ``aliases`` and ``run_state``: pure-Python hot spots (ids per second, ms per 10,000 items).
- ``inline``: the pipeline in this process, one item after another, no latency: CPU and SQL
  statements per item. The control plane's own CPU is the CPU of the thread that advances the
  items (the simulators answer from threads of their own: the whole process's CPU is printed
  beside it), one item at a time, so it is the cost of the work itself; the cluster scenarios
  take theirs with both cores busy and many items in flight, and it comes out higher there.
- the cluster scenarios (``benchmarks.cluster``, each in a process of its own): real qclusters
  work a run of N entries over 20 upstream simulators while both simulators answer every
  request after L = 50 ms, C = 64 items in flight: SQLite + ORM broker with one qcluster, and
  PostgreSQL + Redis with two (at N = 100 and N = 1,000, so per-item figures can be compared
  across N). Each prints wall time beside the latency floor ``ceil(N / C) × path × L`` for the
  target path of 10 round trips and for the path measured per item, the round trips on each
  item's critical path, where an item's time in a worker went, CPU / SQL statements / rows read
  per item, the worker side's peak memory (sum of RSS and sum of PSS), the naive sequential
  peer loop over the same simulators, and the same I/O without the framework
  (``benchmarks.floor``).
- ``read_side``: one run of 100,000 items and their events on the database in use (``--read-db``,
  PostgreSQL under ``make bench`` when it answers), every list and detail endpoint and page
  timed: p50/p95 and queries per answer (``benchmarks.read_side``, in a child process of its
  own because it needs its own database).

Every figure comes from one run on this machine, so the ratios compare like with like; the
machine's load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LATENCY = 0.05
UPSTREAMS = 20


def setup_django(db_path: Path) -> None:
    for name in ("REDIS_URL", "DATABASE_URL_FILE"):
        os.environ.pop(name, None)  # the bench is SQLite + ORM broker, whatever the shell says
    from benchmarks.cluster import deployed_settings

    os.environ.update(
        DJANGO_SETTINGS_MODULE="relay_project.settings",
        **deployed_settings(),
        DATABASE_URL=f"sqlite:///{db_path}",
        RELAY_ALLOW_INSECURE_UPSTREAMS="1",
        RELAY_RETRY_BASE_DELAY="0.05",
        RELAY_RETRY_MAX_DELAY="0.2",
        RELAY_Q_NAME=f"relay-bench-{os.getpid()}",
        RELAY_VAR_DIR=str(db_path.parent),
        # Import throughput only: no after-import reconcile (of an earlier scenario whose
        # simulators are gone) competing for the cluster's workers.
        RELAY_AFTER_RUN_TASK="",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --- pure hot spots ----------------------------------------------------------------------------
def bench_aliases() -> dict:
    from probe.aliases import build_alias_table
    from tests.probe.test_aliases import ALL_IDS  # the real-world id table of the tests

    ids = list(ALL_IDS) * 20
    started = time.perf_counter()
    build_alias_table(ids)
    elapsed = time.perf_counter() - started
    return {"ids": len(ids), "ms": elapsed * 1000, "ids_per_s": len(ids) / elapsed}


def bench_run_state() -> dict:
    from batch_import.run_state import ItemSnapshot, derive_run_state

    items = [ItemSnapshot("done", "confirmed", "active") for _ in range(10_000)]
    started = time.perf_counter()
    derive_run_state(items, mode="partial")
    return {"items": 10_000, "ms": (time.perf_counter() - started) * 1000}


# --- the pipeline ------------------------------------------------------------------------------
def start_run(sims, count: int, label: str):
    from batch_import.services import run_start
    from benchmarks.cluster import register, run_request

    return run_start(request=run_request(sims, register(sims, label), count, label)).run


def bench_inline(count: int, latency: float = 0.0) -> dict:
    """One item after another in this process: the control plane's own cost. With
    ``latency`` both simulators answer each call after it, as in the cluster scenarios: the
    same pipeline, each answer waited for, nothing else running beside it."""
    from django.db import connection

    from batch_import.stages import StageContext
    from batch_import.tasks import advance_item
    from benchmarks.cluster import Simulators, StatementCounter

    sims = Simulators(upstreams=1, latency=latency)
    counter = StatementCounter()
    try:
        # A host of its own per latency: ``register`` finds a host by name.
        run = start_run(sims, count, f"inline-{latency * 1000:.0f}ms")
        latencies = []
        thread_cpu_started = time.thread_time()
        cpu_started = time.process_time()
        started = time.perf_counter()
        with connection.execute_wrapper(counter):
            for item_id in run.items.values_list("item_id", flat=True):
                one = time.perf_counter()
                context = StageContext(worker_id="bench")  # one per item, as a worker's place
                advance_item(item_id, worker_id="bench", context=context)
                latencies.append(time.perf_counter() - one)
        elapsed = time.perf_counter() - started
        thread_cpu = time.thread_time() - thread_cpu_started
        cpu = time.process_time() - cpu_started
        calls = sims.requests()
        run.refresh_from_db()
    finally:
        sims.stop()
    return {
        "items": count,
        "latency_ms": latency * 1000,
        "wall_s": elapsed,
        "items_per_s": count / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": sorted(latencies)[max(0, math.ceil(len(latencies) * 0.95) - 1)] * 1000,
        "cpu_ms_per_item": cpu / count * 1000,
        "worker_cpu_ms_per_item": thread_cpu / count * 1000,
        "sql_per_item": counter.count / count,
        "http_calls_per_item": calls / count,
        "state": run.state,
        "active": run.active_items,
    }


def bench_read_side(database_url: str, items: int, repeat: int, env: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "read_side.json"
        command = [sys.executable, "-m", "benchmarks.read_side", "--items", str(items)]
        command += ["--repeat", str(repeat), "--output", str(output)]
        if database_url:
            command += ["--database-url", database_url]
        subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
        return json.loads(output.read_text())


# --- the cluster scenarios ---------------------------------------------------------------------
def free_redis_db(base: str) -> str | None:
    """``redis://host:port/<n>`` for the highest-numbered empty database of the Redis at
    ``base``, claimed for this bench (a key only the first claimant sets, gone after two hours
    at most: two benches side by side never share one; each scenario flushes it), or None
    when Redis does not answer (the PostgreSQL + Redis scenarios are skipped)."""
    try:
        import redis

        for number in range(14, 0, -1):
            url = f"{base.rstrip('/')}/{number}"
            db = redis.Redis.from_url(url, socket_connect_timeout=1)
            if db.dbsize() == 0 and db.set("relay-bench-claim", os.getpid(), nx=True, ex=7200):
                return url
    except Exception:
        return None
    return None


def bench_scenario(label: str, env: dict, *options: str) -> dict:
    """One ``benchmarks.cluster`` scenario in a child process; its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "cluster.json"
        command = [sys.executable, "-m", "benchmarks.cluster", "--label", label]
        command += [*options, "--output", str(output)]
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
        result = json.loads(output.read_text())
        result["scenario_s"] = time.perf_counter() - started
        return result


def scenarios(args: argparse.Namespace, pg_url: str, redis_url: str | None) -> list[tuple]:
    """(label, options) of the cluster scenarios this run runs."""
    sqlite_items = args.items or (64 if args.quick else 1_000)
    common = ["--latency", str(args.latency), "--upstreams", str(args.upstreams)]
    common += ["--peer-items", "20" if args.quick else "50"]
    one = ["--clusters", "1", "--workers", "2", "--items-per-worker", "32"]
    two = ["--clusters", "2", "--workers", "1", "--items-per-worker", "32"]
    chosen = [("SQLite + ORM broker", [*common, *one, "--items", str(sqlite_items)])]
    if pg_url and redis_url:
        pg = [*common, *two, "--database-url", pg_url, "--redis-url", redis_url]
        sizes = [64] if args.quick else [100, args.items or 1_000]
        chosen += [(f"PostgreSQL + Redis, N={n}", [*pg, "--items", str(n)]) for n in sizes]
        if args.big:
            chosen.append(("PostgreSQL + Redis, N=10000", [*pg, "--items", "10000"]))
    elif args.big:
        chosen.append(("SQLite + ORM broker, N=10000", [*common, *one, "--items", "10000"]))
    return chosen


# --- the table ---------------------------------------------------------------------------------
def scenario_head(result: dict) -> tuple[str, str]:
    """A scenario's first line: its size, its time and how its run ended (naming the items
    whose verdict is not active, and why)."""
    n = result["items"]
    return (
        f"{result['label']}: {n:,} items, {result['upstreams']} upstreams, "
        f"L = {result['latency_ms']:.0f} ms",
        f"{result['wall_s']:.1f} s ({result['items_per_s']:.1f} items/s), {result['state']}, "
        f"active {result['active']}/{n}"
        + "".join(
            f"; #{i['position']} {i['access']} ({i['stage_ended']}): {i['error'] or '-'}"
            for i in result.get("not_active", [])
        ),
    )


def traced_share(result: dict) -> str:
    """Which items the per-item figures (path, calls, an item's time) come from."""
    one_in, traced = result.get("trace_one_in", 1), result["trace"]["items_traced"]
    if one_in <= 1:
        return f"every item traced ({traced:,})"
    return f"{traced:,} items traced (1 in {one_in})"


def scenario_rows(result: dict) -> list[tuple[str, str]]:
    n, traced, peer = result["items"], result["trace"], result["peer"]
    head = scenario_head(result)
    knobs = result["knobs"]
    split = ", ".join(f"{k} {v:.2f}" for k, v in traced["split_per_item_s"].items())
    rows = [
        head,
        (
            "  C = clusters x workers x items per worker",
            f"{result['in_flight']} = {result['clusters']} x {result['workers']} x "
            f"{result['items_per_worker']}; RELAY_HOST_CONCURRENCY "
            f"{knobs['RELAY_HOST_CONCURRENCY']}, RELAY_UPSTREAM_CONCURRENCY "
            f"{knobs['RELAY_UPSTREAM_CONCURRENCY']}",
        ),
        (
            "  floor ceil(N/C) x 10 x L (target path)",
            f"{result['floor_target_s']:.1f} s, wall/floor = {result['ratio_to_target_floor']:.1f}",
        ),
        (
            "  path per item (round trips, measured)",
            f"p50 {traced['path_p50']:.0f} / max {traced['path_max']}; "
            f"calls per item {traced['calls_per_item']:.1f} "
            f"(host {traced['host_calls_per_item']:.1f}, "
            f"upstream {traced['upstream_calls_per_item']:.1f}); " + traced_share(result),
        ),
        (
            "  floor ceil(N/C) x measured p50 path x L",
            f"{result['floor_measured_path_s']:.1f} s, "
            f"wall/floor = {result['ratio_to_measured_floor']:.1f}",
        ),
        *cores_floor_rows(result),
        (
            "  an item in a worker, s (p50 / p95)",
            f"{traced['in_worker_p50_s']:.2f} / {traced['in_worker_p95_s']:.2f}; "
            f"mean split: {split}",
        ),
        ("  item places busy (occupancy)", f"{traced['occupancy']:.2f}"),
        (
            "  CPU per item: worker side + web",
            f"{result['worker_cpu_ms_per_item']:.1f} + {result['web_cpu_ms_per_item']:.1f} ms"
            + (
                f" (the simulators beside it: {sims:.1f} ms"
                + (
                    f", the bench's polling: {loop:.1f} ms)"
                    if (loop := result.get("bench_loop_cpu_ms_per_item")) is not None
                    else ")"
                )
                if (sims := result.get("simulators_cpu_ms_per_item")) is not None
                else ""
            ),
        ),
        ("  worker side CPU per item by process", cpu_by_process(result)),
    ]
    if services := result.get("services_cpu_ms_per_item"):
        rows.append(
            (
                "  CPU per item of the services on this machine",
                ", ".join(f"{name} {ms:.1f} ms" for name, ms in services.items())
                + " (all their processes)",
            )
        )
    rows += [
        (
            "  SQL per item: items + cluster's own + web",
            f"{result['worker_sql_per_item']:.1f} + {result['worker_sql_other_per_item']:.1f} "
            f"+ {result['web_sql_per_item']:.1f}",
        ),
    ]
    if pg := result.get("pg_settings"):
        rows.append(("  PostgreSQL settings", ", ".join(f"{k} {v}" for k, v in pg.items())))
    for name, value in result.get("pg_rows_read_per_item", {}).items():
        rows.append((f"  rows read per item, {name}", f"{value:.0f}"))
    if tables := result.get("pg_rows_read_per_item_by_table"):
        top = ", ".join(f"{name} {value:.0f}" for name, value in tables.items())
        rows.append(("  rows read per item, top tables", top))
    rows += [
        (
            "  worker side peak memory: sum RSS / sum PSS",
            f"{result['worker_peak_rss_sum_mib']:.0f} MiB (shared pages counted per process) / "
            f"{result['worker_peak_pss_sum_mib']:.0f} MiB (real total)",
        ),
        (
            f"  peer loop ({peer['items']} entries, same simulators)",
            f"{peer['items_per_s']:.1f} items/s, {result['peer_wall_for_n_s']:.0f} s for "
            f"{n:,} (extrapolated); ours / peer = {result['ours_over_peer']:.2f}",
        ),
        *floor_rows(result),
    ]
    return rows


def floor_rows(result: dict) -> list[tuple[str, str]]:
    """The same I/O without the framework (``benchmarks.floor``): its wall against its latency
    floor, and the CPU per item ours spends against its."""
    floor = result.get("floor")
    if not floor:  # a result written before the floor was measured
        return []
    return [
        (
            f"  same I/O, no framework ({floor['items']:,} items, benchmarks/floor.py)",
            f"{floor['wall_s']:.1f} s, wall/floor = {floor['ratio_to_target_floor']:.2f}; "
            f"CPU {floor['cpu_ms_per_item']:.1f} ms per item ({floor['kernel_ms_per_item']:.1f} "
            f"kernel) for {floor['calls_per_item']} calls and "
            f"{floor['statements_per_item']:.0f} statements; ours / floor = "
            f"{result['ours_over_floor_cpu']:.1f}",
        )
    ]


def cores_floor_rows(result: dict) -> list[tuple[str, str]]:
    """The wall the machine's cores allow: every process's CPU per item on this machine (the
    worker side, the web side, the simulators, the bench's polling, the database and broker
    servers) times N, over the cores. A run near it is bound by CPU, not by its latency."""
    if not result.get("cores"):
        return []
    per_item = (
        result["worker_cpu_ms_per_item"]
        + result["web_cpu_ms_per_item"]
        + result.get("simulators_cpu_ms_per_item", 0.0)
        + result.get("bench_loop_cpu_ms_per_item", 0.0)
        + sum(result.get("services_cpu_ms_per_item", {}).values())
    )
    floor = per_item * result["items"] / 1000 / result["cores"]
    return [
        (
            "  floor of the cores: all CPU per item x N / cores",
            f"{per_item:.1f} ms x {result['items']:,} / {result['cores']} = {floor:.1f} s, "
            f"wall/floor = {result['wall_s'] / floor:.2f}",
        )
    ]


def cpu_by_process(result: dict) -> str:
    """The item workers' CPU each (its kernel part in brackets), and the rest of the
    clusters' processes (sentinels, monitors, pushers) together."""
    processes = result.get("worker_cpu_by_process", [])
    workers = [p for p in processes if p["threads"] > 8]  # item places: a thread each
    rest = sum(p["cpu_ms_per_item"] for p in processes if p not in workers)
    each = " + ".join(
        f"{p['cpu_ms_per_item']:.1f} ({p['system_ms_per_item']:.1f})" for p in workers
    )
    return f"item workers {each} ms (kernel); the cluster's other processes {rest:.2f} ms"


def inline_rows(inline: dict, waits: dict | None) -> list[tuple[str, str]]:
    """The in-process rows: without latency, and (``waits``) as many items with every answer
    after L: one item after another either way, so the CPU per item the waits add is what
    waiting itself costs on this machine, not contention."""
    rows = [
        (
            f"inline: {inline['items']} items, no latency",
            f"{inline['items_per_s']:.1f} items/s, p50 {inline['p50_ms']:.0f} ms, "
            f"p95 {inline['p95_ms']:.0f} ms",
        ),
        (
            "inline: CPU per item, worker (whole process)",
            f"{inline['worker_cpu_ms_per_item']:.1f} ms ({inline['cpu_ms_per_item']:.1f} ms)",
        ),
        ("inline: SQL statements per item", f"{inline['sql_per_item']:.1f}"),
        ("inline: HTTP calls per item", f"{inline['http_calls_per_item']:.1f}"),
    ]
    if waits:
        extra = waits["worker_cpu_ms_per_item"] - inline["worker_cpu_ms_per_item"]
        rows += [
            (
                f"inline: {waits['items']} items, L = {waits['latency_ms']:.0f} ms on every answer",
                f"{waits['items_per_s']:.1f} items/s, p50 {waits['p50_ms']:.0f} ms; "
                f"SQL {waits['sql_per_item']:.1f}, HTTP calls {waits['http_calls_per_item']:.1f}"
                " per item",
            ),
            (
                "inline with waits: CPU per item, worker (whole process)",
                f"{waits['worker_cpu_ms_per_item']:.1f} ms ({waits['cpu_ms_per_item']:.1f} ms): "
                f"{extra:+.1f} ms beside no latency",
            ),
        ]
    return rows


def table(results: dict) -> str:
    inline = results["inline"]
    rows = [
        (
            "load average (1 min) at start / end",
            f"{results['load_average']:.2f} / {results['load_average_end']:.2f}",
        ),
        ("alias table", f"{results['aliases']['ids_per_s']:,.0f} ids/s"),
        ("derive_run_state, 10,000 items", f"{results['run_state']['ms']:.1f} ms"),
        *inline_rows(inline, results.get("inline_waits")),
    ]
    for result in results["clusters"]:
        rows += scenario_rows(result)
    if results.get("skipped"):
        rows.append(("skipped", results["skipped"]))
    if "read_side" in results:
        from benchmarks.read_side import table_rows

        rows += table_rows(results["read_side"])
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a short subset (about 2 minutes)")
    parser.add_argument("--big", action="store_true", help="add the 10,000-entry run")
    parser.add_argument("--items", type=int, help="entries in the N=1,000 cluster runs")
    parser.add_argument("--latency", type=float, default=LATENCY, help="seconds per answer")
    parser.add_argument("--upstreams", type=int, default=UPSTREAMS)
    parser.add_argument("--output", default=str(ROOT / "var" / "bench.json"))
    parser.add_argument(
        "--read-db",
        default=os.environ.get("DATABASE_URL", ""),
        help="database of the read-side and PostgreSQL scenarios (default: DATABASE_URL, "
        "else SQLite; the PostgreSQL + Redis scenarios need it to be PostgreSQL)",
    )
    parser.add_argument(
        "--redis", default="redis://127.0.0.1:6379", help="Redis of the PostgreSQL scenarios"
    )
    parser.add_argument("--read-items", type=int, help="items of the read-side run")
    args = parser.parse_args()
    read_items = args.read_items or (10_000 if args.quick else 100_000)
    started = time.perf_counter()
    load_average = os.getloadavg()[0]
    shell_env = dict(os.environ)  # before setup_django points this process at its SQLite file
    pg_url = args.read_db if args.read_db.startswith(("postgres", "pgsql")) else ""
    redis_url = free_redis_db(args.redis) if pg_url else None
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(Path(tmp) / "bench.sqlite3")
        results = {
            "load_average": load_average,
            "aliases": bench_aliases(),
            "run_state": bench_run_state(),
            "inline": bench_inline(20 if args.quick else 50),
            "inline_waits": bench_inline(20 if args.quick else 50, latency=args.latency),
            "clusters": [
                bench_scenario(label, shell_env, *options)
                for label, options in scenarios(args, pg_url, redis_url)
            ],
            "read_side": bench_read_side(
                args.read_db, read_items, 10 if args.quick else 40, shell_env
            ),
        }
    if not (pg_url and redis_url):
        results["skipped"] = "PostgreSQL + Redis scenarios: no PostgreSQL --read-db or no Redis"
    results["load_average_end"] = os.getloadavg()[0]
    results["bench_s"] = time.perf_counter() - started
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2))
    print(table(results))
    print(f"{results['bench_s']:.0f} s; written to {output}")


if __name__ == "__main__":
    main()
