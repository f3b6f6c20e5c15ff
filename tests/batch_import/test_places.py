"""A worker process's item places outlive their task and keep their database connection."""

from __future__ import annotations

import queue
import threading

import pytest
from django.db import connection, connections
from django.db.backends.signals import connection_created

from batch_import import places
from batch_import.models import ImportRun
from tests.integration.shared_db import shared_database_url

pytestmark = pytest.mark.django_db(transaction=True)


def ran_in(pool: places.Places, *works) -> list:
    """Hand ``works`` to ``pool`` at once and return their outcomes in the order handed."""
    ended: queue.SimpleQueue = queue.SimpleQueue()
    for n, work in enumerate(works):
        pool.hand(str(n), work, ended)
    outcomes = dict(ended.get(timeout=10) for _ in works)
    return [outcomes[str(n)] for n in range(len(works))]


def where() -> tuple[str, int]:
    """The thread running this and the id of its database connection."""
    ImportRun.objects.exists()
    return threading.current_thread().name, id(connection.connection)


def test_a_later_task_runs_in_the_places_and_connections_of_an_earlier_one():
    shared_database_url()
    pool = places.Places()
    both_in = threading.Barrier(2)

    def together():  # two places at once: neither may run both
        both_in.wait(timeout=10)
        return where()

    try:
        first = ran_in(pool, together, together)
        second = ran_in(pool, where, where)
    finally:
        pool.close()
    assert len(set(first)) == 2 and set(second) <= set(first)  # no new place, no new connection


def test_places_grow_to_what_is_in_flight_at_once_and_no_further():
    pool = places.Places()
    both_in, release = threading.Barrier(3), threading.Event()

    def waiting():
        both_in.wait(timeout=10)
        release.wait(timeout=10)
        return threading.current_thread().name

    ended: queue.SimpleQueue = queue.SimpleQueue()
    try:
        pool.hand("a", waiting, ended)
        pool.hand("b", waiting, ended)
        both_in.wait(timeout=10)  # two at once: two places
        release.set()
        names = {ended.get(timeout=10)[1] for _ in range(2)}
        names |= set(ran_in(pool, lambda: threading.current_thread().name))
    finally:
        pool.close()
    assert len(names) == 2


def test_what_a_place_ran_raising_is_its_outcome_and_the_place_goes_on():
    pool = places.Places()

    def boom():
        raise RuntimeError("boom")

    try:
        [raised] = ran_in(pool, boom)
        [after] = ran_in(pool, lambda: "went on")
    finally:
        pool.close()
    assert isinstance(raised, RuntimeError) and after == "went on"


def test_an_idle_place_gives_its_connection_back_and_opens_one_with_its_next_work(monkeypatch):
    shared_database_url()
    opened = []
    connection_created.connect(note := lambda sender, connection, **kwargs: opened.append(1))
    pool = places.Places()
    try:
        ran_in(pool, where)
        ran_in(pool, where)  # busy again at once: the same connection
        assert len(opened) == 1
        monkeypatch.setattr(places, "IDLE_SECONDS", 0.05)
        ran_in(pool, where)  # picks up the short timeout only after this work
        threading.Event().wait(0.3)  # idle past IDLE_SECONDS: closed
        ran_in(pool, where)
    finally:
        pool.close()
        connection_created.disconnect(note)
    assert len(opened) == 2


def test_a_place_that_waited_finds_a_dead_connection_replaced(monkeypatch):
    """A database restarted between two runs: the place checks its connection after a wait
    and opens a new one, instead of failing its next item."""
    shared_database_url()
    monkeypatch.setattr(places, "CHECK_AFTER_SECONDS", 0.0)
    opened = []
    connection_created.connect(note := lambda sender, connection, **kwargs: opened.append(1))
    pool = places.Places()
    try:
        ran_in(pool, where)
        monkeypatch.setattr(type(connections["default"]), "is_usable", lambda self: False)
        ran_in(pool, where)
    finally:
        pool.close()
        connection_created.disconnect(note)
    assert len(opened) == 2
