"""One caller at a time does a piece of work whose success makes it unnecessary for the others
of the same key, among the threads of this process.

``with flights.turn(key, timeout=…) as turn:`` returns at once with ``Turn.LEAD`` when nobody
of ``key`` is doing the work (the caller does it; the others wait for it). Otherwise it waits
until the one doing it leaves: ``Turn.FOLLOW`` when it left normally (the work is done: take
its result), else (it raised) one waiter leads next, so a failed leader never strands the rest.
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
from typing import Any

from relay_project.branches import waiting


class Turn(enum.Enum):
    LEAD = "lead"
    FOLLOW = "follow"
    ALONE = "alone"


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
    def turn(self, key: Hashable, *, timeout: float, rank: Any = None) -> Iterator[Turn]:
        """The caller's turn (module docstring); a leader that leaves normally has succeeded."""
        with waiting():
            flight, turn = self._join(key, time.monotonic() + timeout, rank)
        succeeded = False
        try:
            yield turn
            succeeded = True
        finally:
            with self._changed:
                if turn is Turn.LEAD:
                    flight.leading = False
                    flight.succeeded = succeeded
                    self._changed.notify_all()
                self._leave(key, flight, rank)

    def _join(self, key: Hashable, deadline: float, rank: Any) -> tuple[_Flight, Turn]:
        with self._changed:
            flight = self._flights.setdefault(key, _Flight())
            flight.ranks.append(rank)
            flight.waiting += 1
            try:
                while flight.leading and not flight.succeeded:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return flight, Turn.ALONE
                    self._changed.wait(left)
                if flight.succeeded:
                    return flight, Turn.FOLLOW
                flight.leading = True
                return flight, Turn.LEAD
            except BaseException:
                self._leave(key, flight, rank)
                raise
            finally:
                flight.waiting -= 1

    def _leave(self, key: Hashable, flight: _Flight, rank: Any) -> None:
        flight.ranks.remove(rank)
        if not flight.ranks:  # the last one out: a later caller starts afresh
            del self._flights[key]
