"""Independent steps of one piece of work run at once: their network calls overlap, their
database work does not.

``with together() as start:`` opens a group of branches; ``start(fn, *args)`` runs ``fn`` in a
thread of its own and returns a ``Branch`` whose ``result()`` waits for it (and raises what it
raised); the block ends once every branch has ended. A branch uses the caller's database
connection, so it sees what the caller's transaction sees (a test's too) and its writes are the
caller's. One baton per group makes that safe: whoever runs Python code holds it, and a holder
hands it on only while it waits on the network (``waiting()``, which every bounded outbound call
enters: ``relay_project.limits``) or on another branch. Database work is therefore never
concurrent, and a branch may not wait on the network inside a transaction it opened (that would
be a lock held across HTTP): ``waiting()`` refuses it.

Each branch runs in a copy of the starter's context: the run its calls count toward
(``limits.run_scope``), the item its log lines name.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Generic, Protocol, TypeVar

from django.db import connections

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
# Branches of one group at most (the provision stage starts about five; more wait their turn).
MAX_BRANCHES = 8

_baton: contextvars.ContextVar[_Baton | None] = contextvars.ContextVar(
    "relay_branch_baton", default=None
)
# where the holder stood in transactions when it took up its part (waiting() compares)
_held_depth: contextvars.ContextVar[tuple] = contextvars.ContextVar("relay_branch_depth")


class _Baton:
    """The right to run code that may touch the shared connections; who holds it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.holder: int | None = None
        self.connections = list(connections.all())

    def take(self) -> None:
        self.lock.acquire()
        self.holder = threading.get_ident()

    def hand_on(self) -> None:
        self.holder = None
        self.lock.release()

    def depth(self) -> tuple:
        """Where the holder stands in transactions (the same whenever it lets go)."""
        return tuple((c.in_atomic_block, len(c.savepoint_ids)) for c in self.connections)


class Later(Protocol[T_co]):
    """A value that is, or will be, known: a ``Branch`` or a ``Ready``."""

    def result(self) -> T_co: ...


class Branch(Generic[T]):
    def __init__(self, future: Future) -> None:
        self._future = future
        self.taken = False

    def result(self) -> T:
        """The branch's value (or its exception), once it has ended."""
        self.taken = True
        with waiting():
            return self._future.result()

    def abandon(self) -> None:
        """Its value is not needed after all (it was started ahead): whatever it ends with,
        even an exception, is dropped."""
        self.taken = True


class Ready(Generic[T]):
    """A value already known, where a ``Branch`` could stand."""

    def __init__(self, value: T) -> None:
        self._value = value

    def result(self) -> T:
        return self._value


@contextmanager
def waiting() -> Iterator[None]:
    """Around a wait on something outside (the network, a bound's free place, another branch):
    the other branches of the group may run meanwhile. Outside any group: nothing."""
    baton = _baton.get()
    if baton is None or baton.holder != threading.get_ident():
        yield  # no group, or a thread of its own (e.g. a probe thread) that holds nothing
        return
    if baton.depth() != _held_depth.get():
        raise RuntimeError("a branch waits on the network inside a transaction it opened")
    baton.hand_on()
    try:
        yield
    finally:
        baton.take()


@contextmanager
def locked(lock: threading.Lock) -> Iterator[None]:
    """``with lock:`` for a lock whose holder may wait on the network: the lock is awaited
    without the baton (else a holder waiting for the baton and a branch holding the baton
    while it waits for the lock would wait for each other)."""
    with waiting():
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


@contextmanager
def together() -> Iterator[Callable[..., Branch]]:
    """A group of branches (module docstring); the caller is one of them while inside. A
    branch's exception nobody asked for with ``result()`` is raised when the block ends."""
    outer = _baton.get()
    nested = outer is not None and outer.holder == threading.get_ident()
    baton = outer if nested else _Baton()
    if not nested:
        baton.take()
        for connection in baton.connections:
            connection.inc_thread_sharing()
    token = _baton.set(baton)
    depth_token = _held_depth.set(baton.depth())
    branches: list[Branch] = []
    pool = ThreadPoolExecutor(max_workers=MAX_BRANCHES, thread_name_prefix="branch")

    def start(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Branch[T]:
        context = contextvars.copy_context()
        branch = Branch(pool.submit(context.run, _run_branch, baton, fn, args, kwargs))
        branches.append(branch)
        return branch

    try:
        yield start
    finally:
        with waiting():
            pool.shutdown(wait=True)
        _held_depth.reset(depth_token)
        _baton.reset(token)
        if not nested:
            for connection in baton.connections:
                connection.dec_thread_sharing()
            baton.hand_on()
    for branch in branches:
        if not branch.taken:
            branch.result()


def _run_branch(baton: _Baton, fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
    for connection in baton.connections:
        connections[connection.alias] = connection
    baton.take()
    try:
        _baton.set(baton)
        _held_depth.set(baton.depth())
        return fn(*args, **kwargs)
    finally:
        baton.hand_on()
        for connection in baton.connections:
            del connections[connection.alias]
