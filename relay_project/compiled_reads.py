"""Hand-built row reads for the worker's hot path: one row by primary key, its SQL compiled once
per process (``CompiledGet``), and the row an UPDATE leaves, from the UPDATE itself
(``UpdateReturning``), both compiled once and then only executed.

Django compiles a query's SQL anew each time it runs it. For the worker's locked read of an
item with its run (77 columns, ``select_related``) that was most of the read's CPU (≈0.55 of
0.8 ms on SQLite, four times per item), where executing the statement and building the two
objects cost the rest. ``CompiledGet`` compiles the queryset's ``get(pk=…)`` once per
process and afterwards only executes it, building the objects as ``ModelIterable`` does
(the fields' converters, ``Model.from_db``, the related rows' populators).

``UpdateReturning`` is the UPDATE of one row by primary key compiled once (the worker writes
each transition's changes to its item's row), and saves the read after it where the database
returns rows from one. ``update_returning_pks`` is ``QuerySet.update`` that says
which rows it wrote: the worker claims several items in one statement and learns which it won.

``CompiledInsert`` is ``objects.create`` with the INSERT compiled once per process: the
worker appends about twelve events per item, and building each INSERT (the model's save
machinery and the compiler) was most of each append's CPU. Its ``insert`` writes the same row
without building the instance nobody reads (the events'): about a quarter of what was left.

``CompiledUpdatePks`` is ``update_returning_pks`` of a queryset built once per process and
shape with ``Slot``s where each call's values go: the claim of a task's next due items, whose
subquery cost more to build than to run. ``CompiledRead`` reads rows of such a queryset: the
per-item lookups of a sibling, an account's records, a user's key, a pack's providers;
``CompiledValues`` the tuples of a ``values_list`` one (a run's counts, summed). ``GuardedUpdate``
writes a row by primary key only while it still holds what its writer read (a version) and
returns values computed from the written row: a worker's transition without the read before it.

On PostgreSQL a statement whose plan does not depend on its values is prepared on the server
(``fixed_plan_cursor``): the server parses and plans its text once per connection instead of
at every run. So are the statements by primary key (``CompiledGet``, ``UpdateReturning``,
``CompiledInsert``) and those said to have a fixed plan (``fixed_plan=True``), their constants
written into their text (``_constants_written``): each finds its rows by equality on the
leading columns of one index, or walks one in its order, so that its generic plan, made
without the values of its slots, is the plan made for any of them
(``tests/batch_import/test_fixed_plans.py``). The reads that filter on ranges of their values
are not, nor those of the tables a run grows as it goes (its events, the host's records): a
generic plan is made once per connection for the tables as they are then, and one made while
a table held a page scanned it at every run after (read ever more rows per item as a run
grew: ``tests/integration/test_rows_per_item.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import partial
from typing import Any, Generic, TypeVar

from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import (
    CharField,
    DateTimeField,
    Expression,
    Field,
    Model,
    QuerySet,
    TextField,
    signals,
)
from django.db.models.query import get_related_populators
from django.db.models.sql import InsertQuery, UpdateQuery
from django.db.models.sql.compiler import SQLInsertCompiler
from django.db.transaction import TransactionManagementError
from django.utils import timezone
from django.utils.functional import cached_property

M = TypeVar("M", bound=Model)

# Stands for the primary key while the SQL is compiled; its place in the parameters is where
# each read's key goes.
_PLACEHOLDER = "__compiled_get_pk__"


def fixed_plan_cursor(connection: BaseDatabaseWrapper):
    """The cursor of a statement whose plan does not depend on its values (by primary key, an
    INSERT, equality on an index's leading columns): on PostgreSQL one that prepares its
    statements on the server (``relay_project.postgresql``), elsewhere the connection's
    ``cursor()``. A statement whose best plan depends on its values (a range of times) or on
    the size of a table that grows while the connection lives stays on ``cursor()``: planned
    for its values at every run, it keeps the index they call for."""
    prepared = getattr(connection, "prepared_cursor", None)
    return prepared() if prepared is not None else connection.cursor()


def _cursor(connection: BaseDatabaseWrapper, *, fixed_plan: bool):
    """``fixed_plan_cursor`` for a statement said to have a fixed plan, else the connection's
    own."""
    return fixed_plan_cursor(connection) if fixed_plan else connection.cursor()


def _compiled_once(cache: dict, key: Any, build: Callable[[], Any]):
    """What ``build`` compiled for ``key``: once per process, shared by its threads.

    Each call runs the SQL on its own thread's connection. A compiled statement keeps the
    connection it was compiled on for its rows' converters, which read only what every
    connection of one alias has alike (features, operations, time zone), never run anything
    on it. Compiled per connection instead, a worker's 32 item places each compiled every
    statement again for every task: ≈0.35 MiB a place and a compile per statement, place and
    task."""
    compiled = cache.get(key)
    if compiled is None:
        compiled = cache.setdefault(key, build())  # two threads at once: one result kept
    return compiled


@dataclass(frozen=True)
class _RowReader:
    """Turns the rows of a compiled model read into objects as ``ModelIterable`` does: the
    fields' converters, ``Model.from_db``, the related rows' populators."""

    db: str
    converters: dict
    apply_converters: Callable
    model: type[Model]
    init_list: list[str]
    columns: slice
    related_populators: list

    @classmethod
    def of(cls, compiler, db: str) -> _RowReader:
        select, klass_info = compiler.select, compiler.klass_info
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        return cls(
            db=db,
            converters=compiler.get_converters(
                [column[0] for column in select[: compiler.col_count]]
            ),
            apply_converters=compiler.apply_converters,
            model=klass_info["model"],
            init_list=[column[0].target.attname for column in select[start:end]],
            columns=slice(start, end),
            related_populators=get_related_populators(klass_info, select, db),
        )

    def objects(self, rows: list) -> list:
        if self.converters:
            rows = self.apply_converters(rows, self.converters)
        found = []
        for row in rows:
            obj = self.model.from_db(self.db, self.init_list, row[self.columns])
            for populator in self.related_populators:
                populator.populate(row, obj)
            found.append(obj)
        return found


@dataclass(frozen=True)
class _Compiled:
    connection: BaseDatabaseWrapper
    sql: str
    params: tuple
    pk_at: int
    reader: _RowReader
    for_update: bool


class CompiledGet(Generic[M]):
    """``queryset().get(pk=pk)`` without compiling the SQL each time. ``queryset`` builds the
    query (no annotations, no known related objects: a plain model read, ``select_related``
    and ``select_for_update`` welcome); the primary key must be the only value that varies."""

    def __init__(self, queryset: Callable[[], QuerySet[M]]) -> None:
        self._queryset = queryset
        self._compiled: dict = {}  # per database alias

    def get(self, pk: Any) -> M:
        model, db = self._target
        connection = connections[db]
        compiled = _compiled_once(self._compiled, db, lambda: _compile(self._queryset(), db))
        if compiled.for_update and connection.get_autocommit():
            # What the compiler checks each time it compiles such a query.
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        params = list(compiled.params)
        params[compiled.pk_at] = compiled.reader.model._meta.pk.get_db_prep_value(pk, connection)
        with fixed_plan_cursor(connection) as cursor:
            cursor.execute(compiled.sql, params)
            row = cursor.fetchone()
        if row is None:
            raise model.DoesNotExist(f"{model._meta.object_name} matching query does not exist.")
        return compiled.reader.objects([row])[0]

    @property
    def _target(self) -> tuple[type[Model], str]:
        """The model and the database alias the queryset reads from, without building the
        queryset for each call (a locked read with its relation: two clones of it)."""
        model, using, for_write = self._shape
        if using:
            return model, using
        return model, router.db_for_write(model) if for_write else router.db_for_read(model)

    @cached_property
    def _shape(self) -> tuple[type[Model], str | None, bool]:
        queryset = self._queryset()
        return queryset.model, queryset._db, queryset._for_write


def _compile(queryset: QuerySet, db: str) -> _Compiled:
    query = queryset.filter(pk=_PLACEHOLDER).order_by().query
    if query.annotation_select or queryset._known_related_objects:
        raise ValueError("CompiledGet reads plain model rows only")
    compiler = query.get_compiler(using=db)
    sql, params = compiler.as_sql()
    if params.count(_PLACEHOLDER) != 1:
        raise ValueError("CompiledGet needs the primary key to be the query's one varying value")
    return _Compiled(
        connection=compiler.connection,
        sql=sql,
        params=tuple(params),
        pk_at=params.index(_PLACEHOLDER),
        reader=_RowReader.of(compiler, db),
        for_update=bool(query.select_for_update)
        and compiler.connection.features.has_select_for_update,
    )


class _Slot(Expression):
    """Stands for one value of each call while the UPDATE is compiled: its parameter in the
    compiled SQL is where that value goes."""

    def __init__(self, key: tuple[str, str], output_field: Field) -> None:
        super().__init__(output_field=output_field)
        self.key = key

    def as_sql(self, compiler, connection) -> tuple[str, list]:
        return "%s", [self]


@dataclass(frozen=True)
class _CompiledUpdate:
    connection: BaseDatabaseWrapper
    sql: str
    params: tuple  # with a ``_Slot`` where each call's values go
    converters: dict
    apply_converters: Callable
    init_list: list[str]


class UpdateReturning(Generic[M]):
    """``queryset().filter(pk=pk).update(...)`` and the row as that UPDATE left it, in one
    ``UPDATE … RETURNING`` whose SQL is compiled once per process and set of written fields.
    ``queryset`` selects rows of one model by conditions that do not vary (``current_stage``);
    ``returning`` names the fields the model comes back with (the rest deferred).

    Where the database returns no rows from an UPDATE, the row is read back after it, in one
    transaction with it (so under the row lock the UPDATE took)."""

    def __init__(self, queryset: Callable[[], QuerySet[M]], *, returning: Iterable[str]) -> None:
        self._queryset = queryset
        self._returning = frozenset(returning)
        self._compiled: dict = {}

    def update(self, pk: Any, *, values: Mapping[str, Any]) -> M | None:
        """Write ``values`` on the row; None when the queryset leaves it out (nothing
        written)."""
        written = self._write(pk, values)
        return None if written is None else written()

    def write(self, pk: Any, *, values: Mapping[str, Any]) -> bool:
        """``update`` for a caller that only asks whether the row was written: no instance
        built from what came back."""
        return self._write(pk, values) is not None

    def _write(self, pk: Any, values: Mapping[str, Any]) -> Callable[[], M] | None:
        """None when nothing was written; else what makes the row as written an instance."""
        model, using = self._target
        db = using or router.db_for_write(model)
        connection = connections[db]
        if not returns_rows_from_update(connection):
            instance = self._update_then_read(self._queryset().using(db), pk, values)
            return None if instance is None else lambda: instance
        compiled = _compiled_once(
            self._compiled, (db, tuple(values)), lambda: self._compile(self._queryset(), db, values)
        )
        row = _written_row(compiled, db, _by_key_params(model, compiled, connection, pk, values))
        if row is None:
            return None
        return lambda: model.from_db(db, compiled.init_list, row)

    @cached_property
    def _target(self) -> tuple[type[Model], str | None]:
        # The model and the database the queryset names, without building it for each call
        # (its filter was a third of the call).
        queryset = self._queryset()
        return queryset.model, queryset._db

    def _fields(self, model: type[Model]) -> list[Field]:
        # In the model's order, as ``Model.from_db`` takes a subset of the fields.
        return [
            f for f in model._meta.concrete_fields if f.primary_key or f.name in self._returning
        ]

    def _compile(self, queryset: QuerySet, db: str, values: Mapping):
        # Django's own UPDATE (``QuerySet.update``'s query and compiler) with RETURNING after
        # it, and the returned columns converted as the compiler converts a read of them.
        opts = queryset.model._meta
        query = queryset.filter(pk=_Slot(("pk", ""), opts.pk)).query.chain(UpdateQuery)
        query.add_update_values(
            {name: _Slot(("values", name), opts.get_field(name)) for name in values}
        )
        fields = self._fields(queryset.model)
        compiler, sql, params, converters = _returning(query, db, fields)
        return _CompiledUpdate(
            connection=compiler.connection,
            sql=sql,
            params=tuple(params),
            converters=converters,
            apply_converters=compiler.apply_converters,
            init_list=[f.attname for f in fields],
        )

    def _update_then_read(self, queryset: QuerySet[M], pk: Any, values: Mapping):
        with transaction.atomic(using=queryset.db, savepoint=False):
            written = queryset.filter(pk=pk).update(**values)
            if not written:
                return None
            names = [f.name for f in self._fields(queryset.model)]
            return queryset.model._base_manager.using(queryset.db).only(*names).get(pk=pk)


def _by_key_params(
    model: type[Model],
    compiled: _CompiledUpdate | _CompiledGuarded,
    connection: BaseDatabaseWrapper,
    pk: Any,
    values: Mapping[str, Any],
    expected: Mapping[str, Any] | None = None,
) -> list:
    """The parameters of an UPDATE of one row by primary key: each slot's value prepared as
    its field prepares a value it writes (``values``) or compares (the key, ``expected``)."""
    field = model._meta.get_field
    prepared = {("pk", ""): model._meta.pk.get_db_prep_value(pk, connection)}
    for name, value in values.items():
        prepared["values", name] = field(name).get_db_prep_save(value, connection)
    for name, value in (expected or {}).items():
        prepared["expected", name] = field(name).get_db_prep_value(value, connection)
    return [prepared[p.key] if isinstance(p, _Slot) else p for p in compiled.params]


def _written_row(compiled: _CompiledUpdate | _CompiledGuarded, db: str, params: list):
    """Run an UPDATE … RETURNING of one row by primary key: the row it returned, converted
    (None when it wrote none)."""
    with (
        transaction.mark_for_rollback_on_error(using=db),
        fixed_plan_cursor(connections[db]) as cursor,
    ):
        cursor.execute(compiled.sql, params)
        row = cursor.fetchone()
    if row is not None and compiled.converters:
        row = next(compiled.apply_converters([row], compiled.converters))
    return row


@dataclass(frozen=True)
class _CompiledGuarded:
    connection: BaseDatabaseWrapper
    sql: str
    params: tuple  # with a ``_Slot`` where each call's values go
    names: tuple[str, ...]  # of the values RETURNING computes, in its order
    converters: dict
    apply_converters: Callable


class GuardedUpdate(Generic[M]):
    """``objects.filter(pk=pk, **expected).update(**values)`` that returns what ``returning``
    computes from the row it wrote, in one ``UPDATE … RETURNING`` compiled once per process
    and set of written and compared fields: the write of optimistic locking, taken only while
    the row still holds the values its writer read (``expected``: a version, an owner; each
    compared with ``=``, so a None never matches). None when it wrote nothing (the row has
    changed since, or is gone).

    ``returning`` makes the expressions computed from the written row, by name (a
    ``Subquery`` of a related row with ``OuterRef``: its state, in the same statement).
    Only where the database returns rows from an UPDATE (``returns_rows_from_update``):
    elsewhere the caller reads and locks the row as it would without it."""

    def __init__(
        self, model: type[M], *, returning: Callable[[], Mapping[str, Expression]]
    ) -> None:
        self._model, self._returning = model, returning
        self._compiled: dict = {}

    def write(
        self, pk: Any, *, values: Mapping[str, Any], expected: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        db = router.db_for_write(self._model)
        compiled, params = self._bound(db, pk, values, expected)
        row = _written_row(compiled, db, params)
        if row is None:
            return None
        return dict(zip(compiled.names, row, strict=True))

    def statement(
        self, pk: Any, *, values: Mapping[str, Any], expected: Mapping[str, Any]
    ) -> tuple[str, list]:
        """The ``UPDATE … RETURNING`` that ``write`` runs, as its SQL and parameters, for a
        statement of the caller's own around it (a data-modifying ``WITH``)."""
        compiled, params = self._bound(router.db_for_write(self._model), pk, values, expected)
        return compiled.sql, params

    def _bound(
        self, db: str, pk: Any, values: Mapping[str, Any], expected: Mapping[str, Any]
    ) -> tuple[_CompiledGuarded, list]:
        compiled = _compiled_once(
            self._compiled,
            (db, tuple(values), tuple(expected)),
            lambda: self._compile(db, values, expected),
        )
        params = _by_key_params(self._model, compiled, connections[db], pk, values, expected)
        return compiled, params

    def _compile(self, db: str, values: Mapping, expected: Mapping) -> _CompiledGuarded:
        # Django's own UPDATE (``QuerySet.update``'s query and compiler), the expressions
        # resolved against it as an UPDATE's values are (``OuterRef`` names the written row).
        connection = connections[db]
        if not returns_rows_from_update(connection):
            raise NotImplementedError(f"{connection.vendor} returns no rows from an UPDATE")
        field = self._model._meta.get_field
        conditions = {name: _Slot(("expected", name), field(name)) for name in expected}
        queryset = self._model._base_manager.using(db).filter(
            pk=_Slot(("pk", ""), self._model._meta.pk), **conditions
        )
        query = queryset.query.chain(UpdateQuery)
        query.add_update_values({name: _Slot(("values", name), field(name)) for name in values})
        compiler = query.get_compiler(using=db)
        sql, params = compiler.as_sql()
        returning = {
            name: expression.resolve_expression(query, allow_joins=False, for_save=True)
            for name, expression in self._returning().items()
        }
        parts = [compiler.compile(expression) for expression in returning.values()]
        sql = f"{sql} RETURNING {', '.join(part for part, _ in parts)}"
        params = [*params, *(p for _, part_params in parts for p in part_params)]
        return _CompiledGuarded(
            connection=compiler.connection,
            sql=sql,
            params=tuple(params),
            names=tuple(returning),
            converters=compiler.get_converters(list(returning.values())),
            apply_converters=compiler.apply_converters,
        )


@dataclass(frozen=True)
class _CompiledRead:
    connection: BaseDatabaseWrapper
    sql: str
    params: tuple  # with a ``Slot`` where each call's values go
    fields: dict  # slot name → its field
    reader: _RowReader


class CompiledRead(Generic[M]):
    """``list(build())``, or ``build().first()`` (``first=True``), with the SQL compiled once
    per process: ``build`` returns a plain model queryset (``select_related`` and ``only``
    welcome, no annotations, not from a related manager) whose varying values are ``Slot``s,
    each call's values prepared as the field prepares a value it compares. ``fixed_plan``: the
    plan does not depend on the values (``fixed_plan_cursor``)."""

    def __init__(
        self,
        model: type[M],
        build: Callable[[], QuerySet[M]],
        *,
        first: bool = False,
        fixed_plan: bool = False,
    ) -> None:
        self._model, self._build, self._first = model, build, first
        self._fixed_plan = fixed_plan
        self._compiled: dict = {}

    def rows(self, **values: Any) -> list[M]:
        db = router.db_for_read(self._model)
        compiled = _compiled_once(self._compiled, db, lambda: self._compile(db))
        rows = _fetched(compiled, db, values, fixed_plan=self._fixed_plan)
        return compiled.reader.objects(rows)

    def first(self, **values: Any) -> M | None:
        found = self.rows(**values)
        return found[0] if found else None

    def _compile(self, db: str) -> _CompiledRead:
        queryset = self._build()
        if self._first:  # as ``QuerySet.first`` reads
            queryset = (queryset if queryset.ordered else queryset.order_by("pk"))[:1]
        if queryset.query.annotation_select or queryset._known_related_objects:
            raise ValueError("CompiledRead reads plain model rows only")
        compiler = queryset.query.get_compiler(using=db)
        sql, params = _constants_written(
            *compiler.as_sql(), compiler.connection, fixed_plan=self._fixed_plan
        )
        return _CompiledRead(
            connection=compiler.connection,
            sql=sql,
            params=params,
            fields=_slot_fields(params),
            reader=_RowReader.of(compiler, db),
        )


@dataclass(frozen=True)
class _CompiledValues:
    sql: str
    params: tuple  # with a ``Slot`` where each call's values go
    fields: dict  # slot name → its field
    converters: dict
    apply_converters: Callable


class CompiledValues:
    """``list(build())`` of a ``values_list`` queryset (aggregates welcome), its SQL compiled
    once per process: the rows as tuples, their values converted as the queryset converts
    them. ``Slot``s stand for each call's values, as in ``CompiledRead``. ``fixed_plan``: the
    plan does not depend on the values (``fixed_plan_cursor``)."""

    def __init__(
        self, model: type[Model], build: Callable[[], QuerySet], *, fixed_plan: bool = False
    ) -> None:
        self._model, self._build, self._fixed_plan = model, build, fixed_plan
        self._compiled: dict = {}

    def rows(self, **values: Any) -> list[tuple]:
        db = router.db_for_read(self._model)
        compiled = _compiled_once(self._compiled, db, lambda: self._compile(db))
        rows = _fetched(compiled, db, values, fixed_plan=self._fixed_plan)
        if compiled.converters:
            rows = [tuple(row) for row in compiled.apply_converters(rows, compiled.converters)]
        return rows

    def _compile(self, db: str) -> _CompiledValues:
        compiler = self._build().query.get_compiler(using=db)
        sql, params = _constants_written(
            *compiler.as_sql(), compiler.connection, fixed_plan=self._fixed_plan
        )
        columns = [column[0] for column in compiler.select[: compiler.col_count]]
        return _CompiledValues(
            sql=sql,
            params=params,
            fields=_slot_fields(params),
            converters=compiler.get_converters(columns),
            apply_converters=compiler.apply_converters,
        )


def _fetched(
    compiled: _CompiledRead | _CompiledValues, db: str, values: Mapping, *, fixed_plan: bool = False
) -> list:
    """The rows of a compiled read, each ``Slot`` given its value as its field prepares a
    value it compares."""
    connection = connections[db]
    prepared = {
        ("slot", name): field.get_db_prep_value(values[name], connection)
        for name, field in compiled.fields.items()
    }
    params = [prepared[p.key] if isinstance(p, _Slot) else p for p in compiled.params]
    with _cursor(connection, fixed_plan=fixed_plan) as cursor:
        cursor.execute(compiled.sql, params)
        return cursor.fetchall()


def returns_rows_from_update(connection: BaseDatabaseWrapper) -> bool:
    """Whether ``UPDATE … RETURNING`` works here: PostgreSQL, and SQLite from 3.35 (which
    brought it with INSERT … RETURNING, what Django asks the SQLite version for)."""
    return connection.vendor == "postgresql" or (
        connection.vendor == "sqlite" and connection.features.can_return_columns_from_insert
    )


def _returning(query: UpdateQuery, db: str, fields: list[Field]):
    """Django's own UPDATE of ``query`` (as ``QuerySet.update`` compiles it) with ``RETURNING``
    ``fields`` after it: the compiler, the SQL, its parameters and the converters that turn the
    returned columns into values as a read of them would."""
    compiler = query.get_compiler(using=db)
    sql, params = compiler.as_sql()
    if not sql or query.related_updates:
        raise ValueError("an UPDATE … RETURNING writes fields of the model's own table only")
    quote = compiler.connection.ops.quote_name
    columns = [f.get_col(query.get_meta().db_table) for f in fields]
    sql = f"{sql} RETURNING {', '.join(quote(f.column) for f in fields)}"
    return compiler, sql, params, compiler.get_converters(columns)


class Slot(_Slot):
    """Where one value of each call goes in a statement ``CompiledRead`` or ``CompiledUpdatePks``
    compiles: the right-hand side of a filter (``lease_until__lt=Slot("now", field)``) or a
    written value. Slots of the same name take the same value."""

    def __init__(self, name: str, field: Field) -> None:
        super().__init__(("slot", name), field)


@dataclass(frozen=True)
class _CompiledPks:
    connection: BaseDatabaseWrapper
    sql: str
    params: tuple  # with a ``Slot`` where each call's values go
    fields: dict  # slot name → its field
    written: frozenset  # the names of the slots written (the rest are compared)
    converters: dict
    apply_converters: Callable


class CompiledUpdatePks:
    """``update_returning_pks`` of a queryset whose SQL is compiled once per process and
    shape: ``build(shape)`` returns the queryset and the values to write, with ``Slot``s where
    each call's values go (what varies beyond them, such as how many rows a sliced subquery
    takes, is the shape). Each call's values are prepared as the field prepares a value it
    writes (``get_db_prep_save``) or compares (``get_db_prep_value``). ``fixed_plan``: the plan
    does not depend on the values (``fixed_plan_cursor``). ``returning``: fields of the
    rows as written, returned after the key (``update_rows``). ``related``: the relations
    ``update_objects`` reads with the rows written (``select_related``)."""

    def __init__(
        self,
        model: type[Model],
        build: Callable[[Any], tuple[QuerySet, Mapping[str, Any]]],
        *,
        fixed_plan: bool = False,
        returning: tuple[str, ...] = (),
        related: tuple[str, ...] = (),
    ) -> None:
        self._model, self._build, self._fixed_plan = model, build, fixed_plan
        self._returning, self._related = returning, related
        self._compiled: dict = {}
        self._compiled_objects: dict = {}

    def update(self, shape: Any, **values: Any) -> list:
        """Run the statement of ``shape`` with ``values`` (slot name → value); the primary
        keys of the rows it wrote."""
        return [row[0] for row in self.update_rows(shape, **values)]

    def update_rows(self, shape: Any, **values: Any) -> list[tuple]:
        """``update``: each written row's key, then its ``returning`` fields as written."""
        db = router.db_for_write(self._model)
        connection = connections[db]
        compiled = _compiled_once(
            self._compiled, (db, shape), lambda: self._compile(*self._build(shape), db)
        )
        return _written_rows(
            db,
            compiled.sql,
            _slotted(compiled, values, connection),
            compiled.apply_converters,
            compiled.converters,
            fixed_plan=self._fixed_plan,
        )

    def update_objects(self, shape: Any, **values: Any) -> list:
        """``update``, answered with the rows as written, as objects with their ``related``
        rows (``select_related``): one statement, on PostgreSQL only (a data-modifying
        ``WITH``). The ``UPDATE`` returns every column of the rows it wrote under a ``WITH``
        query named as the table itself, which the model's ``SELECT`` then reads in the
        table's stead (inside its own definition the name is still the table). So the rows
        read are the versions written: read through the statement's snapshot, a row another
        transaction changed after it was taken would show its older version, though the
        ``UPDATE`` re-checked and wrote the newest."""
        db = router.db_for_write(self._model)
        connection = connections[db]
        if connection.vendor != "postgresql":
            raise NotImplementedError(f"{connection.vendor} has no data-modifying WITH")
        compiled = _compiled_once(
            self._compiled_objects, (db, shape), lambda: self._compile_objects(shape, db)
        )
        with (
            transaction.mark_for_rollback_on_error(using=db),
            _cursor(connection, fixed_plan=self._fixed_plan) as cursor,
        ):
            cursor.execute(compiled.sql, _slotted(compiled, values, connection))
            rows = cursor.fetchall()
        return compiled.reader.objects(rows)

    def _compile_objects(self, shape: Any, db: str) -> _CompiledObjects:
        queryset, written = self._build(shape)
        meta = queryset.model._meta
        columns = [field for field in meta.concrete_fields if not field.primary_key]
        _, update, params, _ = _update_returning_pk(queryset, written, db, returning=columns)
        read = queryset.model._base_manager.using(db).select_related(*self._related)
        compiler = read.order_by().query.get_compiler(using=db)
        select, select_params = compiler.as_sql()
        table = compiler.connection.ops.quote_name(meta.db_table)
        sql, params = _constants_written(
            f"WITH {table} AS ({update}) {select}",
            [*params, *select_params],
            compiler.connection,
            fixed_plan=self._fixed_plan,
        )
        return _CompiledObjects(
            sql=sql,
            params=params,
            fields=_slot_fields(params),
            written=frozenset(v.key[1] for v in written.values() if isinstance(v, _Slot)),
            reader=_RowReader.of(compiler, db),
        )

    def _compile(self, queryset: QuerySet, written: Mapping[str, Any], db: str) -> _CompiledPks:
        returning = [queryset.model._meta.get_field(name) for name in self._returning]
        compiler, sql, params, converters = _update_returning_pk(
            queryset, written, db, returning=returning
        )
        sql, params = _constants_written(
            sql, params, compiler.connection, fixed_plan=self._fixed_plan
        )
        return _CompiledPks(
            connection=compiler.connection,
            sql=sql,
            params=params,
            fields=_slot_fields(params),
            written=frozenset(v.key[1] for v in written.values() if isinstance(v, _Slot)),
            converters=converters,
            apply_converters=compiler.apply_converters,
        )


@dataclass(frozen=True)
class _CompiledObjects:
    sql: str
    params: tuple  # with a ``Slot`` where each call's values go
    fields: dict  # slot name → its field
    written: frozenset  # the names of the slots written (the rest are compared)
    reader: _RowReader


def _slotted(
    compiled: _CompiledPks | _CompiledObjects, values: Mapping[str, Any], connection
) -> list:
    """The statement's parameters with each call's ``values`` in their slots, prepared as the
    field prepares a value it writes or compares."""
    prepared = {}
    for name, field in compiled.fields.items():
        prepare = field.get_db_prep_save if name in compiled.written else field.get_db_prep_value
        prepared["slot", name] = prepare(values[name], connection)
    return [prepared[p.key] if isinstance(p, _Slot) else p for p in compiled.params]


def _slot_fields(params: list) -> dict[str, Field]:
    """Slot name → its field, of the ``Slot``s among a compiled statement's parameters."""
    return {p.key[1]: p.output_field for p in params if isinstance(p, _Slot)}


# A placeholder or an escaped percent sign, as the compiler writes them.
_PLACEHOLDER_OR_PERCENT = re.compile(r"(%%|%s)")
# Constants written into a statement's text: what a literal renders unambiguously.
_WRITTEN_CONSTANTS = (str, bool, int)


def _constants_written(
    sql: str, params: Sequence, connection: BaseDatabaseWrapper, *, fixed_plan: bool
) -> tuple[str, tuple]:
    """A statement of a fixed plan with each constant parameter (a string, a boolean, a whole
    number: what the queryset itself says, not a ``Slot``) written into its text as a
    literal; its slots stay parameters. A generic plan is made without the parameters'
    values: a stage compared as ``$3`` matched no partial index's condition (``current_stage
    <> 'done'``) and no column statistics, and the plan for any value of it read otherwise
    than the plan for the value the statement always has."""
    if not fixed_plan or connection.vendor != "postgresql":
        return sql, tuple(params)
    given = iter(params)
    kept: list = []
    pieces = []
    for piece in _PLACEHOLDER_OR_PERCENT.split(sql):
        if piece != "%s":
            pieces.append(piece)
            continue
        param = next(given)
        if isinstance(param, _Slot) or not isinstance(param, _WRITTEN_CONSTANTS):
            pieces.append(piece)
            kept.append(param)
        else:
            pieces.append(connection.ops.compose_sql("%s", [param]).replace("%", "%%"))
    return "".join(pieces), tuple(kept)


def _update_returning_pk(
    queryset: QuerySet, values: Mapping[str, Any], db: str, *, returning: list[Field] = ()
):
    """``queryset.update(**values)`` as ``QuerySet.update`` compiles it, returning the primary
    keys (and the ``returning`` fields after them): the compiler, the SQL, its parameters and
    the converters of the columns returned."""
    connection = connections[db]
    if not returns_rows_from_update(connection):
        raise NotImplementedError(f"{connection.vendor} returns no rows from an UPDATE")
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(values)
    query.clear_ordering(force=True)
    query.clear_select_clause()
    return _returning(query, db, [queryset.model._meta.pk, *returning])


def _written_pks(db: str, sql: str, params: list, apply_converters, converters) -> list:
    return [row[0] for row in _written_rows(db, sql, params, apply_converters, converters)]


def _written_rows(
    db: str, sql: str, params: list, apply_converters, converters, *, fixed_plan: bool = False
) -> list[tuple]:
    connection = connections[db]
    with (
        transaction.mark_for_rollback_on_error(using=db),
        _cursor(connection, fixed_plan=fixed_plan) as cursor,
    ):
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if converters:
        rows = apply_converters(rows, converters)
    return [tuple(row) for row in rows]


def update_returning_pks(queryset: QuerySet, **values: Any) -> list:
    """``queryset.update(**values)`` that returns the primary keys of the rows it wrote, in one
    ``UPDATE … RETURNING`` (Django's own UPDATE, compiled as ``QuerySet.update`` compiles it).
    The queryset may select its rows by a sliced subquery (``pk__in=due[:n]``).

    Where the database returns no rows from an UPDATE, the caller takes another way
    (``returns_rows_from_update``): this one raises ``NotImplementedError`` there."""
    db = queryset.db if queryset._db else router.db_for_write(queryset.model)
    compiler, sql, params, converters = _update_returning_pk(queryset, values, db)
    return _written_pks(db, sql, params, compiler.apply_converters, converters)


@dataclass(frozen=True)
class _CompiledInsert:
    connection: BaseDatabaseWrapper
    sql: str | None  # None: the database cannot return the key it makes (``objects.create``)
    fields: list[Field]
    # Per field, how ``insert`` finds its value without an instance: the names it may be given
    # under, the default, whether ``pre_save`` makes it now (``auto_now``/``auto_now_add``).
    # None where a field's ``pre_save`` is its own: ``insert`` is ``create`` there.
    sources: tuple[_Source, ...] | None
    # Every name ``insert`` takes a value under (the sources' names, known once).
    names: frozenset[str] = frozenset()
    # Whether the INSERT returns the primary key the database made, and its converters.
    returns_pk: bool = False
    # Several rows' values go as one array per field (PostgreSQL's ``UNNEST`` of Django's
    # bulk inserts), not one parameter per field and row.
    by_column: bool = False
    converters: dict = dataclass_field(default_factory=dict)
    apply_converters: Callable | None = None


@dataclass(frozen=True)
class _Source:
    field: Field
    names: tuple[str, ...]
    made_now: bool
    # The type of value the database takes as it is from this field (a text field's ``str``):
    # ``get_db_prep_save`` would hand it over unchanged, so it is not called for one.
    plain: type | None

    def prepared(self, value: Any, connection: BaseDatabaseWrapper) -> Any:
        if type(value) is self.plain:
            return value
        return self.field.get_db_prep_save(value, connection)


# Fields whose ``get_db_prep_save`` returns a value of this type unchanged on every backend.
_PLAIN = {CharField: str, TextField: str}


class CompiledInsert(Generic[M]):
    """``model.objects.create(**values)`` with the INSERT's SQL compiled once per process:
    each call builds the instance, prepares its values as the compiler prepares them
    (``pre_save``, then ``get_db_prep_save``) and executes the statement.

    For a model of one table whose values are plain values (no expressions), with no
    ``pre_save``/``post_save`` receivers: where any of that does not hold, the call is
    ``objects.create`` itself. A primary key the database makes (an ``AutoField``) comes back
    from the INSERT itself (``RETURNING``), where the database returns rows from one: elsewhere
    the call is ``objects.create`` too."""

    # The most rows ``create_many`` writes in one statement (fewer where the database takes
    # fewer parameters): statements are compiled per number of rows, so at most this many.
    MANY_BATCH = 100

    def __init__(self, model: type[M]) -> None:
        if model._meta.parents:
            raise ValueError("CompiledInsert writes one table: no multi-table inheritance")
        self._model = model
        self._compiled: dict = {}

    def create(self, **values: Any) -> M:
        model = self._model
        if self._needs_save(values):
            return model._default_manager.create(**values)
        db = router.db_for_write(model)
        connection = connections[db]
        obj = model(**values)
        compiled = _compiled_once(self._compiled, db, lambda: _compile_insert(obj, db))
        if compiled.sql is None:
            return model._default_manager.create(**values)
        params = [
            field.get_db_prep_save(field.pre_save(obj, True), connection)
            for field in compiled.fields
        ]
        made_pk = _executed(compiled, db, params)
        if compiled.returns_pk:
            obj.pk = made_pk
        obj._state.adding = False
        obj._state.db = db
        return obj

    def _needs_save(self, values: Mapping[str, Any]) -> bool:
        """Whether only ``objects.create`` writes these values as it would: an expression
        among them, or receivers of the model's save signals."""
        model = self._model
        return any(hasattr(value, "resolve_expression") for value in values.values()) or (
            signals.pre_save.has_listeners(model) or signals.post_save.has_listeners(model)
        )

    def insert(self, **values: Any) -> Any:
        """``create`` whose instance nobody reads: the same row written, its primary key
        returned, and no instance built. Each field's value is the one given (under its name
        or, for a relation, its ``attname``; a related instance stands for its key), else its
        default, else now for an ``auto_now``/``auto_now_add`` field — what ``create`` would
        store. Building the instance was half of each of the worker's event appends."""
        model = self._model
        if self._needs_save(values):
            return model._default_manager.create(**values).pk
        db = router.db_for_write(model)
        compiled = _compiled_once(self._compiled, db, lambda: _compile_insert(model(), db))
        if compiled.sql is None or compiled.sources is None:
            return model._default_manager.create(**values).pk
        params, pk = self._params(compiled, values, connections[db])
        made_pk = _executed(compiled, db, params)
        return made_pk if compiled.returns_pk else pk

    def prepared_row(self, **values: Any) -> tuple[tuple[Field, ...], list]:
        """The fields ``insert`` writes, in order, and the row it would write for ``values``
        (its parameters, prepared), for a statement of the caller's own that writes the row
        (``INSERT … SELECT``). ``NotImplementedError`` where ``insert`` is ``create``."""
        model = self._model
        db = router.db_for_write(model)
        compiled = _compiled_once(self._compiled, db, lambda: _compile_insert(model(), db))
        if compiled.sql is None or compiled.sources is None or self._needs_save(values):
            raise NotImplementedError(f"{model.__name__}: only objects.create writes this row")
        return tuple(compiled.fields), self._params(compiled, values, connections[db])[0]

    def insert_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """``insert`` of each of ``rows``, in one statement: a transition's event and the
        start of the stage it moves to are written together. Where one statement cannot
        write them as ``insert`` would (a key the database makes, a value ``create`` must
        write), each row is inserted on its own."""
        if len(rows) == 1:
            self.insert(**rows[0])
            return
        model = self._model
        db = router.db_for_write(model)
        compiled = _compiled_once(
            self._compiled,
            (db, len(rows), "values"),
            lambda: _compile_insert(model(), db, rows=len(rows), by_row=True),
        )
        if compiled.sql is None or compiled.sources is None or any(map(self._needs_save, rows)):
            for values in rows:
                self.insert(**values)
            return
        connection = connections[db]
        _executed_rows(compiled, db, [self._params(compiled, v, connection)[0] for v in rows])

    def create_many(self, objs: Sequence[M]) -> None:
        """``bulk_create(objs)`` of built instances whose primary keys are set, each batch's
        INSERT compiled once per process and size: Django's compiles a placeholder for every
        value of every row (``run_start``: 1,000 items of 48 fields). For a model whose key
        the database makes, it is ``bulk_create`` itself."""
        model = self._model
        if model._meta.auto_field is not None:
            model._default_manager.bulk_create(objs)
            return
        db = router.db_for_write(model)
        connection = connections[db]
        fields = model._meta.local_concrete_fields
        size = min(self.MANY_BATCH, connection.ops.bulk_batch_size(fields, objs) or 1)
        for start in range(0, len(objs), size):
            batch = objs[start : start + size]
            rows = len(batch)
            compiled = _compiled_once(
                self._compiled, (db, rows), partial(_compile_insert, model(), db, rows=rows)
            )
            # A text field's ``str`` goes as it is (``_Source.prepared``).
            sources = compiled.sources or ()
            plain = [source.plain for source in sources] or [None] * len(compiled.fields)
            prepared = [
                [
                    value
                    if type(value := field.pre_save(obj, True)) is kind
                    else field.get_db_prep_save(value, connection)
                    for field, kind in zip(compiled.fields, plain, strict=True)
                ]
                for obj in batch
            ]
            _executed_rows(compiled, db, prepared)
            for obj in batch:
                obj._state.adding = False
                obj._state.db = db

    def _params(
        self, compiled: _CompiledInsert, values: Mapping[str, Any], connection: BaseDatabaseWrapper
    ) -> tuple[list, Any]:
        """One row's parameters, field by field, and its primary key."""
        sources = compiled.sources
        unknown = values.keys() - compiled.names
        if unknown:
            raise TypeError(f"{self._model.__name__} has no field named {sorted(unknown)}")
        params, pk = [], None
        for source in sources:
            value = _given_or_default(source, values)
            if source.field.primary_key:
                pk = value
            params.append(source.prepared(value, connection))
        return params, pk


_MISSING = object()


def _given_or_default(source: _Source, values: Mapping[str, Any]) -> Any:
    if source.made_now:
        return timezone.now()  # as ``pre_save`` does, whatever was given
    for name in source.names:
        value = values.get(name, _MISSING)
        if value is not _MISSING:
            break
    else:
        return source.field.get_default()
    if isinstance(value, Model) and source.field.is_relation:
        return getattr(value, source.field.target_field.attname)
    return value


def _source(field: Field) -> _Source | None:
    # What ``pre_save`` makes of a value, known here: the value itself (``Field``), or now for
    # a date and time kept automatically (``DateTimeField``). None for any other.
    if type(field).pre_save not in (Field.pre_save, DateTimeField.pre_save):
        return None
    made_now = bool(getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False))
    names = (field.name, field.attname) if field.attname != field.name else (field.name,)
    target = field.target_field if field.is_relation else field
    return _Source(field=field, names=names, made_now=made_now, plain=_PLAIN.get(type(target)))


