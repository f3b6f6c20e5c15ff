"""Concurrency bounds that hold across every process and machine of one deployment, shared
fairly between the runs that contend for them.

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

Fair sharing between runs (both shared backends). A holder belongs to the run named by
``run_scope(run_id)`` around it (the worker sets it around each item; outside any run the
holder belongs to the anonymous run ``""``). A caller that finds no place registers itself as
waiting for its run while it polls. The rule, decided atomically per key:

    a free place goes to a run only when no *other waiting* run holds fewer places of that key.

So a run with 1,000 items waiting cannot crowd out a 5-item run started after it: each freed
place goes to the run holding fewest, and contending runs converge to about ``size / runs``
places each (within one). It is work-conserving: a run that stops waiting leaves its share to the
others, and a lone run uses the whole bound. A place may stay free for one polling pause while
the run entitled to it polls. Waiting registrations of a dead process vanish with it (files: a
``flock`` the kernel drops; Redis: entries scored by an expiry each poll refreshes).

A place given back stays with its process for a moment (``KEEP_SECONDS``, 20 ms) for the
next holder of the same key and run there, who takes it without asking the backend: a worker
calls the same host several times per item, 32 items side by side, and each place taken and
given back was a Lua call and a ``ZREM`` (a mutex and two ``flock`` on files). A kept place
counts as held, so the bound holds as before; it goes back to the backend once nobody of its
process took it within that moment, at once when another run was waiting when the backend
gave it, and in any case ``KEEP_AT_MOST`` after the backend gave it, so a run that starts
waiting meanwhile gets its share within that time.

Waiting polls with a short, growing pause; the bounds are small (2-8) and holders are single
HTTP exchanges, so a queue would buy little over polling. Within one process, the callers
refused a place of one key for one run poll one at a time (``_Turns``).
"""

from __future__ import annotations

import atexit
import contextvars
import fcntl
import hashlib
import itertools
import logging
import multiprocessing.util
import os
import random
import threading
import time
import uuid
import weakref
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings

from relay_project.branches import waiting

logger = logging.getLogger(__name__)

# A lease outlives any single HTTP exchange (timeouts are seconds): it only matters when the
# holder died, and then it bounds how long its place stays taken.
DEFAULT_LEASE_SECONDS = 300.0
# A waiting registration in Redis outlives many polls (at most POLL_MAX apart): it only lapses
# when its waiter died, and until then it holds other runs back from places beyond their share.
DEFAULT_WAIT_SECONDS = 2.0
# Keys whose files a process keeps open beyond their use (``FileLockBackend._files``).
KEPT_KEYS = 32
# A place given back waits this long in its process for the next holder of its key and run
# there (module docstring), and goes back through the backend at least this often.
KEEP_SECONDS = 0.02
KEEP_AT_MOST = 0.5
POLL_FIRST = 0.005
POLL_MAX = 0.1

# fair_turn below, in one Lua call with the bound: 1 when a place is granted, 2 when granted
# while another run waits for the key (the place is not kept: ``_KeptPlaces``), else 0.
# Members are "<run>|<32 hex>" (a lease token or a waiter id: ``unique_id``), so the run is
# all but the last 33 characters whatever it contains.
_ACQUIRE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local size, lease_ms, run = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local waiter = ARGV[6]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms)
local held = redis.call('ZRANGE', KEYS[1], 0, -1)
if #held < size then
  local holding = {}
  for _, member in ipairs(held) do
    local owner = string.sub(member, 1, -34)
    holding[owner] = (holding[owner] or 0) + 1
  end
  local mine = holding[run] or 0
  local turn, others = true, false
  for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    local other = string.sub(member, 1, -34)
    if other ~= run then
      others = true
      if (holding[other] or 0) < mine then
        turn = false
        break
      end
    end
  end
  if turn then
    redis.call('ZADD', KEYS[1], now_ms + lease_ms, run .. '|' .. ARGV[4])
    redis.call('PEXPIRE', KEYS[1], lease_ms)
    if waiter ~= '' then
      redis.call('ZREM', KEYS[2], run .. '|' .. waiter)
    end
    if others then
      return 2
    end
    return 1
  end
