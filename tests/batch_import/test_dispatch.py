"""Handing items to the workers: a run's tasks reach the ORM broker together."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.backends.signals import connection_created
from django_q.conf import Conf
from django_q.models import OrmQ

from batch_import import dispatch

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def orm_broker(monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "BROKER_CLASS", None)
    monkeypatch.setattr(Conf, "ORM", "default")


def test_a_runs_tasks_go_to_the_orm_broker_in_one_transaction_on_the_same_connection(
    orm_broker, settings, monkeypatch
):
    """Outside a transaction the ORM broker calls ``close_old_connections`` before each task
    it stores: with connections that do not outlive a request (``RELAY_DB_CONN_MAX_AGE`` 0)
    that closed the connection and opened a new one per task, ≈ 3 ms a task on SQLite."""
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    settings.RELAY_ITEMS_PER_WORKER = 2
    connection.close()
    connection.ensure_connection()  # its age counted from now
    opened: list[int] = []
    connection_created.connect(note := lambda sender, connection, **kwargs: opened.append(1))
    try:
        dispatch.enqueue_items([f"item_{n}" for n in range(9)])
    finally:
        connection_created.disconnect(note)
    assert OrmQ.objects.count() == 5
    assert opened == []
