"""Benchmarks: ``make bench`` (``QUICK=1`` for a short subset) prints one table and writes
``var/bench.json``.

- ``aliases`` and ``run_state``: pure-Python hot spots (ids per second, ms per 10,000 items).
- ``inline``: the pipeline in this process, one item after another, no latency: CPU and SQL
  statements per item (the control plane's own cost, simulators excluded as far as they run in
  threads of this process: their share is small at these sizes).
- ``cluster``: the product as deployed on one machine: a real qcluster (``run_workers``, ORM
  broker, SQLite) works a run of N entries spread over U upstreams while both simulators answer
  every request after ``L`` seconds. Wall time is compared with the latency floor
  ``ceil(N / C) × path × L`` for the issue's target path of 10 round trips, C = items in flight;
  the worker side's CPU (all its processes) and peak resident memory (sum over them) are
  measured from the operating system.
- ``peer``: the naive sequential loop an operator could write (``GET /v1/models`` and one chat
  per entry against the same latency): what relay-manager has to beat.
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
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_PATH = 10  # round trips on an item's critical path the design aims for (issue #17)


def setup_django(db_path: Path) -> None:
    for name in ("REDIS_URL", "DATABASE_URL_FILE"):
        os.environ.pop(name, None)  # the bench is SQLite + ORM broker, whatever the shell says
    os.environ.update(
        DJANGO_SETTINGS_MODULE="relay_project.settings",
        DEBUG="1",
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
class Simulators:
    """One host simulator and ``upstreams`` upstream simulators, all answering after ``latency``."""

    def __init__(self, upstreams: int, latency: float) -> None:
        from hosts.simulator import HostSimulator
        from probe.simulator import UpstreamConfig, UpstreamSimulator

        self.host = HostSimulator().start()
        if latency:
            self.host.fail_next("*", "/", count=10**9, status=None, delay=latency)
        self.upstreams = [
            UpstreamSimulator(
                UpstreamConfig(
                    name=f"bench-{n}", models=["kimi-k2.6"], api_key=None, latency=latency
                )
            ).start()
            for n in range(upstreams)
        ]

    def requests(self) -> int:
        return len(self.host.requests) + sum(len(u.requests) for u in self.upstreams)

    def stop(self) -> None:
        self.host.stop()
        for upstream in self.upstreams:
            upstream.stop()


def start_run(sims: Simulators, count: int, label: str):
    from batch_import.run_requests import validate_run_request
    from batch_import.services import run_start
    from hosts.models import Host
    from hosts.services import register_host

    host = Host.objects.filter(name=label).first() or register_host(
        name=label,
        base_url=sims.host.url,
        auth_type="admin_api_key",
        admin_credential=sims.host.admin_key,
    )
    request = validate_run_request(
        {
            "host_id": host.pk,
            "mode": "partial",
            "access_mode": "subscription",
            "subscription_users": [f"{label}@example.com"],
            "subscription_days": 30,
            "entries": [
                {
                    "base_url": sims.upstreams[n % len(sims.upstreams)].base_url,
                    "api_key": f"sk-{label}-{n:05d}",
                }
                for n in range(count)
            ],
        }
    )
    return run_start(request=request).run


class StatementCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def bench_inline(count: int) -> dict:
    """One item after another in this process, no latency: the control plane's own cost."""
    from django.db import connection

    from batch_import.stages import StageContext
    from batch_import.tasks import advance_item

    sims = Simulators(upstreams=1, latency=0.0)
    counter = StatementCounter()
    try:
        run = start_run(sims, count, "inline")
        context = StageContext(worker_id="bench")
        latencies = []
        cpu_started = time.process_time()
        started = time.perf_counter()
        with connection.execute_wrapper(counter):
            for item_id in run.items.values_list("item_id", flat=True):
                one = time.perf_counter()
                advance_item(item_id, worker_id="bench", context=context)
                latencies.append(time.perf_counter() - one)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        calls = sims.requests()
        run.refresh_from_db()
    finally:
        sims.stop()
    return {
        "items": count,
        "wall_s": elapsed,
        "items_per_s": count / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": sorted(latencies)[max(0, math.ceil(len(latencies) * 0.95) - 1)] * 1000,
        "cpu_ms_per_item": cpu / count * 1000,
        "sql_per_item": counter.count / count,
        "http_calls_per_item": calls / count,
        "state": run.state,
        "active": run.active_items,
    }


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        found.append(pid)
        frontier.extend(child for child, parent in parents.items() if parent == pid)
    return found


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the live processes used so far (workers outlive the run)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def bench_cluster(
    count: int, upstreams: int, latency: float, workers: int, items_per_worker: int
) -> dict:
    """A real qcluster works the run; both simulators wait ``latency`` before every answer."""
    from django.db import close_old_connections

    from batch_import.models import ImportRun

    sims = Simulators(upstreams=upstreams, latency=latency)
    env = {
        **os.environ,
        "RELAY_CONCURRENCY": str(workers),
        "RELAY_ITEMS_PER_WORKER": str(items_per_worker),
    }
    in_flight = workers * items_per_worker
    cluster = subprocess.Popen(  # noqa: S603 - our own manage.py
        [sys.executable, str(ROOT / "manage.py"), "run_workers", "--grace", "20"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak_rss = 0.0
    try:
        time.sleep(3)  # the cluster's workers start before the clock does
        calls_before = sims.requests()
        cpu_before = _cpu_seconds(_descendants(cluster.pid))
        started = time.perf_counter()
        run = start_run(sims, count, "cluster")
        while True:
            peak_rss = max(peak_rss, _rss_mib(_descendants(cluster.pid)))
            close_old_connections()
            run.refresh_from_db()
            if run.state in ImportRun.TERMINAL_STATES:
                break
            if time.perf_counter() - started > 60 + count * 2:
                raise SystemExit(f"the cluster run did not finish: {run.state}")
            time.sleep(0.25)
        elapsed = time.perf_counter() - started
        cpu = _cpu_seconds(_descendants(cluster.pid)) - cpu_before
        calls = sims.requests() - calls_before
    finally:
        cluster.send_signal(signal.SIGTERM)
        cluster.wait(timeout=60)
        sims.stop()
    floor = math.ceil(count / in_flight) * TARGET_PATH * latency
    return {
        "items": count,
        "upstreams": upstreams,
        "latency_ms": latency * 1000,
        "workers": workers,
        "in_flight": in_flight,
        "wall_s": elapsed,
        "floor_s": floor,
        "ratio_to_floor": elapsed / floor if floor else None,
        "items_per_s": count / elapsed,
        "http_calls_per_item": calls / count,
        "worker_cpu_ms_per_item": cpu / count * 1000,
        "worker_peak_rss_mib": peak_rss,
        "state": run.state,
        "active": run.active_items,
    }


def bench_peer(count: int, latency: float) -> dict:
    """The naive loop: for each entry, list the models and send one chat, one after another."""
    import httpx

    sims = Simulators(upstreams=1, latency=latency)
    base = sims.upstreams[0].base_url
    try:
        started = time.perf_counter()
        with httpx.Client(timeout=30) as client:
            for n in range(count):
                headers = {"Authorization": f"Bearer sk-peer-{n}"}
                client.get(f"{base}/models", headers=headers).raise_for_status()
                client.post(
                    f"{base}/chat/completions",
                    headers=headers,
                    json={"model": "kimi-k2.6", "messages": [{"role": "user", "content": "hi"}]},
                ).raise_for_status()
        elapsed = time.perf_counter() - started
    finally:
        sims.stop()
    return {"items": count, "wall_s": elapsed, "items_per_s": count / elapsed}


def bench_read_side(database_url: str, items: int, repeat: int, env: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "read_side.json"
        command = [sys.executable, "-m", "benchmarks.read_side", "--items", str(items)]
        command += ["--repeat", str(repeat), "--output", str(output)]
        if database_url:
            command += ["--database-url", database_url]
        subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
        return json.loads(output.read_text())


# --- the table ---------------------------------------------------------------------------------
def table(results: dict) -> str:
    inline, cluster, peer = results["inline"], results["cluster"], results["peer"]
    rows = [
        ("load average (1 min) at start", f"{results['load_average']:.2f}"),
        ("alias table", f"{results['aliases']['ids_per_s']:,.0f} ids/s"),
        ("derive_run_state, 10,000 items", f"{results['run_state']['ms']:.1f} ms"),
        (
            f"inline: {inline['items']} items, no latency",
            f"{inline['items_per_s']:.1f} items/s, p50 {inline['p50_ms']:.0f} ms, "
            f"p95 {inline['p95_ms']:.0f} ms",
        ),
        ("inline: CPU per item (whole process)", f"{inline['cpu_ms_per_item']:.1f} ms"),
        ("inline: SQL statements per item", f"{inline['sql_per_item']:.1f}"),
        ("inline: HTTP calls per item", f"{inline['http_calls_per_item']:.1f}"),
        (
            f"cluster: {cluster['items']} items, {cluster['upstreams']} upstreams, "
            f"L = {cluster['latency_ms']:.0f} ms, C = {cluster['workers']} x "
            f"{cluster['in_flight'] // cluster['workers']}",
            f"{cluster['wall_s']:.1f} s ({cluster['items_per_s']:.1f} items/s), "
            f"{cluster['state']}, active {cluster['active']}/{cluster['items']}",
        ),
        (
            f"cluster: floor ceil(N/C) x {TARGET_PATH} x L",
            f"{cluster['floor_s']:.1f} s, wall/floor = {cluster['ratio_to_floor']:.2f}",
        ),
        ("cluster: HTTP calls per item", f"{cluster['http_calls_per_item']:.1f}"),
        ("cluster: worker CPU per item", f"{cluster['worker_cpu_ms_per_item']:.1f} ms"),
        ("cluster: worker peak RSS (all processes)", f"{cluster['worker_peak_rss_mib']:.0f} MiB"),
        (
            f"peer loop: {peer['items']} items, same latency",
            f"{peer['wall_s']:.1f} s ({peer['items_per_s']:.1f} items/s)",
        ),
        (
            "throughput, cluster / peer loop",
            f"{cluster['items_per_s'] / peer['items_per_s']:.2f}",
        ),
    ]
    if "read_side" in results:
        from benchmarks.read_side import table_rows

        rows += table_rows(results["read_side"])
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a short subset (about a minute)")
    parser.add_argument("--items", type=int, help="entries in the cluster run")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per HTTP answer")
    parser.add_argument("--upstreams", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="RELAY_CONCURRENCY of the cluster")
    parser.add_argument(
        "--items-per-worker", type=int, default=32, help="RELAY_ITEMS_PER_WORKER of the cluster"
    )
    parser.add_argument("--output", default=str(ROOT / "var" / "bench.json"))
    parser.add_argument(
        "--read-db",
        default=os.environ.get("DATABASE_URL", ""),
        help="database of the read-side scenario (default: DATABASE_URL, else SQLite)",
    )
    parser.add_argument("--read-items", type=int, help="items of the read-side run")
    args = parser.parse_args()
    items = args.items or (40 if args.quick else 200)
    read_items = args.read_items or (10_000 if args.quick else 100_000)
    load_average = os.getloadavg()[0]
    shell_env = dict(os.environ)  # before setup_django points this process at its SQLite file
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(Path(tmp) / "bench.sqlite3")
        results = {
            "load_average": load_average,
            "aliases": bench_aliases(),
            "run_state": bench_run_state(),
            "inline": bench_inline(20 if args.quick else 50),
            "cluster": bench_cluster(
                items, args.upstreams, args.latency, args.workers, args.items_per_worker
            ),
            # The peer's time grows linearly: a sample of entries gives its rate.
            "peer": bench_peer(min(items, 20 if args.quick else 50), args.latency),
            "read_side": bench_read_side(
                args.read_db, read_items, 10 if args.quick else 40, shell_env
            ),
        }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2))
    print(table(results))
    print(f"written to {output}")


if __name__ == "__main__":
    main()
