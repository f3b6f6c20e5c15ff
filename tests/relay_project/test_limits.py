"""Concurrency bounds hold across processes, and a dead holder does not keep its place forever."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from relay_project import limits
from relay_project.limits import Claim, FileLockBackend, LocalBackend, RedisBackend, Slot

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


def _contend(backend, key: str, run: str, queue) -> None:
    """One process: THREADS threads of ``run`` take the shared slot three times each, noting
    when."""
    bound = Slot(key, SIZE, using=backend)
    intervals = []
    lock = threading.Lock()

    def hold(_: int) -> None:
        with limits.run_scope(run), bound:
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


def _peak_across_processes(backend, runs: tuple[str, ...] = ("",) * PROCESSES) -> int:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    key = f"upstream:https://{uuid.uuid4().hex}.example.com"
    workers = [context.Process(target=_contend, args=(backend, key, run, queue)) for run in runs]
    for worker in workers:
        worker.start()
    intervals = [interval for _ in workers for interval in queue.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=10)
    assert len(intervals) == PROCESSES * THREADS * 3
    return _peak_holders(intervals)


# One run in every process, or runs that share the bound (one of them spread over two).
RUNS = {"one run": ("",) * PROCESSES, "several runs": ("a", "b", "a")}


@pytest.mark.parametrize("runs", RUNS.values(), ids=RUNS.keys())
def test_lock_files_bound_every_process_on_the_machine(tmp_path, runs):
    assert _peak_across_processes(FileLockBackend(tmp_path), runs) == SIZE


@pytest.mark.parametrize("runs", RUNS.values(), ids=RUNS.keys())
def test_redis_leases_bound_every_process_of_every_machine(runs):
    _redis_or_skip()
    assert _peak_across_processes(RedisBackend(REDIS_URL), runs) == SIZE


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


def _named(name: str) -> str:
    """REDIS_URL with a client name its connections show in ``CLIENT LIST``."""
    return f"{REDIS_URL}{'&' if '?' in REDIS_URL else '?'}client_name={name}"


def _connections_named(name: str) -> list[dict]:
    import redis

    listing = redis.Redis.from_url(REDIS_URL).client_list()
    return [client for client in listing if client["name"] == name]


@pytest.fixture
def named():
    """A Redis backend whose connections carry a client name of their own, that name and a
    key of its own."""
    _redis_or_skip()
    name = f"relay-test-{uuid.uuid4().hex[:12]}"
    return RedisBackend(_named(name)), name, f"host:{uuid.uuid4().hex}"


def _take_and_give_back(backend: RedisBackend, key: str, times: int) -> None:
    for _ in range(times):
        token = backend.try_acquire(key, 8, Claim("run"))
        assert token is not None
        backend.release(key, token)


def test_redis_commands_go_through_one_connection_per_thread(named):
    backend, name, key = named
    _take_and_give_back(backend, key, 5)
    assert len(_connections_named(name)) == 1
    with ThreadPoolExecutor(3) as pool:
        started = [pool.submit(_take_and_give_back, backend, key, 5) for _ in range(3)]
        assert len(_connections_named(name)) >= 2  # the pool's threads are still alive here
        for future in started:
            future.result()
    gone = time.monotonic() + 5  # a finished thread's connection closes with it
    while len(_connections_named(name)) > 1 and time.monotonic() < gone:
        time.sleep(0.05)
    assert len(_connections_named(name)) == 1


def test_a_forked_child_talks_to_redis_on_a_connection_of_its_own(named):
    backend, _, key = named
    full = f"host:{uuid.uuid4().hex}"
    assert backend.try_acquire(full, 1) is not None  # this thread's connection, before the fork
    context = multiprocessing.get_context("fork")
    child = context.Process(target=_take_and_give_back, args=(backend, key, 300))
    child.start()
    # Side by side, the child granted places and the parent refused them: on one socket the
    # answers would cross.
    refused = [backend.try_acquire(full, 1) for _ in range(300)]
    child.join(timeout=30)
    assert child.exitcode == 0
    assert refused == [None] * 300


def test_a_redis_that_forgot_the_script_or_dropped_the_connection_still_answers(named):
    import redis

    backend, name, key = named
    _take_and_give_back(backend, key, 1)
    admin = redis.Redis.from_url(REDIS_URL)
    admin.script_flush()  # a restarted or flushed Redis
    _take_and_give_back(backend, key, 1)
    [connection] = _connections_named(name)
    admin.client_kill_filter(_id=connection["id"])  # a dropped connection
    _take_and_give_back(backend, key, 1)
    [again] = _connections_named(name)
    assert again["id"] != connection["id"]


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


# --- fair sharing between runs ----------------------------------------------------------------


@pytest.fixture(params=["files", "redis"])
def shared(request, tmp_path):
    """Each shared backend (every test takes a key of its own)."""
    if request.param == "redis":
        _redis_or_skip()
        return RedisBackend(REDIS_URL)
    return FileLockBackend(tmp_path)


class Drive:
    """Deterministic interleavings: callers of named runs try the backend in an order the test
    picks, as pollers would, and every admission is noted. ``named=False``: the same callers
    name no run (the backend sees no claim)."""

    def __init__(self, backend, size: int, *, named: bool = True) -> None:
        self.backend = backend
        self.size = size
        self.named = named
        self.key = f"upstream:https://{uuid.uuid4().hex}.example.com"
        self.waiting: dict[str, list[Claim]] = {}
        self.holders: list[tuple[str, object]] = []  # oldest first
        self.admitted: list[str] = []

    def arrive(self, run: str, items: int) -> None:
        self.waiting.setdefault(run, []).extend(Claim(run) for _ in range(items))
        self.poll(run)

    def poll(self, *runs: str) -> None:
        """Every waiting caller of ``runs`` (in that order) tries once."""
        for run in runs:
            for claim in list(self.waiting[run]):
                token = self.backend.try_acquire(self.key, self.size, claim if self.named else None)
                if token is not None:
                    self.waiting[run].remove(claim)
                    self.holders.append((run, token))
                    self.admitted.append(run)

    def finish_oldest(self) -> None:
        _, token = self.holders.pop(0)
        self.backend.release(self.key, token)

    def holding(self, run: str) -> int:
        return sum(owner == run for owner, _ in self.holders)

    def close(self) -> None:
        for _, token in self.holders:
            self.backend.release(self.key, token)
        for claims in self.waiting.values():
            for claim in claims:
                self.backend.withdraw(self.key, claim)


def _small_run_holdings(drive: Drive) -> list[int]:
    """A run of 200 items (far more than the bound) holds every place; a run of 5 arrives;
    ten holders finish one at a time, oldest first, and the big run's waiters always poll
    first. How many places the small run held after each."""
    drive.arrive("big", 200)
    drive.arrive("small", 5)
    holdings = []
    for _ in range(10):
        drive.finish_oldest()
        drive.poll("big", "small")
        holdings.append(drive.holding("small"))
    return holdings


def test_a_small_run_gets_its_share_behind_a_big_one(shared):
    drive = Drive(shared, 4)
    try:
        # The first two freed places go to the small run (it holds fewest), then the runs
        # take turns at two places each; once all five small items are in, the big run refills.
        assert _small_run_holdings(drive) == [1] + [2] * 8 + [1]
        assert drive.admitted.count("small") == 5
        assert len(drive.holders) == 4
    finally:
        drive.close()


def test_without_runs_the_pollers_of_a_big_batch_take_every_place(shared):
    """The control: the same interleaving with nobody naming a run starves the small batch."""
    drive = Drive(shared, 4, named=False)
    try:
        assert _small_run_holdings(drive) == [0] * 10
    finally:
        drive.close()


def test_a_lone_run_uses_the_whole_bound(shared):
    drive = Drive(shared, 4)
    try:
        drive.arrive("lone", 6)
        assert drive.holding("lone") == 4
        drive.finish_oldest()
        drive.poll("lone")
        assert drive.holding("lone") == 4
    finally:
        drive.close()


def test_a_run_that_needs_fewer_leaves_the_rest_to_the_others(shared):
    drive = Drive(shared, 4)
    try:
        drive.arrive("one", 1)
        drive.arrive("many", 10)
        assert (drive.holding("one"), drive.holding("many")) == (1, 3)
        drive.arrive("two", 2)  # holds nothing yet: the next freed places are its
        for _ in range(2):
            drive.finish_oldest()  # "one" finishes first, then one of "many"
            drive.poll("many", "two")
        assert (drive.holding("many"), drive.holding("two")) == (2, 2)
        for _ in range(2):
            drive.finish_oldest()  # of "many": "two" has nobody waiting, so "many" refills
            drive.poll("many", "two")
        assert (drive.holding("many"), drive.holding("two")) == (2, 2)
        for _ in range(2):
            drive.finish_oldest()  # both of "two": "many" takes every place again
            drive.poll("many", "two")
        assert drive.holding("many") == 4
    finally:
        drive.close()


def test_a_caller_that_gives_up_stops_holding_other_runs_back(shared):
    drive = Drive(shared, 2)
    try:
        drive.arrive("big", 3)
        drive.arrive("small", 1)
        drive.finish_oldest()
        drive.poll("big")
        assert drive.holding("big") == 1  # the free place is kept for "small"
        shared.withdraw(drive.key, drive.waiting["small"].pop())
        drive.poll("big")
        assert drive.holding("big") == 2
    finally:
        drive.close()


def _wait_until_killed(directory, key: str, ready) -> None:
    FileLockBackend(directory).try_acquire(key, 2, Claim("gone"))  # refused: it stays waiting
    ready.set()
    time.sleep(60)


def test_a_killed_waiter_stops_holding_other_runs_back(tmp_path):
    backend = FileLockBackend(tmp_path)
    places = [backend.try_acquire("host:x", 2, Claim("big")) for _ in range(2)]
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    waiter = context.Process(target=_wait_until_killed, args=(tmp_path, "host:x", ready))
    waiter.start()  # forked while the places are held: it has their files too
    assert ready.wait(30)
    backend.release("host:x", places.pop())  # freed all the same
    assert backend.try_acquire("host:x", 2, Claim("big")) is None  # the free place is "gone"'s
    waiter.kill()
    waiter.join(timeout=10)
    assert backend.try_acquire("host:x", 2, Claim("big")) is not None


def test_a_redis_registration_of_a_dead_waiter_lapses():
    _redis_or_skip()
    key = f"host:{uuid.uuid4().hex}"
    backend = RedisBackend(REDIS_URL, wait_seconds=0.3)
    places = [backend.try_acquire(key, 2, Claim("big")) for _ in range(2)]
    assert backend.try_acquire(key, 2, Claim("gone")) is None  # never polls again: it "died"
    backend.release(key, places.pop())
    assert backend.try_acquire(key, 2, Claim("big")) is None  # the free place is "gone"'s
    time.sleep(0.4)
    assert backend.try_acquire(key, 2, Claim("big")) is not None


def test_a_slot_names_the_run_of_its_scope():
    class Recording(LocalBackend):
        claims: list[Claim] = []

        def try_acquire(self, key, size, claim=None):
            self.claims.append(claim)
            return super().try_acquire(key, size, claim)

    using = Recording()
    bound = Slot("host:x", 1, using=using)
    with limits.run_scope("run-1"), bound:
        pass
    with bound:
        pass
    assert [claim.run for claim in using.claims] == ["run-1", ""]


def test_a_place_under_a_wide_bound_opens_few_files_when_no_other_run_waits(tmp_path, monkeypatch):
    """A bound of 64 toward the host: with no other run waiting, taking a place looks for
    one free file, it does not read all 64 (every host call pays this)."""
    backend = FileLockBackend(tmp_path)
    held = [backend.try_acquire("host:wide", 64, Claim("run-a")) for _ in range(32)]
    assert all(token is not None for token in held)
    opened = []
    real_open = os.open
    monkeypatch.setattr(
        "relay_project.limits.os.open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k)
    )
    token = backend.try_acquire("host:wide", 64, Claim("run-a"))
    place_files = [p for p in opened if str(p).endswith(".lock")]
    assert token is not None and token not in held
    assert len(place_files) <= 33  # at worst past the 32 held ones to a free one; not all 64
    for fd in [*held, token]:
        backend.release("host:wide", fd)


def test_a_place_names_its_holder_rewriting_the_file_only_for_another_run(tmp_path, monkeypatch):
    """The run that takes a place again finds its name there: no truncation (it waits on the
    file system's journal, under the key's mutex); another, shorter name replaces it whole."""
    backend = FileLockBackend(tmp_path)
    truncated = []
    real_truncate = os.ftruncate
    monkeypatch.setattr(
        "relay_project.limits.os.ftruncate",
        lambda fd, n: truncated.append(fd) or real_truncate(fd, n),
    )
    for _ in range(3):
        backend.release("host:one", backend.try_acquire("host:one", 1, Claim("run-long-name")))
    assert len(truncated) == 1
    backend.release("host:one", backend.try_acquire("host:one", 1, Claim("run-b")))
    assert len(truncated) == 2
    (place,) = (tmp_path / d for d in os.listdir(tmp_path))
    assert (place / "0.lock").read_bytes() == b"run-b"


class OnePlaceTaken:
    """A backend whose one place is taken until ``open`` is set; notes who was refused."""

    def __init__(self, enough: int) -> None:
        self.lock = threading.Lock()
        self.refused: list[int] = []
        self.enough, self.polled = enough, threading.Event()
        self.open = False

    def try_acquire(self, key, size, claim=None):
        with self.lock:
            if self.open:
                return object()
            self.refused.append(threading.get_ident())
            if len(self.refused) >= self.enough:
                self.polled.set()
            return None

    def release(self, key, token):
        pass

    def withdraw(self, key, claim):
        pass


def test_the_callers_of_one_process_refused_a_place_poll_one_at_a_time():
    """32 item threads each polling for the host's places made every poll a refused script
    call: after its first try, one caller per key and run polls, the others wait their turn."""
    backend = OnePlaceTaken(enough=4 + 6)
    waiters = [
        threading.Thread(target=lambda: Slot("host:x", 1, using=backend).__enter__())
        for _ in range(4)
    ]
    for waiter in waiters:
        waiter.start()
    assert backend.polled.wait(10)
    backend.open = True
    for waiter in waiters:
        waiter.join(10)
    first_tries = {}
    for index, ident in enumerate(backend.refused[:10]):
        first_tries.setdefault(ident, index)
    again = {
        ident for index, ident in enumerate(backend.refused[:10]) if first_tries[ident] != index
    }
    assert len(first_tries) == 4  # every caller tried once
    assert len(again) == 1  # and then only one of them polled
    assert limits._turns._turns == {}  # no line is left behind


def _child_id(queue) -> None:
    queue.put(limits.unique_id())


def test_ids_of_holders_and_waiters_are_32_hex_digits_of_their_process_alone():
    ids = [limits.unique_id() for _ in range(1_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_id, args=(queue,))
    child.start()
    forked = queue.get(timeout=30)
    child.join(timeout=10)
    assert len(forked) == 32 and forked[:16] != ids[0][:16]  # its own random half


def test_a_decision_lists_the_waiting_runs_only_when_a_run_waits(tmp_path, monkeypatch):
    backend = FileLockBackend(tmp_path)
    places = [backend.try_acquire("host:x", 2, Claim("big")) for _ in range(2)]
    listed = []
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: listed.append(path) or real_listdir(path))
    backend.release("host:x", places.pop())
    places.append(backend.try_acquire("host:x", 2, Claim("big")))  # nobody waits: no listing
    assert places[-1] is not None and listed == []
    assert backend.try_acquire("host:x", 2, Claim("small")) is None  # "small" waits now
    backend.release("host:x", places.pop())
    assert backend.try_acquire("host:x", 2, Claim("big")) is None  # the free place is small's
    assert listed


def _hold_in_child(backend, key: str, held, done) -> None:
    token = backend.try_acquire(key, 1)
    held.put(token is not None)
    done.wait(30)


def test_a_forked_child_takes_places_through_files_of_its_own(tmp_path):
    """The backend keeps its files open, and a ``flock`` belongs to the open file: a child
    forked after the parent opened them must not share them, or the parent would take the
    place its child holds as its own."""
    backend = FileLockBackend(tmp_path)
    backend.release("host:one", backend.try_acquire("host:one", 1))  # the files are open
    context = multiprocessing.get_context("fork")
    held, done = context.Queue(), context.Event()
    child = context.Process(target=_hold_in_child, args=(backend, "host:one", held, done))
    child.start()
    try:
        assert held.get(timeout=30) is True
        assert backend.try_acquire("host:one", 1) is None  # the child's place
    finally:
        done.set()
        child.join(timeout=10)
    assert backend.try_acquire("host:one", 1) is not None


def test_the_threads_of_one_process_never_share_a_place(tmp_path):
    """A ``flock`` is the open file's, which the threads of a process share: the backend
    keeps which places its holders have, so a second thread is refused the one place."""
    backend = FileLockBackend(tmp_path)
    token = backend.try_acquire("host:one", 1)
    other = []
    thread = threading.Thread(target=lambda: other.append(backend.try_acquire("host:one", 1)))
    thread.start()
    thread.join()
    assert token is not None and other == [None]
    backend.release("host:one", token)
    assert backend.try_acquire("host:one", 1) is not None


def test_a_process_keeps_the_files_of_a_few_keys_open(tmp_path, monkeypatch):
    """A run's upstreams can be thousands, a process opens about a thousand files at most:
    the files of keys beyond the last few used are closed, but never those of a place held."""
    monkeypatch.setattr("relay_project.limits.KEPT_KEYS", 2)
    backend = FileLockBackend(tmp_path)
    held = backend.try_acquire("upstream:held", 1)
    before = len(os.listdir("/proc/self/fd"))
    for n in range(50):
        key = f"upstream:{n}"
        backend.release(key, backend.try_acquire(key, 3))
    # The two kept keys' mutex and place files (one each), and the held key's.
    assert len(os.listdir("/proc/self/fd")) - before <= 2 * 2
    context = multiprocessing.get_context("fork")
    held_elsewhere, done = context.Queue(), context.Event()
    child = context.Process(
        target=_hold_in_child,
        args=(FileLockBackend(tmp_path), "upstream:held", held_elsewhere, done),
    )
    child.start()
    try:
        assert held_elsewhere.get(timeout=30) is False  # still ours
    finally:
        done.set()
        child.join(timeout=10)
    backend.release("upstream:held", held)
    assert backend.try_acquire("upstream:held", 1) is not None


# --- places kept for the process's next holder ------------------------------------------------


class Counting:
    """A shared backend whose grants and releases are counted."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.acquired = self.released = 0

    def try_acquire(self, key, size, claim=None):
        token = self.backend.try_acquire(key, size, claim)
        self.acquired += token is not None
        return token

    def release(self, key, token):
        self.released += 1
        self.backend.release(key, token)

    def withdraw(self, key, claim):
        self.backend.withdraw(key, claim)


