"""``SingleFlight``: one caller of a key leads, the others wait and follow it, or lead next
when it failed, or go alone once their wait is over."""

from __future__ import annotations

import threading

import pytest

from relay_project.single_flight import SingleFlight, Turn


def second_caller(
    flights: SingleFlight, key: str, timeout: float = 10, rank: int | None = None
) -> tuple[list, threading.Thread]:
    """Another thread's turn, noted once it has one; returns after it started waiting."""
    turns: list[Turn] = []

    def take_turn():
        with flights.turn(key, timeout=timeout, rank=rank) as place:
            turns.append(place.turn)

    thread = threading.Thread(target=take_turn)
    thread.start()
    while flights.waiters(key) < 1 and thread.is_alive():
        threading.Event().wait(0.001)
    return turns, thread


def test_a_caller_waits_for_the_leader_and_follows_it():
    flights = SingleFlight()
    with flights.turn("p", timeout=10) as first:
        turns, thread = second_caller(flights, "p")
        assert turns == []  # still waiting while the leader works
        first.succeeded()
    thread.join()

    assert (first.turn, turns) == (Turn.LEAD, [Turn.FOLLOW])
    assert flights.waiters("p") == 0 and flights._flights == {}


def test_a_waiting_caller_leads_when_the_leader_failed():
    flights = SingleFlight()
    with pytest.raises(RuntimeError), flights.turn("p", timeout=10):
        turns, thread = second_caller(flights, "p")
        raise RuntimeError("the leader's work failed")
    thread.join()

    assert turns == [Turn.LEAD]


def test_a_waiting_caller_leads_when_the_leader_left_without_success():
    flights = SingleFlight()
    with flights.turn("p", timeout=10):
        turns, thread = second_caller(flights, "p")
    thread.join()

    assert turns == [Turn.LEAD]


def test_a_wait_ends_after_its_timeout_and_the_caller_goes_alone():
    flights = SingleFlight()
    with flights.turn("p", timeout=10):
        with flights.turn("p", timeout=0.01) as second:
            assert (second.turn, second.waited) == (Turn.ALONE, True)
        with flights.turn("q", timeout=0.01) as other_key:
            assert (other_key.turn, other_key.waited) == (Turn.LEAD, False)


def test_first_rank_is_the_lowest_of_the_callers_inside():
    flights = SingleFlight()
    with flights.turn("p", timeout=10, rank=5):
        _, thread = second_caller(flights, "p", rank=3)
        assert flights.first_rank("p") == 3
    thread.join()

    assert flights.first_rank("p") is None