def _compile_insert(obj: Model, db: str, *, rows: int = 1, by_row: bool = False) -> _CompiledInsert:
    # The fields and the statement ``Model.save_base`` gives ``_do_insert`` for a new row:
    # without the auto field, whose value the INSERT returns. Several ``rows`` (one VALUES
    # list each) only where no key comes back.
    #
    # ``by_row``: one parameter per field and row even where the database's compiler would
    # send one array per field (PostgreSQL's ``UNNEST``, which spares the planner a long
    # VALUES list). A transition's two events go to a prepared statement, planned once:
    # their ten arrays cost the worker ≈ 50 µs a statement more to send than twenty values.
    opts = obj._meta
    fields = [f for f in opts.local_concrete_fields if not f.generated and f is not opts.auto_field]
    query = InsertQuery(type(obj))
    query.insert_values(fields, [obj] * rows)
    if by_row:
        compiler = SQLInsertCompiler(query, connections[db], db)
    else:
        compiler = query.get_compiler(using=db)
    returns_pk = opts.auto_field is not None
    if returns_pk:
        if rows > 1 or not compiler.connection.features.can_return_columns_from_insert:
            return _CompiledInsert(
                connection=compiler.connection, sql=None, fields=fields, sources=None
            )
        compiler.returning_fields = [opts.pk]
    [(sql, params)] = compiler.as_sql()
    by_column = rows > 1 and len(params) == len(fields)
    if len(params) != len(fields) * rows and not by_column:
        raise ValueError("CompiledInsert needs one parameter per field and row, or per field")
    sources = tuple(_source(field) for field in fields)
    return _CompiledInsert(
        connection=compiler.connection,
        sql=sql,
        fields=fields,
        sources=None if None in sources else sources,
        names=frozenset(name for source in sources if source for name in source.names),
        returns_pk=returns_pk,
        by_column=by_column,
        converters=compiler.get_converters([opts.pk.get_col(opts.db_table)]) if returns_pk else {},
        apply_converters=compiler.apply_converters,
    )


def _executed_rows(compiled: _CompiledInsert, db: str, rows: list[list]) -> None:
    """Run a several-row INSERT with each row's parameters: one array per field where the
    statement takes them so (``by_column``), else row after row."""
    if compiled.by_column:
        _executed(compiled, db, [list(column) for column in zip(*rows, strict=True)])
    else:
        _executed(compiled, db, [param for row in rows for param in row])


def _executed(compiled: _CompiledInsert, db: str, params: list) -> Any:
    """Run the INSERT; the primary key it returns (None when it returns none)."""
    connection = connections[db]
    with (
        transaction.mark_for_rollback_on_error(using=db),
        fixed_plan_cursor(connection) as cursor,
    ):
        cursor.execute(compiled.sql, params)
        if not compiled.returns_pk:
            return None
        row = cursor.fetchone()
    if compiled.converters:
        row = next(compiled.apply_converters([row], compiled.converters))
    return row[0]
