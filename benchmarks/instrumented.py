"""``python -m benchmarks.instrumented qcluster``: a qcluster whose processes write down, for
the bench's critical-path analysis (``benchmarks.trace``), what each item waited on.

Bench only: nothing here is imported by the product. Every worker process appends to
``$BENCH_TRACE_DIR/<pid>.jsonl`` one line per

- ``call``: an outbound HTTP exchange (start, end, host or upstream, path) of an item,
- ``sleep``: a ``time.sleep`` in an item's thread (start, end, the function that slept and,
  for the worker's wait before a retry, the item's stage),
- ``advance``: one ``advance_item`` of an item (start, end, outcome, and the start and end of
  each of its thread's SQL statements and commits: time in the database, lock waits included),

for the items it traces: one in ``$BENCH_TRACE_ONE_IN`` (chosen by the item's id; default
every item), since timing and writing down each of them costs the worker side CPU the bench
measures (about 1 ms per item traced: docs/performance.md). Every second it rewrites
``<pid>.totals.json`` with what it counted of every item, traced or not: its SQL statements so
far, split into statements run for an item and the rest (the broker's polling, the cluster's
own bookkeeping), and its advances (how many, their seconds, the first start, the last end,
their outcomes).

The item an exchange belongs to comes from a context variable set around ``advance_item``;
thread pools copy the submitting thread's context so probe threads keep it.
"""

from __future__ import annotations

import contextvars
import json
import os
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACE_DIR = Path(os.environ.get("BENCH_TRACE_DIR", "."))
# The item being advanced in this context when it is traced (else None)...
_item: contextvars.ContextVar[str | None] = contextvars.ContextVar("bench_item", default=None)
# ... and whether an item, traced or not, is: its statements count as the items'.
_advancing: contextvars.ContextVar[bool] = contextvars.ContextVar("bench_adv", default=False)
ONE_IN = max(1, int(os.environ.get("BENCH_TRACE_ONE_IN", "1")))
# (start, end) of each statement and commit of the item being advanced in this context.
_database: contextvars.ContextVar[list | None] = contextvars.ContextVar("bench_db", default=None)
_real_sleep = time.sleep
_clock = time.time  # one clock across processes: wall time
_files: dict[int, object] = {}
_files_lock = threading.Lock()
_totals: dict = {}
_totals_lock = threading.Lock()


def _zero_totals() -> None:
    _totals.clear()
    _totals.update(
        sql_item=0, sql_other=0, advances=0, advance_s=0.0, first=None, last=None, outcomes={}
    )


_zero_totals()


def traced(item_id: str, one_in: int) -> bool:
    """Whether the item ``item_id`` is one of the one in ``one_in`` the trace writes down: the
    same answer in every process (its id's CRC-32), whichever worker advances it."""
    return one_in <= 1 or zlib.crc32(item_id.encode()) % one_in == 0


def _handle():
    """This process's trace file (opened on first use after a fork, with the thread that
    writes its SQL counts)."""
    pid = os.getpid()
    handle = _files.get(pid)
    if handle is None:
        with _files_lock:
            handle = _files.get(pid)
            if handle is None:
                handle = open(TRACE_DIR / f"{pid}.jsonl", "a", buffering=1)  # noqa: SIM115
                _files.clear()  # a fork's inherited handle belongs to its parent
                _files[pid] = handle
                with _totals_lock:
                    _zero_totals()
                threading.Thread(target=_write_totals, args=(pid,), daemon=True).start()
    return handle


def _write(record: dict) -> None:
    _handle().write(json.dumps(record, separators=(",", ":")) + "\n")


def _write_totals(pid: int) -> None:
    path = TRACE_DIR / f"{pid}.totals.json"
    while True:
        _real_sleep(1.0)
        with _totals_lock:
            totals = json.dumps(_totals)
        path.write_text(totals)


