"""A worker process's item places: threads that run items, each over a database connection of
its own, kept from one task to the next.

An item mostly waits on the network, so a task runs its items side by side, each in a place
(a thread). Started for each task and ended with it, a place cost a thread and, above all, a
database connection per task: on PostgreSQL a backend started and its catalog caches warmed
for every place of every task (≈ 7 ms of the server's CPU each; 290 connections per 1,000
items in the bench, a third of the rows the database read). Places now outlive their task: a
place that finished an item waits for the next one, of this task or a later one, and closes
its connection when it has had no work for ``IDLE_SECONDS``, and checks it before the next item
once it has waited ``CHECK_AFTER_SECONDS`` (a database restarted between two runs is met by a
fresh connection, not by the next run's first items).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections

# A place with no work for this long closes its database connection (a worker between runs
# holds none open); it opens one again with its next item.
IDLE_SECONDS = 60.0
# A place that waited this long for work checks its connection before using it again (one
# ``SELECT 1`` on PostgreSQL), as Django's CONN_HEALTH_CHECKS does for a request.
CHECK_AFTER_SECONDS = 5.0


@dataclass(frozen=True)
class _Work:
    key: str
    run: Callable[[], Any]
    ended: queue.SimpleQueue


class Places:
    """The places of this process, as many as were ever busy at once."""

    def __init__(self) -> None:
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0

    def hand(self, key: str, run: Callable[[], Any], ended: queue.SimpleQueue) -> None:
        """Run ``run()`` in a free place, or a new one when none is free; ``(key, outcome)``
        goes to ``ended`` when it returns, with what it raised as the outcome if it raised."""
        with self._lock:
            if self._idle:
                self._idle -= 1
            else:
                thread = threading.Thread(
                    target=self._place, name=f"item_{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        self._work.put(_Work(key, run, ended))

    def close(self) -> None:
        """End every place once it is free; each closes its connection (tests, shutdown)."""
        with self._lock:
            threads, self._threads, self._idle = self._threads, [], 0
        for _ in threads:
            self._work.put(None)
        for thread in threads:
            thread.join()

    def _place(self) -> None:
        try:
            while (work := self._next()) is not None:
                try:
                    outcome = work.run()
                except BaseException as exc:  # the task raises it once its items have ended
                    outcome = exc
                _close_unusable_connections(after_errors_only=True)
                with self._lock:  # free before the task hears of it, so it hands us more
                    if threading.current_thread() in self._threads:  # else closed: it ends
                        self._idle += 1
                work.ended.put((work.key, outcome))
        finally:
            connections.close_all()

    def _next(self) -> _Work | None:
        waited_since = time.monotonic()
        while True:
            try:
                work = self._work.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                connections.close_all()
                continue
            if time.monotonic() - waited_since >= CHECK_AFTER_SECONDS:
                _close_unusable_connections(after_errors_only=False)
            return work


def _close_unusable_connections(*, after_errors_only: bool) -> None:
    """Close a connection that no longer answers, as Django checks between requests: after an
    item only one an error may have broken, after a long wait every one."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        if after_errors_only and not connection.errors_occurred:
            continue
        if connection.is_usable():
            connection.errors_occurred = False
        else:
            connection.close()


PLACES = Places()
