"""One caller at a time does a piece of work whose success makes it unnecessary for the others
of the same key, among the threads of this process.

``with flights.turn(key, timeout=…) as place:`` returns at once with ``place.turn`` ``Turn.LEAD``
when nobody of ``key`` is doing the work (the caller does it; the others wait for it). Otherwise
it waits until the one doing it leaves: ``Turn.FOLLOW`` when it had said ``place.succeeded()``
(the work is done: take its result), else (it failed, or raised) one waiter leads next, so a
failed leader never strands the rest; ``place.waited`` tells whether the caller waited.
A wait is bounded: after ``timeout`` seconds the caller goes on ``Turn.ALONE``, doing the work
itself as if nobody else were (the leader still leads). Waiting holds nothing else: it hands
on the branch baton (``relay_project.branches.waiting``), and the caller must hold no database
transaction or bounded place while it waits. Each caller may bring a ``rank`` (any comparable
value); ``first_rank`` tells the lowest of those inside now.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from relay_project.branches import waiting


class Turn(enum.Enum):
    LEAD = "lead"
    FOLLOW = "follow"
    ALONE = "alone"


@dataclass
class Place:
    """A caller's turn, and whether it waited for it."""

    turn: Turn
    waited: bool
    done: bool = False

    def succeeded(self) -> None:
        """The leader's work is done: those waiting follow it."""
        self.done = True


class _Flight:
    """The callers of one key: whether one leads, whether a leader succeeded, the ranks of those
    inside, how many of them wait."""

    __slots__ = ("leading", "ranks", "succeeded", "waiting")

    def __init__(self) -> None:
        self.leading = False
        self.succeeded = False
        self.ranks: list[Any] = []
        self.waiting = 0


class SingleFlight:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._flights: dict[Hashable, _Flight] = {}

    def waiters(self, key: Hashable) -> int:
        """How many callers of ``key`` wait for its leader now."""
        with self._changed:
            flight = self._flights.get(key)
            return flight.waiting if flight else 0

    def first_rank(self, key: Hashable) -> Any:
        """The lowest rank of the callers of ``key`` inside now (None when none gave one)."""
        with self._changed:
            flight = self._flights.get(key)
            ranks = [rank for rank in flight.ranks if rank is not None] if flight else []
            return min(ranks, default=None)

    @contextmanager
    def turn(self, key: Hashable, *, timeout: float, rank: Any = None) -> Iterator[Place]:
        """The caller's turn (module docstring)."""
        with waiting():
            flight, place = self._join(key, time.monotonic() + timeout, rank)
        try:
            yield place
        finally:
            with self._changed:
                if place.turn is Turn.LEAD:
                    flight.leading = False
                    flight.succeeded = place.done
                    self._changed.notify_all()
                self._leave(key, flight, rank)

    def _join(self, key: Hashable, deadline: float, rank: Any) -> tuple[_Flight, Place]:
        with self._changed:
            flight = self._flights.setdefault(key, _Flight())
            flight.ranks.append(rank)
            flight.waiting += 1
            waited = False
            try:
                while flight.leading and not flight.succeeded:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return flight, Place(Turn.ALONE, waited=True)
                    self._changed.wait(left)
                    waited = True
                if flight.succeeded:
                    return flight, Place(Turn.FOLLOW, waited=waited)
                flight.leading = True
                return flight, Place(Turn.LEAD, waited=waited)
            except BaseException:
                self._leave(key, flight, rank)
                raise
            finally:
                flight.waiting -= 1

    def _leave(self, key: Hashable, flight: _Flight, rank: Any) -> None:
        flight.ranks.remove(rank)
        if not flight.ranks:  # the last one out: a later caller starts afresh
            del self._flights[key]