@pytest.fixture
def kept_a_while(monkeypatch):
    """Places kept long enough that a loaded machine's pauses do not give them back before a
    test looks (20 ms by default)."""
    monkeypatch.setattr(limits, "KEEP_SECONDS", 0.5)


def _settle_kept(given_back: Callable[[], bool] = lambda: True) -> None:
    """Until the keeper has given back every place nobody took, and ``given_back`` says the
    backend has them (the keeper takes a place off its list, then releases it)."""
    deadline = time.monotonic() + 10
    while (len(limits._kept) or not given_back()) and time.monotonic() < deadline:
        time.sleep(0.01)


def _held_in_turn(backend, times: int) -> Counting:
    """``times`` holders of run-1 in this process, one after another."""
    using = Counting(backend)
    bound = Slot(f"host:{uuid.uuid4().hex}", 2, using=using)
    with limits.run_scope("run-1"):
        for _ in range(times):
            with bound:
                pass
    return using


@pytest.mark.usefixtures("kept_a_while")
def test_a_place_given_back_serves_the_next_holder_of_its_run_in_the_process(shared):
    using = _held_in_turn(shared, 5)
    assert (using.acquired, using.released) == (1, 0)  # kept between the holders
    _settle_kept(lambda: using.released == 1)
    assert (using.acquired, using.released) == (1, 1)  # nobody took it: given back
    assert len(limits._kept) == 0


