"""The bench's in-process rows: beside the run without latency, as many items with every
answer after L, and the CPU per item that waiting added."""

from __future__ import annotations

from benchmarks.run import inline_rows


def _inline(worker_cpu: float, latency_ms: float = 0.0) -> dict:
    return {
        "items": 30,
        "latency_ms": latency_ms,
        "items_per_s": 2.0,
        "p50_ms": 500.0,
        "p95_ms": 520.0,
        "cpu_ms_per_item": worker_cpu + 4.0,
        "worker_cpu_ms_per_item": worker_cpu,
        "sql_per_item": 31.2,
        "http_calls_per_item": 10.9,
    }


def test_the_run_with_waits_shows_the_cpu_per_item_waiting_added():
    rows = dict(inline_rows(_inline(10.2), _inline(15.4, latency_ms=50.0)))

    assert rows["inline: 30 items, L = 50 ms on every answer"].endswith(
        "SQL 31.2, HTTP calls 10.9 per item"
    )
    assert rows["inline with waits: CPU per item, worker (whole process)"] == (
        "15.4 ms (19.4 ms): +5.2 ms beside no latency"
    )


def test_without_the_run_with_waits_only_the_rows_without_latency_are_printed():
    rows = inline_rows(_inline(10.2), None)

    assert [name for name, _ in rows] == [
        "inline: 30 items, no latency",
        "inline: CPU per item, worker (whole process)",
        "inline: SQL statements per item",
        "inline: HTTP calls per item",
    ]
