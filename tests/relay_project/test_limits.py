"""Concurrency bounds hold across processes, and a dead holder does not keep its place forever."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from relay_project import limits
from relay_project.limits import FileLockBackend, LocalBackend, RedisBackend, Slot

REDIS_URL = os.environ.get("RELAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PROCESSES = 3
THREADS = 4
SIZE = 2
HOLD = 0.03


def _redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"Redis at {REDIS_URL} does not answer")


def _contend(backend, key: str, queue) -> None:
    """One process: THREADS threads take the shared slot three times each, noting when."""
    bound = Slot(key, SIZE, using=backend)
    intervals = []
    lock = threading.Lock()

    def hold(_: int) -> None:
        with bound:
            entered = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process
            time.sleep(HOLD)
            left = time.monotonic()
        with lock:
            intervals.append((entered, left))

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(hold, range(THREADS * 3)))
    queue.put(intervals)


def _peak_holders(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    peak = current = 0
    for _, step in edges:  # at equal times the exit (-1) sorts first: touching is not overlapping
        current += step
        peak = max(peak, current)
    return peak


def _peak_across_processes(backend) -> int:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    key = f"upstream:https://{uuid.uuid4().hex}.example.com"
    workers = [
        context.Process(target=_contend, args=(backend, key, queue)) for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    intervals = [interval for _ in workers for interval in queue.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=10)
    assert len(intervals) == PROCESSES * THREADS * 3
    return _peak_holders(intervals)


def test_lock_files_bound_every_process_on_the_machine(tmp_path):
    assert _peak_across_processes(FileLockBackend(tmp_path)) == SIZE


def test_redis_leases_bound_every_process_of_every_machine():
    _redis_or_skip()
    assert _peak_across_processes(RedisBackend(REDIS_URL)) == SIZE


def test_a_process_semaphore_alone_would_not_hold_the_bound():
    """The control: the same load through per-process semaphores exceeds the bound."""
    assert _peak_across_processes(LocalBackend()) > SIZE


def _hold_until_killed(directory, key: str, ready) -> None:
    FileLockBackend(directory).try_acquire(key, 1)
    ready.set()
    time.sleep(60)


def test_the_kernel_frees_the_place_of_a_killed_holder(tmp_path):
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    holder = context.Process(target=_hold_until_killed, args=(tmp_path, "host:x", ready))
    holder.start()
    assert ready.wait(30)
    backend = FileLockBackend(tmp_path)
    assert backend.try_acquire("host:x", 1) is None
    holder.kill()
    holder.join(timeout=10)
    token = backend.try_acquire("host:x", 1)
    assert token is not None
    backend.release("host:x", token)


def test_a_redis_lease_of_a_dead_holder_expires():
    _redis_or_skip()
    key = f"host:{uuid.uuid4().hex}"
    backend = RedisBackend(REDIS_URL, lease_seconds=1)
    assert backend.try_acquire(key, 1) is not None  # never released: its holder "died"
    assert backend.try_acquire(key, 1) is None
    time.sleep(1.2)
    token = backend.try_acquire(key, 1)
    assert token is not None
    backend.release(key, token)
    assert backend.try_acquire(key, 1) is not None


def test_the_backend_follows_the_deployment(settings, monkeypatch, tmp_path):
    monkeypatch.setattr(limits, "_backend", None)
    settings.REDIS_URL = ""
    settings.VAR_DIR = tmp_path
    chosen = limits.backend()
    assert isinstance(chosen, FileLockBackend)
    assert chosen.directory == tmp_path / "slots"

    monkeypatch.setattr(limits, "_backend", None)
    settings.REDIS_URL = REDIS_URL
    assert isinstance(limits.backend(), RedisBackend)
