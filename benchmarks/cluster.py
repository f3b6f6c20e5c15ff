"""One cluster scenario of ``make bench``, in a process of its own (its own database and
broker): ``python -m benchmarks.cluster --items 1000 --output result.json``.

Real qclusters (``benchmarks.instrumented``, ``qcluster`` with a trace of what each item waited
on: one item in five in runs of 500 entries or more, ``trace_one_in``) work a run of N entries
spread over U upstream simulators while both simulators answer every request after ``L``
seconds. Measured in the one run:

- wall time against the latency floor ``ceil(N / C) × path × L`` (C = items in flight), for
  the issue's target path of 10 round trips and for the path measured per item;
- the worker side's CPU (every process of every cluster, from ``/proc``) and the web side's
  (``run_start`` in this thread): ms per item;
- SQL statements per item (worker side, counted in its processes; web side);
- on PostgreSQL, rows read per item (``pg_stat_database`` and ``pg_stat_user_tables``);
- peak memory of the whole worker side: the sum of RSS (counts the pages forked processes
  share once per process) and the sum of PSS (each shared page split between its sharers);
- the naive peer loop over the same simulators and latency;
- the same I/O without the framework (``benchmarks.floor``), in as many processes × threads.

On PostgreSQL the run goes into a database of its own (``<name>_bench_cluster_<pid>``), created
afresh and dropped at the end, like the read side's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import trace
from benchmarks.read_side import _own_database

ROOT = Path(__file__).resolve().parents[1]
TARGET_PATH = 10  # round trips on an item's critical path the design aims for (issue #17)
# Runs of TRACE_SAMPLED_FROM entries or more trace one item in TRACE_ONE_IN (trace_one_in).
TRACE_ONE_IN = 5
TRACE_SAMPLED_FROM = 500


def deployed_settings() -> dict[str, str]:
    """Settings of a deployment, as the bench's processes run: DEBUG off (with it on, Django
    keeps the last 9,000 statements of every connection and formats each one: memory that
    grows with the run and CPU no deployment spends), with a secret key and an encryption key
    of this bench's own."""
    from cryptography.fernet import Fernet

    return {
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "RELAY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }


def setup_django(database_url: str, redis_url: str, var_dir: Path) -> None:
    os.environ.pop("DATABASE_URL_FILE", None)
    os.environ.pop("REDIS_URL_FILE", None)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="relay_project.settings",
        **deployed_settings(),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        RELAY_ALLOW_INSECURE_UPSTREAMS="1",
        RELAY_RETRY_BASE_DELAY="0.05",
        RELAY_RETRY_MAX_DELAY="0.2",
        RELAY_Q_NAME=f"relay-bench-{os.getpid()}",
        RELAY_VAR_DIR=str(var_dir),
        # Import throughput only: no after-import reconcile competing for the workers.
        RELAY_AFTER_RUN_TASK="",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


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


def register(sims: Simulators, label: str):
    from hosts.models import Host
    from hosts.services import register_host

    return Host.objects.filter(name=label).first() or register_host(
        name=label,
        base_url=sims.host.url,
        auth_type="admin_api_key",
        admin_credential=sims.host.admin_key,
    )


def run_request(sims: Simulators, host, count: int, label: str):
    from batch_import.run_requests import validate_run_request

    return validate_run_request(
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


class StatementCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


# --- the worker side seen from /proc -----------------------------------------------------------
def descendants(roots: list[int]) -> list[int]:
    """The roots and every process below them, from each thread's ``children`` list (reading
    every process's ``stat`` cost this loop ~5 ms a poll on a busy machine)."""
    found, frontier = [], list(roots)
    while frontier:
        pid = frontier.pop()
        found.append(pid)
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                frontier.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:
                continue
    return found


def proc_stat(path: Path) -> tuple[str, list[str]] | None:
    """A process's ``/proc/<pid>/stat``: its name and the fields after it (``fields[11]`` and
    ``[12]`` its user and system CPU, ``[13:15]`` its ended children's); None once it is gone."""
    try:
        name, rest = path.read_text().split("(", 1)[1].rsplit(")", 1)
    except (OSError, ValueError):
        return None
    return name, rest.split()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the live processes used so far."""
    ticks = 0
    for pid in pids:
        if stat := proc_stat(Path(f"/proc/{pid}/stat")):
            fields = stat[1]
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


# This machine's service processes whose CPU the bench reports beside the control plane's:
# the database's and the broker's, when they run here (``comm`` names).
SERVICES = {"postgres": "PostgreSQL", "redis-server": "Redis"}


def services_cpu_seconds(proc: Path = Path("/proc")) -> dict[str, float]:
    """User + system CPU so far of every process of this machine named like a service, with
    their children that ended (a closed connection's PostgreSQL backend, reaped by the
    postmaster): whatever else uses the services on this machine counts too."""
    ticks = dict.fromkeys(SERVICES, 0)
    for entry in proc.iterdir():
        stat = proc_stat(entry / "stat") if entry.name.isdigit() else None
        if stat and stat[0] in ticks:
            ticks[stat[0]] += sum(int(f) for f in stat[1][11:15])  # utime stime cutime cstime
    return {SERVICES[name]: n / os.sysconf("SC_CLK_TCK") for name, n in ticks.items()}


class CpuByProcess:
    """Each process's CPU over the run and the most threads it had: tells the cluster's worker
    processes (many item threads) from its sentinel, monitor and pusher (one or two)."""

    def __init__(self) -> None:
        self.first: dict[int, tuple[int, int]] = {}
        self.last: dict[int, tuple[int, int]] = {}
        self.threads: dict[int, int] = {}
        self.parent: dict[int, int] = {}

    def poll(self, pids: list[int]) -> None:
        for pid in pids:
            if (stat := proc_stat(Path(f"/proc/{pid}/stat"))) is None:
                continue
            fields = stat[1]
            ticks = (int(fields[11]), int(fields[12]))  # utime, stime
            self.first.setdefault(pid, ticks)
            self.last[pid] = ticks
            self.parent[pid] = int(fields[1])
            self.threads[pid] = max(self.threads.get(pid, 0), int(fields[17]))

    def per_item_ms(self, n: int) -> list[dict]:
        """Heaviest first: pid, parent, peak threads, CPU ms per item (and of it in the
        kernel: system calls, and the futex waits and wake-ups of threads taking turns at
        the GIL)."""
        per_item_ms = 1000 / os.sysconf("SC_CLK_TCK") / n
        rows = []
        for pid, (user, system) in self.last.items():
            user0, system0 = self.first[pid]
            rows.append(
                {
                    "pid": pid,
                    "parent": self.parent[pid],
                    "threads": self.threads[pid],
                    "cpu_ms_per_item": (user - user0 + system - system0) * per_item_ms,
                    "system_ms_per_item": (system - system0) * per_item_ms,
                }
            )
        return sorted(rows, key=lambda row: -row["cpu_ms_per_item"])


def memory_mib(pids: list[int], field: str) -> float:
    """Sum of ``field`` over the processes: ``Rss`` from ``status`` (VmRSS, cheap), ``Pss``
    from ``smaps_rollup`` (the kernel walks every mapping for it)."""
    source, prefix = ("status", "VmRSS:") if field == "Rss" else ("smaps_rollup", f"{field}:")
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
                if line.startswith(prefix):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total / 1024


# --- PostgreSQL's own counters -----------------------------------------------------------------
def pg_settings() -> dict[str, str] | None:
    """The server settings that change how an item's database time grows with the run: with
    autovacuum off nothing removes the dead versions every item update leaves (the items
    table's updates change indexed columns, so none is a heap-only update)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, setting FROM pg_settings "
            "WHERE name IN ('autovacuum', 'synchronous_commit') ORDER BY name"
        )
        return dict(cursor.fetchall())


def pg_rows_read() -> dict[str, int] | None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT tup_returned, tup_fetched FROM pg_stat_database "
            "WHERE datname = current_database()"
        )
        returned, fetched = cursor.fetchone()
        cursor.execute(
            "SELECT coalesce(sum(seq_tup_read), 0), coalesce(sum(idx_tup_fetch), 0) "
            "FROM pg_stat_user_tables"
        )
        seq, idx = cursor.fetchone()
        cursor.execute(
            "SELECT relname, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
            "FROM pg_stat_user_tables"
        )
        tables = {f"table {name}": int(rows) for name, rows in cursor.fetchall()}
    return {
        "tup_returned": int(returned),
        "tup_fetched": int(fetched),
        "seq_tup_read": int(seq),
        "idx_tup_fetch": int(idx),
        **tables,
    }


# --- the scenario ------------------------------------------------------------------------------
def start_clusters(count: int, env: dict) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(  # noqa: S603 - our own module
            # The command deployments run (the sentinel in its own process, its grace).
            [sys.executable, "-m", "benchmarks.instrumented", "run_workers", "--grace", "30"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(count)
    ]


def stop_clusters(clusters: list[subprocess.Popen]) -> None:
    started = descendants([cluster.pid for cluster in clusters])
    for cluster in clusters:
        cluster.send_signal(signal.SIGTERM)  # the sentinel stops its cluster in order
    for cluster in clusters:
        with contextlib.suppress(subprocess.TimeoutExpired):
            cluster.wait(timeout=40)
        if cluster.poll() is None:
            cluster.kill()
    sentinels = {cluster.pid for cluster in clusters}
    for pid in started:  # a cluster's children are in groups of their own: each by its pid
        if pid not in sentinels:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def trace_one_in(items: int) -> int:
    """The trace writes down one item in this many (``benchmarks.instrumented``): each item
    traced costs the worker side about 1 ms of the CPU the scenario measures
    (docs/performance.md), so runs of ``TRACE_SAMPLED_FROM`` entries or more trace one in
    ``TRACE_ONE_IN`` (200 of 1,000: enough for the path and split); smaller runs every item."""
    return TRACE_ONE_IN if items >= TRACE_SAMPLED_FROM else 1


def knobs_of(args: argparse.Namespace) -> dict[str, str]:
    """The bounds an operator running C items in flight over U upstreams would set; the web
    side (``run_start`` here) reads them too: it cuts the run into tasks of
    RELAY_ITEMS_PER_WORKER items."""
    in_flight = args.clusters * args.workers * args.items_per_worker
    return {
        "RELAY_CONCURRENCY": str(args.workers),
        "RELAY_ITEMS_PER_WORKER": str(args.items_per_worker),
        "RELAY_HOST_CONCURRENCY": str(args.host_concurrency or in_flight),
        "RELAY_UPSTREAM_CONCURRENCY": str(
            args.upstream_concurrency or math.ceil(in_flight / args.upstreams)
        ),
    }


def bench_cluster(args: argparse.Namespace, trace_dir: Path) -> dict:
    from django.db import close_old_connections, connection

    from batch_import.models import ImportRun
    from batch_import.services import run_start

    in_flight = args.clusters * args.workers * args.items_per_worker
    knobs = knobs_of(args)
    one_in = args.trace_one_in or trace_one_in(args.items)
    env = {**os.environ, "BENCH_TRACE_DIR": str(trace_dir), "BENCH_TRACE_ONE_IN": str(one_in)}
    sims = Simulators(upstreams=args.upstreams, latency=args.latency)
    host = register(sims, "cluster")
    request = run_request(sims, host, args.items, "cluster")
    clusters = start_clusters(args.clusters, env)
    roots = [cluster.pid for cluster in clusters]
    peak_rss = peak_pss = 0.0
    try:
        time.sleep(4)  # the clusters' workers start before the clock does
        rows_before = pg_rows_read()
        cpu_before = cpu_seconds(descendants(roots))
        by_process = CpuByProcess()
        by_process.poll(descendants(roots))
        services_before = services_cpu_seconds()
        sims_cpu = time.process_time()  # this process: the simulators' threads, mostly
        loop_cpu = time.thread_time()  # this thread: run_start, then polling the run
        counter = StatementCounter()
        started_wall = time.time()
        started = time.perf_counter()
        web_cpu = time.thread_time()
        with connection.execute_wrapper(counter):
            run = run_start(request=request).run
        web_cpu = time.thread_time() - web_cpu
        run_state = ImportRun.objects.filter(pk=run.pk).values_list("state", flat=True)
        last_pss = 0.0
        while True:
            pids = descendants(roots)
            by_process.poll(pids)
            peak_rss = max(peak_rss, memory_mib(pids, "Rss"))
            if time.perf_counter() - last_pss > 1:
                peak_pss, last_pss = max(peak_pss, memory_mib(pids, "Pss")), time.perf_counter()
            close_old_connections()
            # The state alone: a run read whole comes with its counts, summed from their
            # shards (≈ 7 ms of this loop's CPU a poll, taken from the cores the run uses).
            state = run_state.get()
            if state in ImportRun.TERMINAL_STATES:
                break
            if time.perf_counter() - started > 120 + args.items * 1.5:
                raise SystemExit(f"the cluster run did not finish: {state}")
            time.sleep(0.25)
        polled = time.perf_counter() - started
        run.refresh_from_db()
        elapsed = run_wall(run, started_wall, polled=polled)
        cpu = cpu_seconds(descendants(roots)) - cpu_before
        services = services_cpu_seconds()
        by_process.poll(descendants(roots))
        sims_cpu = time.process_time() - sims_cpu
        loop_cpu = time.thread_time() - loop_cpu
        time.sleep(1.5)  # the processes' totals are written every second; PostgreSQL's
        totals = trace.read_totals(trace_dir)  # statistics are flushed about as often
        rows_after = pg_rows_read()
    finally:
        stop_clusters(clusters)
    peer = bench_peer(sims, min(args.items, args.peer_items), args.latency)
    floor = bench_floor(sims, args)
    host_port = _port(sims.host.url)
    sims.stop()
    traced = trace.analyse(
        trace.read_records(trace_dir),
        totals,
        host_port=host_port,
        started=started_wall,
        wall=elapsed,
        in_flight=in_flight,
    )
    n = args.items
    floor_target = math.ceil(n / in_flight) * TARGET_PATH * args.latency
    path = traced.get("path_p50") or 0
    floor_measured = math.ceil(n / in_flight) * path * args.latency
    result = {
        "label": args.label,
        "database": connection.vendor,
        "broker": "redis" if args.redis_url else "orm",
        "clusters": args.clusters,
        "items": n,
        "upstreams": args.upstreams,
        "latency_ms": args.latency * 1000,
        "workers": args.workers,
        "items_per_worker": args.items_per_worker,
        "in_flight": in_flight,
        "cores": len(os.sched_getaffinity(0)),
        "knobs": knobs,
        "wall_s": elapsed,
        "floor_target_s": floor_target,
        "ratio_to_target_floor": elapsed / floor_target if floor_target else None,
        "floor_measured_path_s": floor_measured,
        "ratio_to_measured_floor": elapsed / floor_measured if floor_measured else None,
        "items_per_s": n / elapsed,
        "worker_cpu_ms_per_item": cpu / n * 1000,
        "web_cpu_ms_per_item": web_cpu / n * 1000,
        "worker_cpu_by_process": by_process.per_item_ms(n),
        # The bench process's CPU over the run but for this thread (run_start, then this
        # loop): the simulators' threads answering.
        "simulators_cpu_ms_per_item": (sims_cpu - loop_cpu) / n * 1000,
        # This loop polling the run and /proc: CPU on the same cores the control plane did
        # not use either.
        "bench_loop_cpu_ms_per_item": (loop_cpu - web_cpu) / n * 1000,
        # The database and broker servers on this machine (all their processes), when the
        # run uses them: cores the control plane shares with them.
        "services_cpu_ms_per_item": {
            name: (services[name] - services_before[name]) / n * 1000
            for name, used in (
                ("PostgreSQL", connection.vendor == "postgresql"),
                ("Redis", bool(args.redis_url)),
            )
            if used
        },
        "worker_sql_per_item": totals["sql_item"] / n,
        "worker_sql_other_per_item": totals["sql_other"] / n,
        "web_sql_per_item": counter.count / n,
        "worker_peak_rss_sum_mib": peak_rss,
        "worker_peak_pss_sum_mib": peak_pss,
        "state": run.state,
        "active": run.active_items,
        "not_active": not_active(run),
        "trace": traced,
        "trace_one_in": one_in,
        "peer": peer,
        "peer_wall_for_n_s": n / peer["items_per_s"],
        "ours_over_peer": (n / elapsed) / peer["items_per_s"],
        "floor": floor,
        "ours_over_floor_cpu": (cpu / n * 1000) / floor["cpu_ms_per_item"],
    }
    if server := pg_settings():
        result["pg_settings"] = server
    if rows_before and rows_after:
        delta = {k: rows_after[k] - rows_before[k] for k in rows_before}
        result["pg_rows_read_per_item"] = {
            "database (tup_returned + tup_fetched)": (delta["tup_returned"] + delta["tup_fetched"])
            / n,
            "user tables (seq_tup_read + idx_tup_fetch)": (
                delta["seq_tup_read"] + delta["idx_tup_fetch"]
            )
            / n,
        }
        tables = sorted(
            ((k, v) for k, v in delta.items() if k.startswith("table ")), key=lambda kv: -kv[1]
        )
        result["pg_rows_read_per_item_by_table"] = {k[6:]: v / n for k, v in tables[:5]}
    return result


def run_wall(run, started_wall: float, *, polled: float) -> float:
    """The run's wall: from the request to the moment its end was written (``finished_at``,
    the same machine's clock), not to the poll that saw it, up to 0.25 s later. What the
    poll measured where the run has no end written."""
    if run.finished_at is None:
        return polled
    return min(polled, max(0.0, run.finished_at.timestamp() - started_wall))


def not_active(run) -> list[dict]:
    """The run's items whose verdict is not active (a few), with why: the stage they ended in,
    their verdict and their last error (as the pages show it)."""
    from batch_import.models import ImportRunItem

    items = run.items.exclude(access_status=ImportRunItem.AccessStatus.ACTIVE).order_by("position")
    return [
        {
            "position": item.position,
            "stage_ended": item.current_stage,
            "access": item.access_status,
            "confirmation": item.confirmation_status,
            "error": item.last_error,
        }
        for item in items.only(
            "position", "current_stage", "access_status", "confirmation_status", "last_error"
        )[:5]
    ]


def _port(url: str) -> int:
    from urllib.parse import urlsplit

    return urlsplit(url).port


def bench_peer(sims: Simulators, count: int, latency: float) -> dict:
    """The naive loop an operator could write: for each entry, list the models and send one
    chat, one after another, over the same upstream simulators and latency."""
    import httpx

    started = time.perf_counter()
    with httpx.Client(timeout=30) as client:
        for n in range(count):
            base = sims.upstreams[n % len(sims.upstreams)].base_url
            headers = {"Authorization": f"Bearer sk-peer-{n}"}
            client.get(f"{base}/models", headers=headers).raise_for_status()
            client.post(
                f"{base}/chat/completions",
                headers=headers,
                json={"model": "kimi-k2.6", "messages": [{"role": "user", "content": "hi"}]},
            ).raise_for_status()
    elapsed = time.perf_counter() - started
    return {"items": count, "wall_s": elapsed, "items_per_s": count / elapsed}


FLOOR_ITEMS = 1_000  # its figures per item are flat in N: 10,000 would add a minute


def bench_floor(sims: Simulators, args: argparse.Namespace) -> dict:
    """``benchmarks.floor`` over the same simulators, in the scenario's database (SQLite: a
    file of its own beside it), with as many processes × threads as the clusters run items;
    its latency floor for the target path beside its wall."""
    from django.db import connection

    url = os.environ["DATABASE_URL"]
    if connection.vendor == "sqlite":
        url = f"sqlite:///{Path(os.environ['RELAY_VAR_DIR']) / 'floor.sqlite3'}"
    items = min(args.items, FLOOR_ITEMS)
    command = [sys.executable, "-m", "benchmarks.floor", "--database-url", url]
    command += ["--items", str(items), "--processes", str(args.clusters * args.workers)]
    command += ["--threads", str(args.items_per_worker)]
    for upstream in sims.upstreams:
        command += ["--upstream", upstream.base_url]
    answer = subprocess.run(  # noqa: S603 - our own module
        command, cwd=ROOT, check=True, capture_output=True, text=True
    )
    floor = json.loads(answer.stdout)
    in_flight = args.clusters * args.workers * args.items_per_worker
    target = math.ceil(items / in_flight) * TARGET_PATH * args.latency
    return {**floor, "floor_target_s": target, "ratio_to_target_floor": floor["wall_s"] / target}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--label", default="cluster")
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    parser.add_argument("--redis-url", default="", help="Redis broker (default: ORM broker)")
    parser.add_argument("--clusters", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="RELAY_CONCURRENCY per cluster")
    parser.add_argument("--items-per-worker", type=int, default=32)
    parser.add_argument("--host-concurrency", type=int, help="default: items in flight")
    parser.add_argument("--upstream-concurrency", type=int, help="default: in flight / upstreams")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--upstreams", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--peer-items", type=int, default=50)
    parser.add_argument("--output", required=True)
    parser.add_argument(
        "--trace-one-in", type=int, help="trace one item in this many (default: trace_one_in)"
    )
    parser.add_argument("--keep-trace", help="copy the workers' trace records to this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        trace_dir = Path(tmp) / "trace"
        trace_dir.mkdir()
        os.environ.update(knobs_of(args))
        with _own_database(url, suffix="_bench_cluster") as own:
            setup_django(own, args.redis_url, Path(tmp))
            result = bench_cluster(args, trace_dir)
            if args.keep_trace:
                shutil.copytree(trace_dir, args.keep_trace, dirs_exist_ok=True)
            from django.db import connections

            connections.close_all()
    if args.redis_url:
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()  # the db run.py chose empty
    Path(args.output).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
