"""PostgreSQL's own plans of the SQL a test captured (``EXPLAIN (FORMAT JSON)``), for the tests
that hold a query to an index (issue #17); they skip on SQLite."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from django.db import connection

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="index plans are asserted on PostgreSQL"
)


def nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def explain(sql: str, *, analyze: bool = False) -> dict:
    """The plan's root node; with ``analyze`` the query runs and actual rows are counted."""
    options = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN ({options}) {sql}")
        (raw,) = cursor.fetchone()
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def the_query_on(captured, table: str) -> str:
    """The one captured statement that reads ``table``."""
    [sql] = [q["sql"] for q in captured if re.search(rf'FROM "{table}"', q["sql"])]
    return sql


def scans(plan: dict) -> list[tuple[str, str | None]]:
    """Each table a plan reads, in the plan's order, with the index it reads it by (None: not
    by an index)."""
    return [
        (node["Relation Name"], node.get("Index Name"))
        for node in nodes(plan)
        if "Relation Name" in node
    ]


def scans_of(plan: dict, table: str) -> list[dict]:
    return [node for node in nodes(plan) if node.get("Relation Name") == table]


def rows_read(plan: dict, table: str) -> int:
    """Rows of ``table`` the executed plan read: returned plus filtered out."""
    return sum(n["Actual Rows"] + n.get("Rows Removed by Filter", 0) for n in scans_of(plan, table))
