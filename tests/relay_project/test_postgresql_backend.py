"""The PostgreSQL backend of our own: Django's, with the compiled statements prepared on the
server."""

from __future__ import annotations

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from batch_import.models import ImportRunItem
from batch_import.run_state import RunCounts
from batch_import.transitions import RUN_SUMS, add_to_run_counts, refresh_run_state
from relay_project.compiled_reads import CompiledGet, CompiledRead, Slot
from tests.factories import ImportRunItemFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL backend"),
]

POSITIONS = CompiledGet(lambda: ImportRunItem.objects.only("position"))
AT_POSITION = CompiledRead(
    ImportRunItem,
    lambda: ImportRunItem.objects.filter(
        position=Slot("position", ImportRunItem._meta.get_field("position"))
    ).only("position"),
)


def ran_since(before: dict[str, int]) -> dict[str, int]:
    """The prepared statements that ran since ``before``: text → how often."""
    ran = {text: runs - before.get(text, 0) for text, runs in prepared_statements().items()}
    return {text: runs for text, runs in ran.items() if runs}


def prepared_statements() -> dict[str, int]:
    """This session's prepared statements: text → how often it ran (each run is planned for
    its values or takes the generic plan)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        return dict(cursor.fetchall())


def test_postgresql_urls_use_it() -> None:
    assert connection.settings_dict["ENGINE"] == "relay_project.postgresql"
    assert type(connections["default"]).__module__ == "relay_project.postgresql.base"


def test_a_compiled_statement_is_prepared_once_then_only_run_and_still_counted() -> None:
    first, second = ImportRunItemFactory(position=7), ImportRunItemFactory(position=9)
    before = prepared_statements()
    with CaptureQueriesContext(connection) as queries:
        keys = (first.pk, second.pk, first.pk)
        read = [POSITIONS.get(pk).position for pk in keys]
    assert read == [7, 9, 7]
    ran = ran_since(before)
    assert list(ran.values()) == [3], ran  # one statement, run three times
    [text] = ran
    assert '"import_run_items"."position"' in text and "$1" in text
    # Logged and counted as every statement is, with its values in it.
    logged = [q["sql"] for q in queries]
    assert [sql.endswith(f"= '{pk}'") for sql, pk in zip(logged, keys, strict=True)] == [True] * 3


def test_a_prepared_statement_runs_its_generic_plan_from_the_first_run() -> None:
    """Not planned for its values at each of its first five runs (the server's default): its
    plan never depends on them."""
    item = ImportRunItemFactory(position=3)
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone() == ("force_generic_plan",)
    for _ in range(3):
        assert POSITIONS.get(item.pk).position == 3
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE %s",
            ['%"import_run_items"."position"%'],
        )
        assert cursor.fetchall() == [(3, 0)]


def test_a_compiled_statement_by_a_key_of_other_columns_is_prepared_when_said() -> None:
    """A run's counter shards, by the run and shard: their sums and the change a transition
    adds to one, both every item's."""
    item = ImportRunItemFactory()
    refresh_run_state(run_id=item.run_id)  # counted: its shards exist
    before = prepared_statements()
    for _ in range(2):
        add_to_run_counts(item, RunCounts(total=1))
        assert RUN_SUMS.rows(run_id=item.run_id)
    ran = ran_since(before)
    assert sorted(ran.values()) == [2, 2], ran
    assert {text.split()[0] for text in ran} == {"UPDATE", "SELECT"}
    assert all('"import_run_counters"' in text for text in ran)


def test_django_s_own_statements_are_not_prepared() -> None:
    item = ImportRunItemFactory(position=4)
    before = prepared_statements()
    for _ in range(6):
        assert ImportRunItem.objects.only("position").get(pk=item.pk).position == 4
    assert ran_since(before) == {}


def test_a_compiled_read_that_filters_is_not_prepared() -> None:
    """Its plan depends on its values (which index, how many rows): a generic plan, made
    without them, cannot choose."""
    item = ImportRunItemFactory(position=6)
    before = prepared_statements()
    for _ in range(6):
        assert [row.pk for row in AT_POSITION.rows(position=6)] == [item.pk]
    assert ran_since(before) == {}


def test_turned_off_nothing_is_prepared(settings) -> None:
    settings.RELAY_PG_PREPARED_STATEMENTS = False
    item = ImportRunItemFactory(position=5)
    before = prepared_statements()
    assert POSITIONS.get(item.pk).position == 5
    assert ran_since(before) == {}
    params = connection.get_connection_params()
    assert params["prepare_threshold"] is None  # Django's default
    assert "plan_cache_mode" not in params.get("options", "")  # a pooler may refuse the option