def _count_advance(started: float, ended: float, outcome: str) -> None:
    with _totals_lock:
        _totals["advances"] += 1
        _totals["advance_s"] += ended - started
        _totals["first"] = started if _totals["first"] is None else min(_totals["first"], started)
        _totals["last"] = ended if _totals["last"] is None else max(_totals["last"], ended)
        _totals["outcomes"][outcome] = _totals["outcomes"].get(outcome, 0) + 1


def _sleep(seconds: float) -> None:
    item = _item.get()
    if item is None:
        return _real_sleep(seconds)
    caller = sys._getframe(1)
    where = f"{caller.f_globals.get('__name__')}.{caller.f_code.co_name}"
    owner = caller.f_locals.get("item")
    stage = getattr(owner, "current_stage", None)
    started = _clock()
    try:
        return _real_sleep(seconds)
    finally:
        _write(
            {"k": "sleep", "item": item, "t0": started, "t1": _clock(), "at": where, "st": stage}
        )


def _copying_submit(submit):
    def wrapped(self, fn, /, *args, **kwargs):
        return submit(self, contextvars.copy_context().run, fn, *args, **kwargs)

    return wrapped


def install() -> None:
    time.sleep = _sleep  # before the product's modules bind it as a default argument
    ThreadPoolExecutor.submit = _copying_submit(ThreadPoolExecutor.submit)

    import httpx

    from relay_project.pooled_http import PooledTransport

    for transport in (httpx.HTTPTransport, PooledTransport):
        transport.handle_request = _traced(transport.handle_request)


def _traced(send):
    """``send`` (a transport's ``handle_request``), each call noted for the item it serves."""

    def handle_request(self, request):
        item = _item.get()
        if item is None:
            return send(self, request)
        started = _clock()
        try:
            return send(self, request)
        finally:
            from relay_project.logging import _context

            _write(
                {
                    "k": "call",
                    "item": item,
                    "t0": started,
                    "t1": _clock(),
                    "port": request.url.port,
                    "path": request.url.path,
                    "st": _context.get().get("stage"),
                }
            )

    return handle_request


def _timed(run, *args, **kwargs):
    """``run(*args, **kwargs)``, its start and end noted for the item being advanced."""
    spans = _database.get()
    if spans is None:
        return run(*args, **kwargs)
    started = _clock()
    try:
        return run(*args, **kwargs)
    finally:
        spans.append((round(started, 6), round(_clock(), 6)))


def install_after_setup() -> None:
    from django.db.backends import utils
    from django.db.backends.base.base import BaseDatabaseWrapper

    from batch_import import tasks

    for name in ("execute", "executemany"):
        original = getattr(utils.CursorWrapper, name)

        def counted(self, *args, _original=original, **kwargs):
            _handle()
            with _totals_lock:
                _totals["sql_item" if _advancing.get() else "sql_other"] += 1
            return _timed(_original, self, *args, **kwargs)

        setattr(utils.CursorWrapper, name, counted)
    commit = BaseDatabaseWrapper.commit
    BaseDatabaseWrapper.commit = lambda self: _timed(commit, self)

    advance = tasks.advance_item

    def advance_item(item_id, *args, **kwargs):
        item = str(item_id)
        _handle()  # this process's totals are written from its first advance on
        counting = _advancing.set(True)
        tracing = traced(item, ONE_IN)
        if tracing:
            token, database = _item.set(item), _database.set([])
        started = _clock()
        outcome = "error"
        try:
            outcome = advance(item_id, *args, **kwargs)
            return outcome
        finally:
            ended = _clock()
            _count_advance(started, ended, outcome)
            if tracing:
                record = {"k": "advance", "item": item, "t0": started, "t1": ended}
                _write({**record, "o": outcome, "db": _database.get()})
                _database.reset(database)
                _item.reset(token)
            _advancing.reset(counting)

    tasks.advance_item = advance_item


def main() -> None:
    install()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relay_project.settings")
    import django

    django.setup()
    install_after_setup()
    from django.core.management import execute_from_command_line

    execute_from_command_line([str(ROOT / "manage.py"), *sys.argv[1:]])


if __name__ == "__main__":
    main()
