"""The bench's critical-path analysis (benchmarks.trace): round trips that ran one after
another, and where an item's time in a worker went."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from benchmarks.instrumented import traced
from benchmarks.run import traced_share
from benchmarks.trace import analyse, longest_chain, read_totals, split_time


def test_calls_side_by_side_are_one_round_trip():
    assert longest_chain([(0, 1), (0.1, 1.1), (0.2, 0.9)]) == 1


def test_calls_one_after_another_are_each_a_round_trip():
    assert longest_chain([(0, 1), (1, 2), (2.5, 3)]) == 3


def test_the_longest_chain_is_found_whatever_the_order():
    # A long call beside two short ones in a row: the two short ones are the path.
    assert longest_chain([(0, 3), (2, 3), (0, 1), (1.5, 1.9)]) == 3


def test_split_time_puts_a_call_before_a_sleep_and_the_rest_aside():
    split = split_time(
        spans=[(0, 10)],
        calls=[(1, 3), (6, 7)],
        sleeps=[(2, 5, "hold")],  # overlaps the first call for a second
    )
    assert split == pytest.approx({"http": 3, "sleep hold": 2, "other": 5})


def test_split_time_puts_the_database_after_a_call_and_before_a_sleep():
    split = split_time(
        spans=[(0, 10)],
        calls=[(1, 3)],
        sleeps=[(4, 6, "hold")],
        database=[(2, 5), (8, 9)],  # a statement ends during the sleep, one stands alone
    )
    assert split == pytest.approx({"http": 2, "database": 3, "sleep hold": 1, "other": 4})


def test_split_time_ignores_what_falls_outside_the_item_spans():
    assert split_time(spans=[(0, 1)], calls=[(0.5, 2)], sleeps=[]) == pytest.approx(
        {"http": 0.5, "other": 0.5}
    )


def test_analyse_counts_per_item_and_occupancy():
    records = [
        {"k": "advance", "item": "a", "t0": 10, "t1": 14, "o": "done"},
        {"k": "advance", "item": "b", "t0": 10, "t1": 12, "o": "done"},
        {"k": "call", "item": "a", "t0": 10, "t1": 11, "port": 1, "path": "/x", "st": "probe"},
        {"k": "call", "item": "a", "t0": 11, "t1": 12, "port": 2, "path": "/y", "st": "probe"},
        {"k": "call", "item": "b", "t0": 10, "t1": 11, "port": 1, "path": "/x", "st": "probe"},
    ]
    totals = _totals(advance_s=6, first=10, last=14, outcomes={"done": 2})
    result = analyse(records, totals, host_port=1, started=9, wall=5, in_flight=2)
    assert result["items_traced"] == 2
    assert result["calls_per_item"] == 1.5
    assert result["host_calls_per_item"] == 1
    assert result["path_max"] == 2 and result["path_p50"] == 1.5
    assert result["occupancy"] == pytest.approx(6 / (2 * 5))
    assert result["split_per_item_s"] == pytest.approx({"http": 1.5, "other": 1.5})
    assert result["first_item_after_s"] == 1


def test_analyse_splits_out_the_statements_an_advance_noted():
    records = [
        {"k": "advance", "item": "a", "t0": 10, "t1": 14, "o": "done", "db": [[12, 13.5]]},
        {"k": "call", "item": "a", "t0": 10, "t1": 11, "port": 1, "path": "/x", "st": "probe"},
    ]
    totals = _totals(advance_s=4, first=10, last=14, outcomes={"done": 1})
    result = analyse(records, totals, host_port=1, started=9, wall=5, in_flight=1)
    assert result["split_per_item_s"] == pytest.approx({"http": 1, "database": 1.5, "other": 1.5})


def test_analyse_takes_the_per_item_figures_from_the_traced_items_and_the_rest_from_all():
    # One item of two traced: its calls and path are the items'; the places' occupancy, the
    # first start, the last end and the outcomes are every item's, from the totals.
    records = [
        {"k": "advance", "item": "a", "t0": 10, "t1": 12, "o": "done"},
        {"k": "call", "item": "a", "t0": 10, "t1": 11, "port": 1, "path": "/x", "st": "probe"},
        {"k": "call", "item": "a", "t0": 11, "t1": 12, "port": 1, "path": "/y", "st": "probe"},
    ]
    totals = _totals(advance_s=7, first=9.5, last=16, outcomes={"done": 1, "scheduled": 2})
    result = analyse(records, totals, host_port=1, started=9, wall=8, in_flight=2)
    assert result["items_traced"] == 1
    assert result["calls_per_item"] == 2 and result["path_max"] == 2
    assert result["in_worker_mean_s"] == 2
    assert result["occupancy"] == pytest.approx(7 / (2 * 8))
    assert result["first_item_after_s"] == 0.5
    assert result["last_item_done_after_s"] == 7
    assert result["advance_outcomes"] == {"done": 1, "scheduled": 2}


def test_read_totals_adds_up_the_processes(tmp_path):
    (tmp_path / "1.totals.json").write_text(
        json.dumps(_totals(sql_item=30, advance_s=2.5, first=5, last=9, outcomes={"done": 2}))
    )
    (tmp_path / "2.totals.json").write_text(
        json.dumps(_totals(sql_other=4, advance_s=1.5, first=4, last=8, outcomes={"done": 1}))
    )
    (tmp_path / "3.totals.json").write_text('{"sql_it')  # cut short by a killed process
    totals = read_totals(tmp_path)
    assert totals["sql_item"] == 30 and totals["sql_other"] == 4
    assert totals["advance_s"] == 4 and totals["outcomes"] == {"done": 3}
    assert (totals["first"], totals["last"]) == (4, 9)


def test_a_process_that_advanced_nothing_has_no_first_or_last(tmp_path):
    (tmp_path / "1.totals.json").write_text(json.dumps(_totals(sql_other=3)))
    totals = read_totals(tmp_path)
    assert totals["first"] is None and totals["last"] is None


def test_one_item_in_k_is_traced_the_same_in_every_process():
    ids = [f"item_{uuid.uuid4().hex}" for _ in range(10_000)]
    chosen = [item for item in ids if traced(item, 5)]
    assert 0.17 < len(chosen) / len(ids) < 0.23
    assert all(traced(item, 1) for item in ids[:100])
    # Another interpreter, its string hashes salted otherwise, chooses the same items.
    script = (
        "import json, sys; from benchmarks.instrumented import traced; "
        "print(json.dumps([i for i in json.load(sys.stdin) if traced(i, 5)]))"
    )
    other = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(ids[:500]),
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert json.loads(other.stdout) == [item for item in ids[:500] if traced(item, 5)]


def test_the_table_says_which_items_were_traced():
    assert traced_share({"trace_one_in": 5, "trace": {"items_traced": 203}}) == (
        "203 items traced (1 in 5)"
    )
    assert traced_share({"trace_one_in": 1, "trace": {"items_traced": 100}}) == (
        "every item traced (100)"
    )


def _totals(**counts) -> dict:
    """One process's ``<pid>.totals.json`` (``benchmarks.instrumented``)."""
    base = {"sql_item": 0, "sql_other": 0, "advances": 0, "advance_s": 0.0}
    return {**base, "first": None, "last": None, "outcomes": {}, **counts}
