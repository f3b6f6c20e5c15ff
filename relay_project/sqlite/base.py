"""Django's SQLite backend, each statement's placeholders converted once per process.

Django's SQLite cursor rewrites every statement's ``%s`` placeholders as ``?`` with a regular
expression on every execution: ≈ 5 % of a worker's CPU at 30 statements per item. A process
runs a few hundred statement texts over and over, so the rewrite is kept per text. Everything
else is Django's backend (``settings.DATABASES`` names this one for SQLite URLs).
"""

from __future__ import annotations

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