end
if waiter ~= '' then
  redis.call('ZADD', KEYS[2], now_ms + tonumber(ARGV[5]), run .. '|' .. waiter)
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]))
end
return 0
"""

_run: contextvars.ContextVar[str] = contextvars.ContextVar("relay_slot_run", default="")


@contextmanager
def run_scope(run_id: str) -> Iterator[None]:
    """Every slot taken inside belongs to run ``run_id`` for fair sharing (module docstring).
    Threads started inside see it only through ``contextvars.copy_context()``."""
    token = _run.set(str(run_id))
    try:
        yield
    finally:
        _run.reset(token)


def current_run() -> str:
    return _run.get()


class _UniqueIds:
    """32 hex digits no other holder or waiter of any process or machine has (the Redis script
    takes a member's last 33 characters for "|<id>"): 64 random bits of this process (drawn
    again in a forked child) and a counter. A place is taken about six times per item,
    each with a waiter id (and in Redis a token): ``uuid4`` read the kernel's random source
    for each."""

    def __init__(self) -> None:
        self._forget()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        # Drawn at the first id, not in the fork: a forked child runs this before anything.
        self._prefix: str | None = None
        self._counter = itertools.count()

    def __call__(self) -> str:
        prefix = self._prefix
        if prefix is None:  # two threads at once: two prefixes, each id still unique
            prefix = self._prefix = uuid.uuid4().hex[:16]
        return f"{prefix}{next(self._counter):016x}"


unique_id = _UniqueIds()


@dataclass(frozen=True)
class Claim:
    """One caller waiting for a place: the run it works for, and its own waiter id (kept
    registered as waiting between failed attempts until it gets a place or withdraws)."""

    run: str = ""
    waiter: str = field(default_factory=unique_id)


def fair_turn(run: str, holding: Counter[str], waiting_runs: Iterable[str]) -> bool:
    """Whether a free place may go to ``run``: no other waiting run holds fewer places."""
    mine = holding[run]
    return all(holding[other] >= mine for other in waiting_runs if other != run)


class Backend(Protocol):
    def try_acquire(self, key: str, size: int, claim: Claim | None = None) -> object | None:
        """A token when a place is free and it is ``claim``'s run's turn, else ``None`` (and
        ``claim`` stays registered as waiting). Without a claim: the anonymous run, and a
        refusal registers nothing. A shared backend's token says whether another run was
        waiting (``contended``); a token without that says is never kept (``_KeptPlaces``)."""

    def release(self, key: str, token: object) -> None: ...

    def withdraw(self, key: str, claim: Claim) -> None:
        """``claim`` stops waiting without a place (its caller gave up)."""


class LocalBackend:
    """Semaphores of this process only (no settings: nothing to share through, and no runs
    to be fair between)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._semaphores: dict[tuple[str, int], threading.BoundedSemaphore] = {}

    def _semaphore(self, key: str, size: int) -> threading.BoundedSemaphore:
        with self._lock:
            return self._semaphores.setdefault((key, size), threading.BoundedSemaphore(size))

    def try_acquire(self, key: str, size: int, claim: Claim | None = None) -> object | None:
        semaphore = self._semaphore(key, size)
        return semaphore if semaphore.acquire(blocking=False) else None

    def release(self, key: str, token: object) -> None:
        token.release()  # type: ignore[attr-defined]

    def withdraw(self, key: str, claim: Claim) -> None:
        pass


# Every FileLockBackend of this process: a forked child drops the files its parent opened.
_forked_children_forget: weakref.WeakSet[FileLockBackend] = weakref.WeakSet()
os.register_at_fork(
    after_in_child=lambda: [each.forget_inherited() for each in list(_forked_children_forget)]
)


