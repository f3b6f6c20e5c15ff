"""One row by primary key, its SQL compiled once per database connection (the worker's hot reads).

Django compiles a query's SQL anew each time it runs it. For the worker's locked read of an
item with its run (77 columns, ``select_related``) that was most of the read's CPU (≈0.55 of
0.8 ms on SQLite, four times per item), where executing the statement and building the two
objects cost the rest. ``CompiledGet`` compiles the queryset's ``get(pk=…)`` once per
connection and afterwards only executes it, building the objects as ``ModelIterable`` does
(the fields' converters, ``Model.from_db``, the related rows' populators).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=Model)

# Stands for the primary key while the SQL is compiled; its place in the parameters is where
# each read's key goes.
_PLACEHOLDER = "__compiled_get_pk__"


@dataclass(frozen=True)
class _Compiled:
    connection: BaseDatabaseWrapper
    sql: str
    params: tuple
    pk_at: int
    converters: dict
    apply_converters: Callable
    model: type[Model]
    init_list: list[str]
    fields: slice
    related_populators: list
    for_update: bool


class CompiledGet(Generic[M]):
    """``queryset().get(pk=pk)`` without compiling the SQL each time. ``queryset`` builds the
    query (no annotations, no known related objects: a plain model read, ``select_related``
    and ``select_for_update`` welcome); the primary key must be the only value that varies."""

    def __init__(self, queryset: Callable[[], QuerySet[M]]) -> None:
        self._queryset = queryset
        # Per thread, as Django's connections are: what a thread compiled (its converters are
        # bound to its connection) goes when the thread does.
        self._local = threading.local()

    def get(self, pk: Any) -> M:
        queryset = self._queryset()
        db = queryset.db
        connection = connections[db]
        by_db: dict[str, _Compiled] = self._local.__dict__.setdefault("by_db", {})
        compiled = by_db.get(db)
        if compiled is None or compiled.connection is not connection:
            compiled = by_db[db] = _compile(queryset, db)
        if compiled.for_update and connection.get_autocommit():
            # What the compiler checks each time it compiles such a query.
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        params = list(compiled.params)
        params[compiled.pk_at] = compiled.model._meta.pk.get_db_prep_value(pk, connection)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            row = cursor.fetchone()
        if row is None:
            raise queryset.model.DoesNotExist(
                f"{queryset.model._meta.object_name} matching query does not exist."
            )
        if compiled.converters:
            row = next(compiled.apply_converters([row], compiled.converters))
        obj = compiled.model.from_db(db, compiled.init_list, row[compiled.fields])
        for populator in compiled.related_populators:
            populator.populate(row, obj)
        return obj


def _compile(queryset: QuerySet, db: str) -> _Compiled:
    query = queryset.filter(pk=_PLACEHOLDER).order_by().query
    if query.annotation_select or queryset._known_related_objects:
        raise ValueError("CompiledGet reads plain model rows only")
    compiler = query.get_compiler(using=db)
    sql, params = compiler.as_sql()
    if params.count(_PLACEHOLDER) != 1:
        raise ValueError("CompiledGet needs the primary key to be the query's one varying value")
    select, klass_info = compiler.select, compiler.klass_info
    start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
    return _Compiled(
        connection=compiler.connection,
        sql=sql,
        params=tuple(params),
        pk_at=params.index(_PLACEHOLDER),
        converters=compiler.get_converters([column[0] for column in select[: compiler.col_count]]),
        apply_converters=compiler.apply_converters,
        model=klass_info["model"],
        init_list=[column[0].target.attname for column in select[start:end]],
        fields=slice(start, end),
        related_populators=get_related_populators(klass_info, select, db),
        for_update=bool(query.select_for_update)
        and compiler.connection.features.has_select_for_update,
    )
