"""What a worker process keeps for itself between items, in memory: ``ProcessMemo``."""

from __future__ import annotations

import os
import threading
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ProcessMemo(Generic[K, V]):
    """A map shared by a process's threads that keeps its newest ``size`` entries (the oldest
    put goes first) and starts empty in a forked child: what a parent saw before the fork is
    not the child's to trust."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._entries: dict[K, V] = {}
        os.register_at_fork(after_in_child=self.clear)

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = value
            while len(self._entries) > self.size:
                self._entries.pop(next(iter(self._entries)))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"ProcessMemo(size={self.size}, {self._entries!r})"