class _KeyFiles:
    """One key's files as this process keeps them open: the mutex and the places' lock files,
    each opened once, where every decision opened the mutex and a place's file and closed them
    again: four calls for each of the six or so places an item takes, each one handing the
    interpreter's lock to another of the worker's threads while it ran.

    A ``flock`` belongs to the open file, which every thread of the process shares: the
    threads of this process take decisions on the key one at a time (``lock``), and the places
    this process's holders have are known here (``held``: index → run), never asked of the
    file, where the process would find its own lock."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.lock = threading.Lock()
        self.mutex = os.open(f"{folder}/mutex", os.O_RDWR | os.O_CREAT, 0o600)
        self.places: dict[int, int] = {}  # index → its file, open
        self.held: dict[int, str] = {}
        self.closed = False  # put away (``FileLockBackend._files``): its caller asks again

    def place(self, index: int) -> int:
        fd = self.places.get(index)
        if fd is None:
            fd = self.places[index] = os.open(
                f"{self.folder}/{index}.lock", os.O_RDWR | os.O_CREAT, 0o600
            )
        return fd

    def close(self) -> None:
        self.closed = True
        for fd in (self.mutex, *self.places.values()):
            with suppress(OSError):
                os.close(fd)

    def close_if_idle(self) -> bool:
        """Closed unless a decision is under way or a holder of this process has a place."""
        if not self.lock.acquire(blocking=False):
            return False
        try:
            if self.held:
                return False
            self.close()
            return True
        finally:
            self.lock.release()


@dataclass(frozen=True)
class _Place:
    """A place a holder of this process has: the token ``FileLockBackend`` hands out."""

    files: _KeyFiles
    index: int
    contended: bool = False  # another run waited for the key when it was taken


class FileLockBackend:
    """``size`` lock files per key; one ``flock`` per held place, freed by the kernel on death.

    A holder writes its run into the lock file it holds; a waiter holds a ``flock`` on a file
    of its own under ``waiting/r<run in hex>/``. Every decision is taken under one
    ``flock``'ed mutex file per key, so reading who holds and who waits and taking a place are
    one step across processes. The files stay open in the process (``_KeyFiles``); a forked
    child opens its own.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._waiting: dict[str, tuple[int, str]] = {}  # waiter id → its registration
        # key → its files, the most recently used last. Paths are plain strings here: a place
        # is taken about six times per item, and joining ``Path``s cost more than the calls.
        self._keys: OrderedDict[str, _KeyFiles] = OrderedDict()
        self._keys_lock = threading.Lock()
        _forked_children_forget.add(self)

    def _files(self, key: str) -> _KeyFiles:
        """The key's files, opened on first use. Beyond ``KEPT_KEYS`` keys (a run's upstreams
        can be thousands, and a process opens about a thousand files at most), the least
        recently used ones that nobody of this process holds or decides on are closed."""
        with self._keys_lock:
            files = self._keys.get(key)
            if files is not None:
                self._keys.move_to_end(key)
                return files
            folder = str(self.directory / hashlib.sha256(key.encode()).hexdigest()[:32])
            os.makedirs(f"{folder}/waiting", exist_ok=True)
            files = self._keys[key] = _KeyFiles(folder)
            for old in list(self._keys)[: max(0, len(self._keys) - KEPT_KEYS)]:
                if self._keys[old].close_if_idle():
                    del self._keys[old]
            return files

    def forget_inherited(self) -> None:
        """In a forked child: the parent's open files are the parent's (a ``flock`` on them
        is the parent's too); this process opens its own. Its waiting registrations too."""
        for files in self._keys.values():
            files.close()  # the child's copies: the parent's locks stay with the parent
        self._keys = OrderedDict()
        self._keys_lock = threading.Lock()
        for fd, _path in self._waiting.values():
            with suppress(OSError):
                os.close(fd)
        self._waiting = {}

    @contextmanager
    def _decision(self, key: str) -> Iterator[_KeyFiles]:
        while True:
            files = self._files(key)
            with files.lock:
                if files.closed:  # put away meanwhile: open them again
                    continue
                fcntl.flock(files.mutex, fcntl.LOCK_EX)
                try:
                    yield files
                finally:
                    fcntl.flock(files.mutex, fcntl.LOCK_UN)
                return

    def try_acquire(self, key: str, size: int, claim: Claim | None = None) -> object | None:
        run = claim.run if claim else ""
        with self._decision(key) as files:
            others = self._waiting_runs(files.folder, besides=run)
            # Who holds how many only matters when another run waits; else any free place.
            free, holding = self._places(files, size, census=bool(others))
            if free is not None and fair_turn(run, holding, others):
                _name_holder(files.place(free), run.encode())
                files.held[free] = run
                if claim:
                    self._unregister(claim)
                return _Place(files, free, contended=bool(others))
            if free is not None:
                fcntl.flock(files.place(free), fcntl.LOCK_UN)
            if claim and claim.waiter not in self._waiting:
                self._register(files.folder, claim)
            return None

    def release(self, key: str, token: object) -> None:
        place: _Place = token  # type: ignore[assignment]
        files = place.files
        # Unlocked before it is forgotten: a thread of this process that took the index in
        # between would take the open file's lock as its own, and lose it to this unlock.
        fcntl.flock(files.place(place.index), fcntl.LOCK_UN)
        with files.lock:
            del files.held[place.index]

    def withdraw(self, key: str, claim: Claim) -> None:
        self._unregister(claim)

    def _places(
        self, files: _KeyFiles, size: int, *, census: bool = True
    ) -> tuple[int | None, Counter[str]]:
        """One free place locked for us (or ``None``), and, with ``census``, how many places
        each run holds. Without it the search starts at a random place and stops at the first
        free one: a few files tried instead of ``size``."""
        free: int | None = None
        holding: Counter[str] = Counter()
        start = 0 if census else random.randrange(size)  # noqa: S311 - spreads, not secret
        for index in (*range(start, size), *range(start)):
            mine = files.held.get(index)
            if mine is not None:
                holding[mine] += 1
                continue
            fd = files.place(index)
            if free is None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pass
                else:
                    free = index
                    if not census:
                        break
                    continue
            elif _is_free(fd):
                continue
            holding[os.pread(fd, 4096, 0).decode(errors="replace")] += 1
        return free, holding

    def _waiting_runs(self, folder: str, besides: str) -> set[str]:
        """The runs other than ``besides`` with a live waiter (one live file per run is
        enough); a dead waiter's file met on the way (its flock gone) is removed."""
        runs = set()
        waiting = f"{folder}/waiting"
        if os.stat(waiting).st_nlink == 2:
            # No run's folder in it (a directory links to itself and from its parent, and
            # once more from each subdirectory; where a file system counts no links, it says 1).
            return runs
        for name in os.listdir(waiting):
            run = bytes.fromhex(name.removeprefix("r")).decode(errors="replace")
            if run == besides:
                continue
            for waiter in os.listdir(f"{waiting}/{name}"):
                path = f"{waiting}/{name}/{waiter}"
                try:
                    fd = os.open(path, os.O_RDWR)
                except FileNotFoundError:
                    continue
                try:
                    if not _is_free(fd):
                        runs.add(run)
                        break
                    with suppress(FileNotFoundError):
                        os.unlink(path)
                finally:
                    os.close(fd)
            else:
                with suppress(OSError):  # a run nobody waits for any more leaves no folder
                    os.rmdir(f"{waiting}/{name}")
        return runs

    def _register(self, folder: str, claim: Claim) -> None:
        runs = f"{folder}/waiting/r{claim.run.encode().hex()}"
        with suppress(FileExistsError):
            os.mkdir(runs)
        path = f"{runs}/{claim.waiter}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._waiting[claim.waiter] = (fd, path)

    def _unregister(self, claim: Claim) -> None:
        registration = self._waiting.pop(claim.waiter, None)
        if registration is not None:
            fd, path = registration
            with suppress(FileNotFoundError):
                os.unlink(path)
            os.close(fd)


