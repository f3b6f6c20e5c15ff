"""Calls the host simulator runs later (the background Responses probe), on threads it keeps.

The host runs each probe in a goroutine of its own, so a slow upstream delays no other
account's probe. A ``threading.Timer`` per call did the same at the cost of a new thread per
account; here the calls wait in one heap, and a thread that is free runs the next one due. A
new thread starts only when a call falls due while every thread is busy with another, so calls
still run side by side and on time; the threads wait for the next call instead of ending.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


class Scheduler:
    """``call_later(delay, fn, *args)`` until ``stop()``, which drops the calls not yet due."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._order = itertools.count()  # equal due times run in the order they were asked
        self._threads: list[threading.Thread] = []
        self._free = 0  # threads not running a call (waiting for one, or starting up)
        self._stopped = False

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        with self._cond:
            if self._stopped:
                return
            entry = (time.monotonic() + delay, next(self._order), fn, args)
            heapq.heappush(self._due, entry)
            if not self._free:
                self._start_thread()
            elif self._due[0] is entry:
                # The waiting threads measure their wait again from the new earliest call. A
                # later call needs no wake-up (each wake-up is a system call): they already
                # wake for an earlier one, and then look again.
                self._cond.notify_all()

    @property
    def threads(self) -> list[threading.Thread]:
        with self._cond:
            return list(self._threads)

    def stop(self, timeout: float = 1.0) -> None:
        """Drop the calls not yet due and end the threads; a call under way is not cut
        short, but not waited for longer than ``timeout`` either."""
        with self._cond:
            self._stopped = True
            self._due.clear()
            self._cond.notify_all()
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"{self.name}-{len(self._threads) + 1}", daemon=True
        )
        self._threads.append(thread)
        self._free += 1
        thread.start()

    def _work(self) -> None:
        with self._cond:
            try:
                while not self._stopped:
                    if not self._due or self._due[0][0] > time.monotonic():
                        self._cond.wait(self._due[0][0] - time.monotonic() if self._due else None)
                        continue
                    _, _, fn, args = heapq.heappop(self._due)
                    self._free -= 1
                    if self._due and not self._free:
                        self._start_thread()  # someone must wait for the next call meanwhile
                    self._cond.release()
                    try:
                        fn(*args)
                    except Exception:
                        logger.exception("%s: a scheduled call failed", self.name)
                    finally:
                        self._cond.acquire()
                        self._free += 1
            finally:
                self._free -= 1
                self._threads.remove(threading.current_thread())
