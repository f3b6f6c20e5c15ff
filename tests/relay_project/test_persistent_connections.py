"""A web request's database connection serves the next requests of its thread."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.db.backends.signals import connection_created
from django.test import RequestFactory

pytestmark = pytest.mark.django_db(transaction=True)


def connections_opened_serving(requests: int) -> int:
    """``/readyz`` (a query) ``requests`` times through Django's WSGI handler, whose request
    signals close obsolete connections as under gunicorn (the test client skips them), from
    no connection open: how many connections that opened. Every answer is a 200."""
    app, environ = WSGIHandler(), RequestFactory().get("/readyz").environ
    statuses: list[str] = []
    opened: list[int] = []
    connection.close()
    connection_created.connect(note := lambda sender, connection, **kwargs: opened.append(1))
    try:
        for _ in range(requests):
            body = app(dict(environ), lambda status, headers, *rest: statuses.append(status))
            b"".join(body)
            body.close()
    finally:
        connection_created.disconnect(note)
    assert statuses == ["200 OK"] * requests
    return len(opened)


def test_the_connection_of_one_request_serves_the_next_checked_first():
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] == 60
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True
    assert connections_opened_serving(3) == 1


def test_with_no_age_each_request_opens_its_own(monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    assert connections_opened_serving(3) == 3
