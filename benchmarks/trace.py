"""What the items of a cluster run waited on, from the records ``benchmarks.instrumented``
writes: round trips on each item's critical path, and where its time in a worker went."""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path


def read_records(directory: Path) -> list[dict]:
    records = []
    for path in directory.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:  # a line cut short by a killed process
                continue
    return records


def read_totals(directory: Path) -> dict:
    """What the worker processes counted of every item, traced or not (``*.totals.json``):
    SQL statements run for items and the rest, advances, their seconds, the first start and
    the last end, the outcomes."""
    total = {"sql_item": 0, "sql_other": 0, "advances": 0, "advance_s": 0.0, "outcomes": {}}
    starts, ends = [], []
    for path in directory.glob("*.totals.json"):
        try:
            counts = json.loads(path.read_text())
        except ValueError:
            continue
        for key in ("sql_item", "sql_other", "advances", "advance_s"):
            total[key] += counts.get(key, 0)
        for outcome, count in counts.get("outcomes", {}).items():
            total["outcomes"][outcome] = total["outcomes"].get(outcome, 0) + count
        starts += [counts["first"]] if counts.get("first") is not None else []
        ends += [counts["last"]] if counts.get("last") is not None else []
    total["first"] = min(starts, default=None)
    total["last"] = max(ends, default=None)
    return total


def longest_chain(calls: Iterable[tuple[float, float]]) -> int:
    """The most calls that ran one after another (each starting once the previous one ended):
    the round trips on the item's critical path. Earliest end first is optimal."""
    count, free_at = 0, -math.inf
    for start, end in sorted(calls, key=lambda call: call[1]):
        if start >= free_at:
            count, free_at = count + 1, end
    return count


def split_time(
    spans: list[tuple[float, float]],
    calls: list[tuple[float, float]],
    sleeps: list[tuple[float, float, str]],
    database: list[tuple[float, float]] = (),
) -> dict[str, float]:
    """Seconds of the item's time in a worker (``spans``) spent in an HTTP exchange, else in
    the database (a statement or a commit, waits for a lock included), else asleep (by where),
    else anything else (CPU, waiting for the GIL or a core)."""
    cuts = sorted(
        {t for span in spans for t in span}
        | {t for call in calls for t in call}
        | {t for statement in database for t in statement}
        | {t for sleep in sleeps for t in sleep[:2]}
    )
    out: dict[str, float] = defaultdict(float)
    for left, right in pairwise(cuts):
        middle = (left + right) / 2
        if not any(a <= middle < b for a, b in spans):
            continue
        if any(a <= middle < b for a, b in calls):
            out["http"] += right - left
        elif any(a <= middle < b for a, b in database):
            out["database"] += right - left
        elif where := next((w for a, b, w in sleeps if a <= middle < b), None):
            out[f"sleep {where}"] += right - left
        else:
            out["other"] += right - left
    return dict(out)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * fraction) - 1)] if ordered else 0.0


def analyse(
    records: list[dict],
    totals: dict,
    *,
    host_port: int,
    started: float,
    wall: float,
    in_flight: int,
) -> dict:
    """Per item, from the records of the items traced (``records``): calls, the round trips
    on its path, its time in a worker and where it went. Of all items (``totals``, what
    ``read_totals`` returns): the share of the item places busy, the first start and the last
    end, the advances' outcomes."""
    calls, sleeps, spans = defaultdict(list), defaultdict(list), defaultdict(list)
    database = defaultdict(list)
    host_calls = upstream_calls = 0
    stage_calls: dict[str, int] = defaultdict(int)
    for record in records:
        item = record["item"]
        if record["k"] == "call":
            calls[item].append((record["t0"], record["t1"]))
            if record["port"] == host_port:
                host_calls += 1
            else:
                upstream_calls += 1
            stage_calls[record.get("st") or "?"] += 1
        elif record["k"] == "sleep":
            where = record["at"].rsplit(".", 1)[-1]
            if record.get("st"):
                where += f" ({record['st']})"
            sleeps[item].append((record["t0"], record["t1"], where))
        elif record["k"] == "advance":
            spans[item].append((record["t0"], record["t1"]))
            database[item].extend(map(tuple, record.get("db", ())))
    items = sorted(spans)
    if not items:
        return {"items_traced": 0}
    paths = [longest_chain(calls[item]) for item in items]
    in_worker = [sum(b - a for a, b in spans[item]) for item in items]
    split: dict[str, float] = defaultdict(float)
    for item in items:
        for name, seconds in split_time(
            spans[item], calls[item], sleeps[item], database[item]
        ).items():
            split[name] += seconds
    n = len(items)
    return {
        "items_traced": n,
        "calls_per_item": (host_calls + upstream_calls) / n,
        "host_calls_per_item": host_calls / n,
        "upstream_calls_per_item": upstream_calls / n,
        "calls_per_item_by_stage": {k: v / n for k, v in sorted(stage_calls.items())},
        "path_p50": statistics.median(paths),
        "path_max": max(paths),
        "path_mean": statistics.fmean(paths),
        "in_worker_p50_s": statistics.median(in_worker),
        "in_worker_p95_s": percentile(in_worker, 0.95),
        "in_worker_mean_s": statistics.fmean(in_worker),
        # Per item, seconds: where its time in a worker went.
        "split_per_item_s": {k: v / n for k, v in sorted(split.items(), key=lambda kv: -kv[1])},
        # Share of the C item places busy over the wall time: below 1, places stood empty
        # (dispatch and polling, a task's batch waiting for its slowest item, the tail).
        "occupancy": totals["advance_s"] / (in_flight * wall) if wall else None,
        "first_item_after_s": totals["first"] - started,
        "last_item_done_after_s": totals["last"] - started,
        "advance_outcomes": dict(totals["outcomes"]),
    }
