"""``python -m benchmarks.instrumented qcluster``: a qcluster whose processes write down, for
the bench's critical-path analysis (``benchmarks.trace``), what each item waited on.

Bench only: nothing here is imported by the product. Every worker process appends to
``$BENCH_TRACE_DIR/<pid>.jsonl`` one line per

- ``call``: an outbound HTTP exchange (start, end, host or upstream, path) of an item,
- ``sleep``: a ``time.sleep`` in an item's thread (start, end, the function that slept and,
  for the worker's wait before a retry, the item's stage),
- ``advance``: one ``advance_item`` of an item (start, end, outcome, and the start and end of
  each of its thread's SQL statements and commits: time in the database, lock waits included),
- ``sql``: this process's SQL statement count so far, split into statements run for an item
  and the rest (the broker's polling, the cluster's own bookkeeping), rewritten every second.

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACE_DIR = Path(os.environ.get("BENCH_TRACE_DIR", "."))
_item: contextvars.ContextVar[str | None] = contextvars.ContextVar("bench_item", default=None)
# (start, end) of each statement and commit of the item being advanced in this context.
_database: contextvars.ContextVar[list | None] = contextvars.ContextVar("bench_db", default=None)
_real_sleep = time.sleep
_clock = time.time  # one clock across processes: wall time
_files: dict[int, object] = {}
_files_lock = threading.Lock()
_sql = {"item": 0, "other": 0}
_sql_lock = threading.Lock()


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
                _sql.update(item=0, other=0)
                threading.Thread(target=_write_sql_counts, args=(pid,), daemon=True).start()
    return handle


def _write(record: dict) -> None:
    _handle().write(json.dumps(record, separators=(",", ":")) + "\n")


def _write_sql_counts(pid: int) -> None:
    path = TRACE_DIR / f"{pid}.sql.json"
    while True:
        _real_sleep(1.0)
        with _sql_lock:
            counts = json.dumps(_sql)
        path.write_text(counts)


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
            with _sql_lock:
                _sql["item" if _item.get() is not None else "other"] += 1
            return _timed(_original, self, *args, **kwargs)

        setattr(utils.CursorWrapper, name, counted)
    commit = BaseDatabaseWrapper.commit
    BaseDatabaseWrapper.commit = lambda self: _timed(commit, self)

    advance = tasks.advance_item

    def advance_item(item_id, *args, **kwargs):
        token, database = _item.set(str(item_id)), _database.set([])
        started = _clock()
        outcome = "error"
        try:
            outcome = advance(item_id, *args, **kwargs)
            return outcome
        finally:
            record = {"k": "advance", "item": str(item_id), "t0": started, "t1": _clock()}
            _write({**record, "o": outcome, "db": _database.get()})
            _database.reset(database)
            _item.reset(token)

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
