"""The bench's critical-path analysis (benchmarks.trace): round trips that ran one after
another, and where an item's time in a worker went."""

from __future__ import annotations

import pytest

from benchmarks.trace import analyse, longest_chain, split_time


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
    result = analyse(records, host_port=1, started=9, wall=5, in_flight=2)
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
    result = analyse(records, host_port=1, started=9, wall=5, in_flight=1)
    assert result["split_per_item_s"] == pytest.approx({"http": 1, "database": 1.5, "other": 1.5})
