"""Django's SQLite backend, each statement's placeholders converted once per process, and
transactions that may take the write lock at their first write.

Django's SQLite cursor rewrites every statement's ``%s`` placeholders as ``?`` with a regular
expression on every execution: ≈ 5 % of a worker's CPU at 30 statements per item. A process
runs a few hundred statement texts over and over, so the rewrite is kept per text. Everything
else is Django's backend (``settings.DATABASES`` names this one for SQLite URLs).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from django.db.backends.sqlite3 import base

# Statement texts kept: those of the pipeline and pages stay; lists of varying length (``IN``
# with N placeholders) come and go.
STATEMENTS_KEPT = 2048


@lru_cache(maxsize=STATEMENTS_KEPT)
def qmark_style(query: str) -> str:
    """``query`` with Django's ``%s`` placeholders as SQLite's ``?`` (``%%`` as ``%``)."""
    return base.FORMAT_QMARK_REGEX.sub("?", query).replace("%%", "%")


class SQLiteCursorWrapper(base.SQLiteCursorWrapper):
    def convert_query(self, query, *, param_names=None):
        if param_names is None:
            return qmark_style(query)
        return super().convert_query(query, param_names=param_names)


class DatabaseWrapper(base.DatabaseWrapper):
    def create_cursor(self, name=None):
        return self.connection.cursor(factory=SQLiteCursorWrapper)

    @contextmanager
    def lock_at_first_write(self) -> Iterator[None]:
        """The transaction opened inside takes SQLite's one write lock at its first statement,
        not at ``BEGIN`` (``transaction_mode`` IMMEDIATE): the lock is held from that write to
        the commit, not also while the thread waits for the interpreter between ``BEGIN`` and
        it (every other writer of the database waits that long). Only for a transaction whose
        first statement writes: one that read first could fail at its first write, where
        another connection wrote since its read (``SQLITE_BUSY_SNAPSHOT``, no busy wait)."""
        self.ensure_connection()  # connecting sets the mode again
        mode, self.transaction_mode = self.transaction_mode, None
        try:
            yield
        finally:
            self.transaction_mode = mode