@pytest.mark.usefixtures("kept_a_while")
def test_a_kept_place_counts_as_held_until_it_is_given_back(tmp_path):
    key = f"host:{uuid.uuid4().hex}"
    with Slot(key, 1, using=FileLockBackend(tmp_path)):
        pass
    elsewhere = FileLockBackend(tmp_path)  # files of its own: another process's view
    assert elsewhere.try_acquire(key, 1) is None
    deadline = time.monotonic() + 10
    while (token := elsewhere.try_acquire(key, 1)) is None and time.monotonic() < deadline:
        time.sleep(0.01)  # until the keeper gives the place back
    assert token is not None


def test_a_place_is_kept_for_its_own_run_only(shared):
    using = Counting(shared)
    bound = Slot(f"host:{uuid.uuid4().hex}", 2, using=using)
    with limits.run_scope("run-1"), bound:
        pass
    with limits.run_scope("run-2"), bound:
        pass
    assert using.acquired == 2
    _settle_kept(lambda: using.released == 2)
    assert using.released == 2


def test_a_place_granted_while_another_run_waited_goes_back_at_once(shared):
    key = f"host:{uuid.uuid4().hex}"
    first = shared.try_acquire(key, 1, Claim("run-1"))
    waiter = Claim("run-2")
    assert shared.try_acquire(key, 1, waiter) is None  # run-2 now waits for the key
    shared.release(key, first)
    using = Counting(shared)
    with limits.run_scope("run-1"), Slot(key, 1, using=using):  # both hold none: run-1 may
        pass
    assert using.released == 1  # not kept: run-2's turn is next
    token = shared.try_acquire(key, 1, waiter)
    assert token is not None
    shared.release(key, token)