def _name_holder(fd: int, run: bytes) -> None:
    """Write ``run`` into the lock file of a place just taken, unless it names ``run`` already
    (a run's items take the same places over and over): truncating a file waits on the file
    system's journal, milliseconds on a busy machine, and it happens under the key's mutex."""
    if os.pread(fd, len(run) + 1, 0) != run:
        os.ftruncate(fd, 0)
        os.pwrite(fd, run, 0)


def _is_free(fd: int) -> bool:
    """Whether nobody holds a ``flock`` on the file (checked by taking and dropping one)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return True


@dataclass(frozen=True)
class _Lease:
    """A place a holder has in Redis: the token ``RedisBackend`` hands out (its member in the
    key's sorted set)."""

    member: str
    contended: bool = False  # another run waited for the key when it was granted


class RedisBackend:
    """Leases in one sorted set per key, on the Redis clock (machines' clocks may differ);
    waiters in a second sorted set per key, scored by when their registration lapses.

    Each thread sends its commands on a connection of its own, made as redis-py's client
    makes its pool's (URL, TLS, timeouts), one per thread and process: the client checks a
    pooled connection out and in under a lock, polls it for stray data and runs the command
    through its retry and reply layers, ≈ 45 µs of CPU per command more than this path (an
    item makes 8 calls, each an acquire and a release: README, Benchmarks). Like the
    client's, a command that meets a broken connection is sent once more on a new one."""

    def __init__(
        self,
        url: str,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
    ) -> None:
        self.url = url
        self.lease_ms = int(lease_seconds * 1000)
        self.wait_ms = max(1, int(wait_seconds * 1000))
        self._thread = threading.local()
        self._acquire_sha = hashlib.sha1(_ACQUIRE.encode(), usedforsecurity=False).hexdigest()

    def _connection(self) -> Any:
        """This thread's connection (a forked child's threads make their own: the parent's
        socket is not theirs)."""
        held = getattr(self._thread, "held", None)
        if held is None or held[0] != os.getpid():
            import redis

            pool = redis.ConnectionPool.from_url(self.url)
            held = self._thread.held = (os.getpid(), pool.make_connection())
        return held[1]

    def _command(self, *args: Any) -> Any:
        import redis

        connection = self._connection()
        try:
            connection.send_command(*args)
            return connection.read_response()
        except (redis.ConnectionError, redis.TimeoutError):
            connection.disconnect()  # the next send connects afresh
            connection.send_command(*args)
            return connection.read_response()

    def try_acquire(self, key: str, size: int, claim: Claim | None = None) -> object | None:
        import redis

        run = claim.run if claim else ""
        token = unique_id()
        script = (
            2,
            f"relay:slot:{key}",
            f"relay:slot-waiting:{key}",
            size,
            self.lease_ms,
            run,
            token,
            self.wait_ms,
            claim.waiter if claim else "",
        )
        try:
            granted = self._command("EVALSHA", self._acquire_sha, *script)
        except redis.exceptions.NoScriptError:  # a new or flushed Redis: the script once more
            self._command("SCRIPT", "LOAD", _ACQUIRE)
            granted = self._command("EVALSHA", self._acquire_sha, *script)
        return _Lease(f"{run}|{token}", contended=granted == 2) if granted else None

    def release(self, key: str, token: object) -> None:
        lease: _Lease = token  # type: ignore[assignment]
        self._command("ZREM", f"relay:slot:{key}", lease.member)

    def withdraw(self, key: str, claim: Claim) -> None:
        self._command("ZREM", f"relay:slot-waiting:{key}", f"{claim.run}|{claim.waiter}")


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


class _Turns:
    """Which of this process's callers refused a place of one key for one run polls the
    backend: one at a time, the others wait their turn on a lock. Each poll is a script call
    (Redis) or a mutex and a few files (lock files); 32 item threads polling side by side for
    the host's places spent a tenth of a worker's CPU on script calls, most of them refused.
    The run stays registered as waiting through its poller, so fair sharing between runs is
    decided as before."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turns: dict[tuple, list] = {}  # (backend, key, run) → [its lock, callers in line]

    @contextmanager
    def turn(self, line: tuple) -> Iterator[None]:
        with self._lock:
            entry = self._turns.setdefault(line, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._lock:
                entry[1] -= 1
                if not entry[1]:
                    del self._turns[line]


_turns = _Turns()


@dataclass(slots=True)
class _Held:
    """A place a holder of this process has, or that waits in it for the next (``_KeptPlaces``)."""

    token: object
    granted: float  # when the backend gave it (``time.monotonic``)
    kept_until: float = 0.0


# A key's places for one run through one backend: (backend, key, size, run).
_Line = tuple[Backend, str, int, str]


class _KeptPlaces:
    """The places this process's holders gave back, each kept ``KEEP_SECONDS`` for the next
    holder of its key and run here (module docstring); a thread of its own gives back to the
    backend those nobody took in time. A forked child starts with none: the parent's are the
    parent's to give back."""

    def __init__(self) -> None:
        self._forget()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        # (backend, key, size, run) → its places, the longest kept first
        self._idle: dict[_Line, list[_Held]] = {}
        self._keeper: threading.Thread | None = None
        self._keeper_sleeps = False  # until told: it keeps nothing

    def __len__(self) -> int:
        with self._lock:
            return sum(map(len, self._idle.values()))

    def take(self, line: _Line) -> _Held | None:
        """A kept place of ``line`` (the last given back), or None."""
        with self._lock:
            idle = self._idle.get(line)
            if not idle:
                return None
            held = idle.pop()
            if not idle:
                del self._idle[line]
            return held

    def give_back(self, line: _Line, held: _Held) -> None:
        """Keep ``held`` for the next holder of ``line``, or give it back to the backend now:
        when another run waited for it as it was granted, when it is older than
        ``KEEP_AT_MOST``, or when nothing is kept (``KEEP_SECONDS`` 0)."""
        now = time.monotonic()
        if (
            KEEP_SECONDS <= 0
            or getattr(held.token, "contended", True)
            or now - held.granted >= KEEP_AT_MOST
        ):
            line[0].release(line[1], held.token)
            return
        held.kept_until = now + KEEP_SECONDS
        with self._lock:
            self._idle.setdefault(line, []).append(held)
            if self._keeper is None:
                self._start_keeper()
            elif self._keeper_sleeps:
                self._keeper_sleeps = False
                self._changed.notify()

    def _start_keeper(self) -> None:
        """The keeper thread, and the places given back when the process exits: a process
        that ends within ``KEEP_SECONDS`` of its last holder would leave them taken (in Redis
        until their leases lapse). ``atexit`` for the interpreter's end; a ``multiprocessing``
        child (django-q2's workers among them) ends through ``os._exit`` after its
        finalizers."""
        self._keeper = threading.Thread(target=self._keep, name="relay-kept-places", daemon=True)
        self._keeper.start()
        atexit.register(self.give_all_back)
        multiprocessing.util.Finalize(None, self.give_all_back, exitpriority=100)

    def give_all_back(self) -> None:
        """Every kept place back to its backend now (a task's end: its process may exit)."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for line, places in idle.items():
            for held in places:
                self._release(line, held)

    def _keep(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                due: list[tuple[_Line, _Held]] = []
                soonest = None
                for line, places in list(self._idle.items()):
                    while places and places[0].kept_until <= now:
                        due.append((line, places.pop(0)))
                    if places:
                        first = places[0].kept_until
                        soonest = first if soonest is None else min(soonest, first)
                    else:
                        del self._idle[line]
                if not due:
                    self._keeper_sleeps = soonest is None
                    self._changed.wait(None if soonest is None else soonest - now)
                    continue
            for line, held in due:
                self._release(line, held)

    @staticmethod
    def _release(line: _Line, held: _Held) -> None:
        try:
            line[0].release(line[1], held.token)
        except Exception:  # a lease in Redis then lapses (RELAY_SLOT_LEASE_SECONDS)
            logger.exception("a kept place of %s could not be given back", line[1])


_kept = _KeptPlaces()


def give_kept_places_back() -> None:
    """The places this process keeps for its next holders, given back to the backend (a
    worker's task calls it as it ends: the process may exit before its keeper's next turn)."""
    _kept.give_all_back()


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
        """One place while the body (an outbound exchange) runs; the other branches of the
        caller's group (``relay_project.branches``) run meanwhile. A place this process keeps
        for the key and run is taken first (``_KeptPlaces``), and given back to be kept."""
        line = (self.backend, self.key, self.size, current_run())
        held = _kept.take(line) or self._acquire(line)
        try:
            with waiting():  # the exchange: the group's other branches run meanwhile
                yield
        finally:
            _kept.give_back(line, held)

    def _acquire(self, line: _Line) -> _Held:
        using, run = line[0], line[3]
        claim = Claim(run)
        with waiting():
            try:
                token = using.try_acquire(self.key, self.size, claim)
                if token is None:
                    with _turns.turn((id(using), self.key, run)):
                        pause = POLL_FIRST
                        while (token := using.try_acquire(self.key, self.size, claim)) is None:
                            if (kept := _kept.take(line)) is not None:
                                using.withdraw(self.key, claim)
                                return kept
                            time.sleep(pause)
                            pause = min(POLL_MAX, pause * 2)
            except BaseException:
                using.withdraw(self.key, claim)
                raise
        return _Held(token, time.monotonic())

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
