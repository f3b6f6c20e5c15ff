"""The floor of a Python control plane on this machine: per item the I/O the pipeline does
(``CALLS`` HTTP calls answered after the simulators' latency; 23 statements, four of the
writes in transactions: an item's claim, its stages' transitions, events and a resource),
written straight on the standard library's ``http.client`` and the database driver
(``psycopg`` or ``sqlite3``), no Django, no httpx, no pipeline logic, in as many processes ×
threads as the scenario's clusters run items.

The cluster scenarios print it beside their own figures (``benchmarks.cluster``): what the
same waits, calls and statements cost with nothing else, so ours / floor is what the framework
and the pipeline's own work add. ``python -m benchmarks.floor --help`` runs it alone; it
prints its figures as JSON.

The host's calls go to the upstream simulators too (a listing and a chat of the same sizes):
the host simulator needs a registered admin key and resources made step by step, and the
floor is about what a call costs, not what it means.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import resource
import sqlite3
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

CALLS = 8  # per item, as the pipeline's (README, Benchmarks): two per stage
CHAT = {"model": "kimi-k2.6", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
TABLES = ("floor_items", "floor_events", "floor_resources", "floor_counters")
SCHEMA = (
    "CREATE TABLE floor_items (item_id text PRIMARY KEY, run_id text, stage text,"
    " attempt integer, data text, lease_owner text, lease_until text, updated_at text)",
    "CREATE INDEX floor_items_run ON floor_items (run_id, stage)",
    "CREATE TABLE floor_events (event_id text PRIMARY KEY, run_id text, item_id text,"
    " event_type text, stage text, payload text, created_at text)",
    "CREATE INDEX floor_events_item ON floor_events (item_id, created_at)",
    "CREATE TABLE floor_resources (item_id text, kind text, host_id text, secret text)",
    "CREATE INDEX floor_resources_kind ON floor_resources (kind, host_id)",
    "CREATE TABLE floor_counters (shard integer PRIMARY KEY, done integer)",
)


def item_id(n: int) -> str:
    return f"item-{n:06d}"


class Database:
    """A connection per thread and the statements the floor runs, in the driver's dialect:
    PostgreSQL (``psycopg``, each statement prepared on the server, as the product prepares
    its statements by key) or SQLite (``sqlite3``, WAL, writers in ``BEGIN IMMEDIATE``, as
    the product's settings have it)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgresql = url.startswith(("postgres://", "postgresql://"))

    def connect(self) -> Any:
        if self.postgresql:
            import psycopg

            return psycopg.connect(self.url, autocommit=True)
        path = self.url.removeprefix("sqlite:///")
        connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def _dialect(self, text: str) -> str:
        if self.postgresql:
            return text
        return text.replace("%s", "?").replace("now()", "CURRENT_TIMESTAMP")

    def execute(self, connection: Any, text: str, params: Sequence = ()) -> list:
        if self.postgresql:
            with connection.cursor() as cursor:
                cursor.execute(text, params, prepare=True)
                return cursor.fetchall() if cursor.description else []
        cursor = connection.execute(self._dialect(text), params)
        return cursor.fetchall() if cursor.description else []

    def transaction(self, connection: Any, work: Callable[[], None]) -> None:
        if self.postgresql:
            with connection.transaction():
                work()
            return
        connection.execute("BEGIN IMMEDIATE")
        try:
            work()
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    @property
    def locked_item_read(self) -> str:
        """An item's row, locked until the transaction ends (SQLite: its write lock does)."""
        if self.postgresql:
            return "SELECT * FROM floor_items WHERE item_id = %s FOR UPDATE"
        return "SELECT * FROM floor_items WHERE item_id = %s"

    def create(self, items: int) -> None:
        connection = self.connect()
        try:
            self._drop(connection)
            for text in SCHEMA:
                connection.execute(text)
            cursor = connection.cursor()
            insert = "INSERT INTO floor_items VALUES (%s, 'r', 'probe', 0, '{}', NULL, NULL, now())"
            cursor.executemany(self._dialect(insert), [(item_id(n),) for n in range(items)])
            counters = self._dialect("INSERT INTO floor_counters VALUES (%s, 0)")
            cursor.executemany(counters, [(shard,) for shard in range(16)])
            cursor.close()
            if not self.postgresql:
                connection.commit()
        finally:
            connection.close()

    def count_done(self) -> int:
        connection = self.connect()
        try:
            [(done,)] = self.execute(
                connection, "SELECT count(*) FROM floor_items WHERE stage = 'done'"
            )
            return done
        finally:
            connection.close()

    def drop(self) -> None:
        connection = self.connect()
        try:
            self._drop(connection)
        finally:
            connection.close()

    def _drop(self, connection: Any) -> None:
        for table in TABLES:
            connection.execute(f"DROP TABLE IF EXISTS {table}")


class Calls:
    """Keep-alive connections of one thread, one per origin; JSON in and out."""

    def __init__(self) -> None:
        self._connections: dict[str, http.client.HTTPConnection] = {}

    def call(self, url: str, body: dict | None = None) -> Any:
        parts = urlsplit(url)
        headers = {"Authorization": "Bearer sk-floor", "Content-Type": "application/json"}
        data = None if body is None else json.dumps(body).encode()
        sent = ("GET" if data is None else "POST", parts.path, data, headers)
        connection = self._connections.pop(parts.netloc, None)
        answer = None
        if connection is not None:
            try:
                connection.request(*sent)
                answer = connection.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # Kept, the server closed it while it idled: once more on a new connection,
                # as every keep-alive client does.
                connection.close()
        if answer is None:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            connection.request(*sent)
            answer = connection.getresponse()
        payload = answer.read()
        self._connections[parts.netloc] = connection
        if answer.status != 200:
            raise RuntimeError(f"{url}: HTTP {answer.status}")
        return json.loads(payload)


class Item:
    """One item's I/O: ``run`` makes the calls and runs the statements, counting them."""

    def __init__(self, db: Database, connection: Any, calls: Calls) -> None:
        self.db, self.connection, self.calls = db, connection, calls
        self.statements = 0

    def sql(self, text: str, params: Sequence = ()) -> list:
        self.statements += 1
        return self.db.execute(self.connection, text, params)

    def event(self, item: str, kind: str, payload: dict) -> None:
        self.sql(
            "INSERT INTO floor_events VALUES (%s, 'r', %s, %s, 'stage', %s, now())",
            (uuid.uuid4().hex, item, kind, json.dumps(payload)),
        )

    def transition(self, item: str, stage: str, data: dict, events: int) -> None:
        def writes() -> None:
            self.sql(self.db.locked_item_read, (item,))
            self.sql(
                "UPDATE floor_items SET stage = %s, data = %s, updated_at = now()"
                " WHERE item_id = %s",
                (stage, json.dumps(data), item),
            )
            for n in range(events):
                self.event(item, f"{stage}-{n}", data)

        self.db.transaction(self.connection, writes)

    def stage_calls(self, upstream: str) -> tuple[list[str], str]:
        listed = self.calls.call(f"{upstream}/models")
        answer = self.calls.call(f"{upstream}/chat/completions", CHAT)
        return [model["id"] for model in listed["data"]], answer.get("id", "")

    def run(self, item: str, upstream: str) -> None:
        self.sql(
            "UPDATE floor_items SET lease_owner = 'floor', lease_until = now()"
            " WHERE item_id = %s AND stage <> 'done'",
            (item,),
        )
        self.event(item, "claimed", {})
        self.sql("SELECT * FROM floor_items WHERE item_id = %s", (item,))
        self.sql("SELECT count(*) FROM floor_items WHERE run_id = 'r' AND stage = 'x'")
        models, answer = self.stage_calls(upstream)  # probe
        self.transition(item, "provision", {"models": models, "answer": answer}, 2)
        models, answer = self.stage_calls(upstream)  # provision: the listing, the account
        self.sql("SELECT * FROM floor_resources WHERE kind = 'account' AND host_id = %s", (item,))
        self.sql("INSERT INTO floor_resources VALUES (%s, 'account', %s, 'sealed')", (item, answer))
        self.event(item, "resource_created", {"account": answer})
        self.transition(item, "confirm", {"account": answer}, 2)
        models, answer = self.stage_calls(upstream)  # confirm: the account's models, its test
        self.transition(item, "validate", {"models": models}, 2)
        models, answer = self.stage_calls(upstream)  # validate: the gateway's models, a chat
        self.transition(item, "done", {"answer": answer}, 1)
        self.sql("UPDATE floor_counters SET done = done + 1 WHERE shard = %s", (hash(item) % 16,))


def work(db: Database, jobs: list[tuple[str, str]], threads: int) -> int:
    """One worker process: ``threads`` threads take the jobs until none is left; the
    statements they ran. A thread's failure fails the process."""
    pending: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
    for job in jobs:
        pending.put(job)
    counted: list[int] = []
    failed: list[BaseException] = []

    def loop() -> None:
        connection = db.connect()
        one = Item(db, connection, Calls())
        try:
            while not failed:
                try:
                    item, upstream = pending.get_nowait()
                except queue.Empty:
                    return
                one.run(item, upstream)
        except BaseException as exc:
            failed.append(exc)
            raise
        finally:
            counted.append(one.statements)
            connection.close()

    running = [threading.Thread(target=loop) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    if failed:
        raise RuntimeError("a floor thread failed") from failed[0]
    return sum(counted)


def run_floor(
    database_url: str, upstreams: Sequence[str], items: int, processes: int, threads: int
) -> dict:
    """The floor's figures: wall, CPU per item of its worker processes (forked here: this
    process runs no other thread), statements and calls per item. Its tables are dropped at
    the end, whatever happened."""
    db = Database(database_url)
    db.create(items)
    try:
        jobs = [(item_id(n), upstreams[n % len(upstreams)].rstrip("/")) for n in range(items)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        statements = _fork_workers(db, jobs, processes, threads)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = db.count_done()
    finally:
        db.drop()
    if done != items:
        raise RuntimeError(f"the floor finished {done} of {items} items")
    user = after.ru_utime - before.ru_utime
    system = after.ru_stime - before.ru_stime
    return {
        "items": items,
        "processes": processes,
        "threads": threads,
        "wall_s": wall,
        "cpu_ms_per_item": (user + system) / items * 1000,
        "kernel_ms_per_item": system / items * 1000,
        "statements_per_item": statements / items,
        "calls_per_item": CALLS,
    }


def _fork_workers(db: Database, jobs: list[tuple[str, str]], processes: int, threads: int) -> int:
    """Fork the worker processes, each with its share of the jobs; wait for them all; the
    statements they ran (each tells its count through a pipe)."""
    children = []
    for number in range(processes):
        reading, writing = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(reading)
            code = 1
            try:
                os.write(writing, str(work(db, jobs[number::processes], threads)).encode())
                code = 0
            except BaseException:
                traceback.print_exc()  # the parent only hears that it failed
            finally:
                os._exit(code)
        os.close(writing)
        children.append((pid, reading))
    statements, failed = 0, False
    for pid, reading in children:
        with os.fdopen(reading) as answer:
            told = answer.read()
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0 or not told:
            failed = True
        else:
            statements += int(told)
    if failed:
        raise RuntimeError("a floor worker failed")
    return statements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="postgres://… or sqlite:///…")
    parser.add_argument("--upstream", action="append", required=True, help="…/v1, repeatable")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    args = parser.parse_args()
    figures = run_floor(args.database_url, args.upstream, args.items, args.processes, args.threads)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
