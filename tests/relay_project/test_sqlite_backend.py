"""The SQLite backend of our own: Django's, with each statement's placeholder rewrite kept."""

from __future__ import annotations

import pytest
from django.db import connection, connections

from relay_project.sqlite.base import qmark_style

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite backend"),
]


def test_sqlite_urls_use_it() -> None:
    assert connection.settings_dict["ENGINE"] == "relay_project.sqlite"
    assert type(connections["default"]).__module__ == "relay_project.sqlite.base"


def test_a_statement_text_is_rewritten_once_and_runs_as_django_wrote_it() -> None:
    query = "SELECT %s || '100%%', %s + 1 /* relay-test-once */"
    qmark_style.cache_clear()
    with connection.cursor() as cursor:
        for value in (1, 2):
            cursor.execute(query, ["a", value])
            assert cursor.fetchone() == ("a100%", value + 1)
    assert qmark_style(query) == "SELECT ? || '100%', ? + 1 /* relay-test-once */"
    assert qmark_style.cache_info().misses == 1  # the second run and the call above found it


def test_named_placeholders_still_work() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT %(a)s + %(b)s", {"a": 1, "b": 2})
        assert cursor.fetchone() == (3,)


def test_each_connection_reads_the_file_through_a_memory_map() -> None:
    """Tens of connections (a worker's item places) re-read the pages another one wrote:
    mapped, they read the kernel's copy in place instead of each copying it by a call."""
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA mmap_size")
        assert cursor.fetchone()[0] >= 256 * 1024 * 1024
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"


def test_the_log_is_copied_into_the_file_every_20000_pages_and_trimmed_to_64_mib() -> None:
    """A checkpoint copies every page the log holds, the hot ones (a run's counters, the
    items' index pages) each time: fewer checkpoints, less copied for the same writes."""
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        assert cursor.fetchone()[0] == 20_000
        cursor.execute("PRAGMA journal_size_limit")
        assert cursor.fetchone()[0] == 64 * 1024 * 1024


@pytest.mark.django_db(transaction=True)
def test_a_transaction_may_take_the_write_lock_at_its_first_write() -> None:
    from django.db import transaction
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        with (
            pytest.raises(ZeroDivisionError),
            connection.lock_at_first_write(),
            transaction.atomic(),
        ):
            connection.cursor().execute("CREATE TEMP TABLE t (n)")
            1 / 0  # noqa: B018
        with transaction.atomic():  # the next one begins as ever
            connection.cursor().execute("SELECT 1")
    begins = [q["sql"] for q in queries if q["sql"].startswith("BEGIN")]
    assert begins == ["BEGIN", "BEGIN IMMEDIATE"]
    assert connection.transaction_mode == "IMMEDIATE"