def test_redis_says_whether_another_run_waited_for_the_place_it_grants():
    _redis_or_skip()
    backend = RedisBackend(REDIS_URL)
    key = f"host:{uuid.uuid4().hex}"
    alone = backend.try_acquire(key, 1, Claim("run-1"))
    assert alone.contended is False
    assert backend.try_acquire(key, 1, Claim("run-2")) is None  # full: run-2 waits
    backend.release(key, alone)
    contended = backend.try_acquire(key, 1, Claim("run-1"))  # neither holds any: run-1 may
    assert contended.contended is True
    backend.release(key, contended)


def test_a_place_older_than_keep_at_most_goes_back_through_the_backend(shared, monkeypatch):
    monkeypatch.setattr(limits, "KEEP_AT_MOST", 0.0)
    using = _held_in_turn(shared, 3)
    assert (using.acquired, using.released) == (3, 3)


@pytest.mark.usefixtures("kept_a_while")
def test_a_worker_gives_its_kept_places_back_after_each_task(shared):
    from django_q.signals import post_execute_in_worker

    using = Counting(shared)
    with limits.run_scope("run-1"), Slot(f"host:{uuid.uuid4().hex}", 2, using=using):
        pass
    assert using.released == 0
    post_execute_in_worker.send(sender="django_q", func=print, task={})
    assert using.released == 1


