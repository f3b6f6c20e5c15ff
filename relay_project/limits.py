"""Concurrency bounds that hold across every process and machine of one deployment.

``slot("upstream:https://api.example.com", 2)`` is a context manager that admits at most two
holders of that key at once, whoever holds them: threads of one worker, the workers of one
qcluster, or qclusters on other machines. The backend follows the deployment:

- ``REDIS_URL`` set (several machines): a sorted set per key in Redis whose members are leases
  scored by their expiry on the Redis clock. Acquire and release are single Lua calls, and a
  holder that died without releasing stops counting when its lease expires.
- otherwise (one machine, SQLite + ORM broker): ``size`` lock files per key under
  ``VAR_DIR/slots``; a holder owns one ``flock`` on one of them and the kernel frees it when the
  holder's process dies.
- Django settings not configured (the adapters used as a library): a semaphore in the process.

Waiting polls with a short, growing pause; the bounds are small (2-8) and holders are single
HTTP exchanges, so a queue would buy little over polling.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings

# A lease outlives any single HTTP exchange (timeouts are seconds): it only matters when the
# holder died, and then it bounds how long its place stays taken.
DEFAULT_LEASE_SECONDS = 300.0
POLL_FIRST = 0.005
POLL_MAX = 0.1

_ACQUIRE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
return 0
"""


class Backend(Protocol):
    def try_acquire(self, key: str, size: int) -> object | None:
        """A token when a place was free, else ``None``."""

    def release(self, key: str, token: object) -> None: ...


class LocalBackend:
    """Semaphores of this process only (no settings: nothing to share through)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._semaphores: dict[tuple[str, int], threading.BoundedSemaphore] = {}

    def _semaphore(self, key: str, size: int) -> threading.BoundedSemaphore:
        with self._lock:
            return self._semaphores.setdefault((key, size), threading.BoundedSemaphore(size))

    def try_acquire(self, key: str, size: int) -> object | None:
        semaphore = self._semaphore(key, size)
        return semaphore if semaphore.acquire(blocking=False) else None

    def release(self, key: str, token: object) -> None:
        token.release()  # type: ignore[attr-defined]


class FileLockBackend:
    """``size`` lock files per key; one ``flock`` per holder, freed by the kernel on death."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _paths(self, key: str, size: int) -> list[Path]:
        folder = self.directory / hashlib.sha256(key.encode()).hexdigest()[:32]
        folder.mkdir(parents=True, exist_ok=True)
        return [folder / f"{index}.lock" for index in range(size)]

    def try_acquire(self, key: str, size: int) -> object | None:
        for path in self._paths(key, size):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return fd
        return None

    def release(self, key: str, token: object) -> None:
        os.close(token)  # type: ignore[arg-type]  # closing the descriptor drops its flock


class RedisBackend:
    """Leases in one sorted set per key, on the Redis clock (machines' clocks may differ)."""

    def __init__(self, url: str, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        self.url = url
        self.lease_ms = int(lease_seconds * 1000)
        self._connections: dict[int, tuple[Any, Any]] = {}  # per pid: a fork opens its own

    def _connection(self) -> tuple[Any, Any]:
        """The Redis client and the registered acquire script of this process."""
        pid = os.getpid()
        connection = self._connections.get(pid)
        if connection is None:
            import redis

            client = redis.Redis.from_url(self.url)
            connection = (client, client.register_script(_ACQUIRE))
            self._connections = {pid: connection}
        return connection

    def try_acquire(self, key: str, size: int) -> object | None:
        _, acquire = self._connection()
        token = uuid.uuid4().hex
        granted = acquire(keys=[f"relay:slot:{key}"], args=[size, self.lease_ms, token])
        return token if granted else None

    def release(self, key: str, token: object) -> None:
        client, _ = self._connection()
        client.zrem(f"relay:slot:{key}", token)


_backend_lock = threading.Lock()
_backend: Backend | None = None


def backend() -> Backend:
    """The deployment's backend, chosen once per process from the settings."""
    global _backend
    with _backend_lock:
        if _backend is None:
            _backend = _configured_backend()
        return _backend


def _configured_backend() -> Backend:
    if not settings.configured:
        return LocalBackend()
    if settings.REDIS_URL:
        return RedisBackend(settings.REDIS_URL, settings.RELAY_SLOT_LEASE_SECONDS)
    return FileLockBackend(Path(settings.VAR_DIR) / "slots")


class Slot:
    """A reusable handle on one bounded key; ``with handle:`` holds one place."""

    def __init__(self, key: str, size: int, using: Backend | None = None) -> None:
        self.key = key
        self.size = max(1, int(size))
        self._using = using
        self._held = threading.local()

    @property
    def backend(self) -> Backend:
        return self._using or backend()

    @contextmanager
    def hold(self) -> Iterator[None]:
        using = self.backend
        pause = POLL_FIRST
        while (token := using.try_acquire(self.key, self.size)) is None:
            time.sleep(pause)
            pause = min(POLL_MAX, pause * 2)
        try:
            yield
        finally:
            using.release(self.key, token)

    def __enter__(self) -> None:
        stack = getattr(self._held, "stack", None)
        if stack is None:
            stack = self._held.stack = []
        context = self.hold()
        context.__enter__()
        stack.append(context)

    def __exit__(self, *exc_info: object) -> None:
        self._held.stack.pop().__exit__(*exc_info)


def slot(key: str, size: int) -> Slot:
    """The bound on ``key`` (e.g. ``"host:https://relay.example.com"``) with ``size`` places."""
    return Slot(key, size)
