"""Django's PostgreSQL backend, with a cursor whose statements are prepared on the server.

Under Django's client-side binding the server parses and plans every statement anew. The
worker's hand-compiled statements by primary key (``relay_project.compiled_reads``: an item's
reads, its transitions' UPDATEs, its events' INSERTs, about eighteen per item) run the same
few texts over and over; parsing and planning were ≈ 40 % of PostgreSQL's CPU in the bench.
Through ``prepared_cursor`` a statement binds its parameters on the server and is prepared at
its first run on the connection (psycopg keeps ``prepared_max`` of them per connection, the
least recently used deallocated), and every run takes its generic plan, made once: the
session's ``plan_cache_mode`` is ``force_generic_plan``. By default the server plans a
statement's first five runs for their values before it settles on the generic plan, and the
worker's connections live for tens of items each: those custom plans were ≈ 13 % of the
server's CPU in the bench. The mode touches prepared statements only, and every other
statement is Django's, as before: bound on the client, never prepared, planned for its
values at every run.

Only statements whose plan does not depend on their values belong on ``prepared_cursor``: a
generic plan is made without the values, so it cannot choose the index they call for.

Behind a connection pooler in transaction mode that does not keep prepared statements,
``RELAY_PG_PREPARED_STATEMENTS=0`` makes ``prepared_cursor`` Django's ``cursor``.
"""

from __future__ import annotations

from django.conf import settings
from django.db.backends.postgresql import base
from django.db.backends.postgresql.psycopg_any import register_tzloader
from django.utils.asyncio import async_unsafe
from psycopg import DataError
from psycopg.pq import Format

# psycopg's own default: how often a statement runs on a connection before it is prepared.
# It applies only to cursors that bind on the server, which only ``prepared_cursor`` makes
# (it prepares at once); Django sets it to None, which turns preparing off altogether.
PREPARE_THRESHOLD = 5
# Each run of a prepared statement takes its generic plan (the module's docstring).
PLAN_CACHE_MODE = "force_generic_plan"


class PreparedCursor(base.ServerBindingCursor):
    """Binds its parameters on the server and prepares each statement text (with its
    parameters' types) at its first execution on the connection."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


class DatabaseOperations(base.DatabaseOperations):
    def last_executed_query(self, cursor, sql, params):
        """A prepared statement is logged as Django logs one bound on the server: its text
        with the values in it (only where statements are logged: ``DEBUG``, tests)."""
        if isinstance(cursor, PreparedCursor):
            try:
                return self.compose_sql(sql, params)
            except DataError:
                return None
        return super().last_executed_query(cursor, sql, params)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations

    def get_connection_params(self):
        params = super().get_connection_params()
        if settings.RELAY_PG_PREPARED_STATEMENTS:
            params["prepare_threshold"] = PREPARE_THRESHOLD
            options = params.get("options", "")
            params["options"] = f"{options} -c plan_cache_mode={PLAN_CACHE_MODE}".strip()
        return params

    @async_unsafe
    def prepared_cursor(self):
        """``cursor()`` whose statements are prepared on the server, within the same
        wrappers (query logging and counting, ``execute_wrapper``)."""
        if not settings.RELAY_PG_PREPARED_STATEMENTS:
            return self.cursor()
        self.close_if_health_check_failed()
        self.ensure_connection()
        with self.wrap_database_errors:
            cursor = PreparedCursor(self.connection)
            # As ``create_cursor``: the session's time zone where the connection's differs.
            loader = self.connection.adapters.get_loader(base.TIMESTAMPTZ_OID, Format.TEXT)
            if self.timezone != loader.timezone:
                register_tzloader(self.timezone, cursor)
            return self._prepare_cursor(cursor)