def _hold_once_and_end(key: str, done) -> None:
    with limits.run_scope("run-1"), Slot(key, 1, using=RedisBackend(REDIS_URL)):
        pass
    done.set()  # then the process ends through os._exit, as multiprocessing's children do


def test_a_process_that_ends_gives_its_kept_places_back():
    """Else a place in Redis would stay taken until its lease lapsed (300 s by default)."""
    _redis_or_skip()
    key = f"host:{uuid.uuid4().hex}"
    context = multiprocessing.get_context("fork")
    done = context.Event()
    child = context.Process(target=_hold_once_and_end, args=(key, done))
    child.start()
    assert done.wait(30)
    child.join(timeout=10)
    backend = RedisBackend(REDIS_URL)
    token = backend.try_acquire(key, 1)
    assert token is not None
    backend.release(key, token)


def _kept_places(queue) -> None:
    queue.put(len(limits._kept))


@pytest.mark.usefixtures("kept_a_while")
def test_a_forked_child_does_not_take_its_parents_kept_places(tmp_path):
    with (
        limits.run_scope("run-1"),
        Slot(f"host:{uuid.uuid4().hex}", 2, using=FileLockBackend(tmp_path)),
    ):
        pass
    assert len(limits._kept) == 1
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_kept_places, args=(queue,))
    child.start()
    assert queue.get(timeout=30) == 0
    child.join(timeout=10)
    _settle_kept()
