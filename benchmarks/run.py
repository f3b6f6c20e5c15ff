"""Benchmarks: ``make bench`` (or ``python -m benchmarks.run [--items N]``) prints the figures.

- alias normalisation throughput (model ids per second);
- derive_run_state over a 10 000-item run (milliseconds);
- the whole pipeline against the loopback simulators: items per second through one worker
  thread, per-item latency (p50/p95), and the process's peak resident memory.
It uses its own throw-away SQLite file, never the demo's or a real database.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path


def setup_django(db_path: Path) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="relay_project.settings",
        DEBUG="1",
        DATABASE_URL=f"sqlite:///{db_path}",
        RELAY_ALLOW_INSECURE_UPSTREAMS="1",
        RELAY_RETRY_BASE_DELAY="0.05",
        RELAY_RETRY_MAX_DELAY="0.2",
    )
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def bench_aliases() -> str:
    from probe.aliases import build_alias_table
    from tests.probe.test_aliases import ALL_IDS  # the real-world id table of the tests

    ids = list(ALL_IDS) * 20
    started = time.perf_counter()
    build_alias_table(ids)
    elapsed = time.perf_counter() - started
    return (
        f"alias table: {len(ids)} ids in {elapsed * 1000:.1f} ms ({len(ids) / elapsed:,.0f} ids/s)"
    )


def bench_run_state() -> str:
    from batch_import.run_state import ItemSnapshot, derive_run_state

    items = [ItemSnapshot("done", "confirmed", "active") for _ in range(10_000)]
    started = time.perf_counter()
    derive_run_state(items, mode="partial")
    return f"derive_run_state: 10000 items in {(time.perf_counter() - started) * 1000:.2f} ms"


def bench_pipeline(count: int) -> list[str]:
    from batch_import.requests import validate_run_request
    from batch_import.services import run_start
    from batch_import.stages import StageContext
    from batch_import.tasks import advance_item
    from hosts.services import register_host
    from hosts.simulator import HostSimulator
    from probe.simulator import UpstreamConfig, UpstreamSimulator

    host_sim = HostSimulator().start()
    upstream = UpstreamSimulator(UpstreamConfig(name="bench", models=["kimi-k2.6"], api_key=None))
    upstream.start()
    try:
        host = register_host(
            name="bench",
            base_url=host_sim.url,
            auth_type="admin_api_key",
            admin_credential=host_sim.admin_key,
        )
        request = validate_run_request(
            {
                "host_id": host.pk,
                "mode": "partial",
                "access_mode": "subscription",
                "subscription_users": ["bench@example.com"],
                "subscription_days": 30,
                "entries": [
                    {"base_url": upstream.base_url, "api_key": f"sk-{n:05d}"} for n in range(count)
                ],
            }
        )
        run = run_start(request=request).run
        context = StageContext(worker_id="bench")
        latencies = []
        started = time.perf_counter()
        for item_id in run.items.values_list("item_id", flat=True):
            one = time.perf_counter()
            advance_item(item_id, worker_id="bench", context=context)
            latencies.append(time.perf_counter() - one)
        elapsed = time.perf_counter() - started
        run.refresh_from_db()
    finally:
        host_sim.stop()
        upstream.stop()
    p95 = sorted(latencies)[int(len(latencies) * 0.95) - 1]
    return [
        f"pipeline: {count} items in {elapsed:.2f} s ({count / elapsed:.1f} items/s, one worker)",
        f"per item: p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms",
        f"run state: {run.state}, active {run.active_items}/{run.total_items}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(Path(tmp) / "bench.sqlite3")
        lines = [bench_aliases(), bench_run_state(), *bench_pipeline(args.items)]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines.append(f"peak RSS: {peak_mb:.0f} MiB")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
