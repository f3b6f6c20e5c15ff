from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, models, transaction
from django.db.models import F, Max, OuterRef, Q, Subquery, Sum
from django.db.models.signals import post_save
from django.db.models.sql.compiler import SQLCompiler, SQLInsertCompiler, SQLUpdateCompiler
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batch_import.models import ImportRun, ImportRunItem, ImportRunItemEvent
from hosts.models import ManagedResource
from relay_project import compiled_reads
from relay_project.compiled_reads import (
    CompiledGet,
    CompiledInsert,
    CompiledValues,
    GuardedUpdate,
    Slot,
    UpdateReturning,
)
from relay_project.crypto import reveal
from tests.factories import HostFactory, ImportRunFactory, ImportRunItemFactory

pytestmark = pytest.mark.django_db

WITH_RUN = CompiledGet(lambda: ImportRunItem.objects.select_related("run"))


@pytest.fixture
def compiles(monkeypatch) -> list[str]:
    """The tables of the SELECTs Django compiles."""
    compiled, real = [], SQLCompiler.as_sql

    def as_sql(self, *args, **kwargs):
        compiled.append(self.query.model._meta.db_table)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SQLCompiler, "as_sql", as_sql)
    return compiled


def stored_item() -> ImportRunItem:
    return ImportRunItemFactory(
        raw_models=["kimi-k2.6", "glm-4.5"],
        next_retry_at=timezone.now() + timedelta(minutes=3),
        run__probe_api_key="sk-probe-000001",
    )


def test_a_compiled_get_reads_the_row_and_its_related_one_as_the_queryset_does():
    item = stored_item()
    expected = ImportRunItem.objects.select_related("run").get(pk=item.pk)
    read = WITH_RUN.get(item.pk)
    assert type(read) is ImportRunItem and not read._state.adding and read._state.db == "default"
    for field in ImportRunItem._meta.concrete_fields:
        assert getattr(read, field.attname) == getattr(expected, field.attname), field.name
    assert ImportRunItem.run.is_cached(read)
    for field in ImportRun._meta.concrete_fields:
        assert getattr(read.run, field.attname) == getattr(expected.run, field.attname), field.name
    assert read.raw_models == ["kimi-k2.6", "glm-4.5"]
    assert reveal(read.run.probe_api_key) == "sk-probe-000001"
    assert read.next_retry_at == item.next_retry_at


def test_a_compiled_get_compiles_its_sql_once(compiles):
    first, second = ImportRunItemFactory(), ImportRunItemFactory()
    reads = CompiledGet(lambda: ImportRunItem.objects.select_related("run"))
    assert reads.get(first.pk).pk == first.pk
    assert reads.get(second.pk).run_id == second.run_id
    assert compiles == ["import_run_items"]


def test_a_compiled_get_of_a_missing_row_raises_does_not_exist():
    with pytest.raises(ImportRunItem.DoesNotExist):
        WITH_RUN.get("item_missing")


def test_a_compiled_get_defers_what_the_queryset_leaves_out():
    item = ImportRunItemFactory()
    read = CompiledGet(lambda: ImportRun.objects.only("state", "mode")).get(item.run_id)
    assert (read.pk, read.state, read.mode) == (item.run_id, "running", item.run.mode)
    assert read.get_deferred_fields() >= {"subscription_users", "probe_api_key"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not connection.features.has_select_for_update, reason="SQLite has no FOR UPDATE"
)
def test_a_compiled_locked_get_needs_a_transaction_as_the_queryset_does():
    item = ImportRunItemFactory()
    locked = CompiledGet(lambda: ImportRunItem.objects.select_for_update())
    with transaction.atomic():
        assert locked.get(item.pk).pk == item.pk
    with pytest.raises(transaction.TransactionManagementError):
        locked.get(item.pk)


def test_a_compiled_get_builds_its_queryset_once(compiles):
    item = ImportRunItemFactory()
    built = []

    def queryset():
        built.append("built")
        return ImportRunItem.objects.select_for_update(of=("self",)).select_related("run")

    locked = CompiledGet(queryset)
    with transaction.atomic():
        reads = [locked.get(item.pk) for _ in range(3)]
    assert [read.run.pk for read in reads] == [item.run_id] * 3
    assert len(built) <= 2  # what it reads from and what it compiles: once each
    with pytest.raises(ImportRunItem.DoesNotExist), transaction.atomic():
        locked.get("item_missing")
    assert len(built) <= 2


@pytest.fixture(params=[True, False], ids=["returning", "read-back"])
def returns_rows(request, monkeypatch) -> bool:
    """Both ways: the database returns the row from the UPDATE, or it does not."""
    if not request.param:
        monkeypatch.setattr(compiled_reads, "returns_rows_from_update", lambda connection: False)
    return request.param


ITEM_RETRIES = UpdateReturning(
    lambda: ImportRunItem.objects.all(),
    returning=("retry_count", "next_retry_at", "api_key", "requested_models"),
)


def test_update_returning_gives_the_row_as_the_update_left_it(returns_rows):
    item = ImportRunItemFactory(retry_count=2, key="sk-upstream-000002", requested_models=["m"])
    due = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        updated = ITEM_RETRIES.update(item.pk, values={"next_retry_at": due, "retry_count": 5})
    stored = ImportRunItem.objects.get(pk=item.pk)
    assert type(updated) is ImportRunItem and updated._state.db == "default"
    assert (updated.pk, updated.retry_count, updated.next_retry_at) == (item.pk, 5, due)
    assert (stored.retry_count, stored.next_retry_at) == (5, due)
    assert reveal(updated.api_key) == "sk-upstream-000002"
    assert updated.requested_models == ["m"]
    assert updated.get_deferred_fields() >= {"current_stage", "base_url", "attempt"}
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == (1 if returns_rows else 2), statements


def test_update_returning_of_a_row_the_queryset_leaves_out_is_none_and_writes_nothing(
    returns_rows,
):
    item = ImportRunItemFactory(retry_count=2)
    finished = UpdateReturning(
        lambda: ImportRunItem.objects.filter(current_stage="done"), returning=("retry_count",)
    )
    assert finished.update(item.pk, values={"retry_count": 3}) is None
    assert ImportRunItem.objects.get(pk=item.pk).retry_count == 2


def test_update_returning_write_says_whether_it_wrote_without_an_instance(
    returns_rows, monkeypatch
):
    item = ImportRunItemFactory(retry_count=2)
    finished = UpdateReturning(
        lambda: ImportRunItem.objects.filter(current_stage="done"), returning=("retry_count",)
    )
    assert finished.write(item.pk, values={"retry_count": 3}) is False
    ImportRunItem.objects.filter(pk=item.pk).update(current_stage="done")
    if returns_rows:  # read back, the row is an instance already
        monkeypatch.setattr(ImportRunItem, "from_db", None)  # any instance built fails
    assert finished.write(item.pk, values={"retry_count": 4}) is True
    monkeypatch.undo()
    assert ImportRunItem.objects.get(pk=item.pk).retry_count == 4


def test_update_returning_compiles_its_sql_once_per_set_of_written_fields(monkeypatch):
    first, second = ImportRunItemFactory(), ImportRunItemFactory()
    compiled, real = [], SQLUpdateCompiler.as_sql
    monkeypatch.setattr(SQLUpdateCompiler, "as_sql", lambda self: compiled.append(1) or real(self))
    retries = UpdateReturning(
        lambda: ImportRunItem.objects.all(), returning=("retry_count", "next_retry_at")
    )
    counts = [retries.update(i.pk, values={"retry_count": n}) for i, n in ((first, 1), (second, 2))]
    counts.append(retries.update(first.pk, values={"retry_count": 4}))
    assert [item.retry_count for item in counts] == [1, 2, 4]
    due = timezone.now()
    assert retries.update(second.pk, values={"next_retry_at": None}).next_retry_at is None
    assert retries.update(second.pk, values={"next_retry_at": due}).next_retry_at == due
    assert len(compiled) == 2


ITEM_IF_UNCHANGED = GuardedUpdate(
    ImportRunItem,
    returning=lambda: {
        "run_state": Subquery(ImportRun.objects.filter(pk=OuterRef("run_id")).values("state")),
        "retry_count": F("retry_count"),
        "next_retry_at": F("next_retry_at"),
    },
)


def test_a_guarded_update_writes_only_while_the_row_holds_what_was_read(monkeypatch):
    item = ImportRunItemFactory(retry_count=2, attempt=1)
    ImportRun.objects.filter(pk=item.run_id).update(state="cancelled")
    compiled, real = [], SQLUpdateCompiler.as_sql
    monkeypatch.setattr(SQLUpdateCompiler, "as_sql", lambda self: compiled.append(1) or real(self))
    due = timezone.now()

    written = ITEM_IF_UNCHANGED.write(
        item.pk, values={"retry_count": 3, "next_retry_at": due}, expected={"attempt": 1}
    )
    assert written == {"run_state": "cancelled", "retry_count": 3, "next_retry_at": due}
    refused = ITEM_IF_UNCHANGED.write(
        item.pk, values={"retry_count": 4, "next_retry_at": None}, expected={"attempt": 2}
    )
    assert refused is None
    assert ImportRunItem.objects.get(pk=item.pk).retry_count == 3
    assert (
        ITEM_IF_UNCHANGED.write(
            "item_missing",
            values={"retry_count": 5, "next_retry_at": None},
            expected={"attempt": 1},
        )
        is None
    )
    assert len(compiled) == 1  # one statement per written and compared fields


def test_update_returning_pks_writes_as_update_does_and_says_which_rows():
    run = ImportRunFactory()
    written = [ImportRunItemFactory(run=run, attempt=1) for _ in range(3)]
    ImportRunItemFactory(run=run, attempt=2)
    until = timezone.now() + timedelta(minutes=1)
    items = ImportRunItem.objects.filter(run=run, attempt=1)

    with CaptureQueriesContext(connection) as captured:
        pks = compiled_reads.update_returning_pks(items, lease_owner="w", lease_until=until)

    assert sorted(pks) == sorted(item.pk for item in written)
    assert len(captured) == 1
    leased = ImportRunItem.objects.filter(lease_owner="w", lease_until=until)
    assert sorted(leased.values_list("pk", flat=True)) == sorted(pks)


def test_update_returning_pks_of_a_sliced_subquery_writes_only_its_rows():
    run = ImportRunFactory()
    items = [ImportRunItemFactory(run=run) for _ in range(4)]
    first_two = ImportRunItem.objects.filter(run=run).order_by("position").values("pk")[:2]

    pks = compiled_reads.update_returning_pks(
        ImportRunItem.objects.filter(pk__in=first_two), lease_owner="w"
    )

    assert sorted(pks) == sorted(item.pk for item in sorted(items, key=lambda i: i.position)[:2])
    assert ImportRunItem.objects.filter(lease_owner="w").count() == 2


def test_update_returning_pks_needs_a_database_that_returns_rows(monkeypatch):
    monkeypatch.setattr(compiled_reads, "returns_rows_from_update", lambda connection: False)
    with pytest.raises(NotImplementedError):
        compiled_reads.update_returning_pks(ImportRunItem.objects.all(), lease_owner="w")


NEW_EVENT = CompiledInsert(ImportRunItemEvent)


def event_values(item: ImportRunItem, n: int) -> dict:
    return {
        "run_id": item.run_id,
        "item": item,
        "event_type": ImportRunItemEvent.EventType.ADVISORY,
        "stage": item.current_stage,
        "attempt": 2,
        "message": f"note {n}",
        "message_i18n": {"id": "note", "args": {"n": n}},
        "payload": {"n": n, "nested": [1, "two", None]},
    }


def stored_row(event_id: str) -> dict:
    row = ImportRunItemEvent.objects.filter(pk=event_id).values().get()
    return {k: v for k, v in row.items() if k not in ("event_id", "created_at")}


def test_a_compiled_insert_writes_the_row_and_statement_create_writes():
    item = ImportRunItemFactory()
    with CaptureQueriesContext(connection) as by_create:
        made = ImportRunItemEvent.objects.create(**event_values(item, 1))
    with CaptureQueriesContext(connection) as by_compiled:
        ours = NEW_EVENT.create(**event_values(item, 1))

    assert stored_row(ours.pk) == stored_row(made.pk)
    assert ours.created_at is not None and not ours._state.adding and ours._state.db == "default"
    assert ImportRunItemEvent.objects.get(pk=ours.pk).created_at == ours.created_at
    [create_sql] = [q["sql"] for q in by_create]
    [compiled_sql] = [q["sql"] for q in by_compiled]
    assert compiled_sql.split(" VALUES ")[0] == create_sql.split(" VALUES ")[0]


def test_a_compiled_insert_compiles_its_sql_once(monkeypatch):
    item = ImportRunItemFactory()
    compiled, real = [], SQLInsertCompiler.as_sql

    def as_sql(self, *args, **kwargs):
        compiled.append(self.query.model)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SQLInsertCompiler, "as_sql", as_sql)
    inserts = CompiledInsert(ImportRunItemEvent)
    events = [inserts.create(**event_values(item, n)) for n in range(3)]

    assert compiled == [ImportRunItemEvent]
    assert [stored_row(e.pk)["message"] for e in events] == ["note 0", "note 1", "note 2"]


@pytest.mark.parametrize(
    "write",
    [lambda values: NEW_EVENT.create(**values).pk, lambda values: NEW_EVENT.insert(**values)],
    ids=["create", "insert"],
)
def test_a_compiled_insert_is_create_itself_where_save_has_receivers(write):
    item = ImportRunItemFactory()
    seen = []

    def receiver(sender, instance, created, **kwargs):
        seen.append((instance.pk, created))

    post_save.connect(receiver, sender=ImportRunItemEvent)
    try:
        pk = write(event_values(item, 1))
    finally:
        post_save.disconnect(receiver, sender=ImportRunItemEvent)
    assert seen == [(pk, True)]


def test_an_insert_writes_the_row_create_writes_without_an_instance(monkeypatch):
    item = ImportRunItemFactory()
    made = ImportRunItemEvent.objects.create(**event_values(item, 1))
    NEW_EVENT.insert(**event_values(item, 0))  # compiled (from an instance) once per process
    built = []
    monkeypatch.setattr(
        ImportRunItemEvent, "__init__", lambda self, *a, **k: built.append(1) or None
    )
    before = timezone.now()
    pk = NEW_EVENT.insert(**event_values(item, 1))
    monkeypatch.undo()

    assert built == []
    assert stored_row(pk) == stored_row(made.pk)
    assert before <= ImportRunItemEvent.objects.get(pk=pk).created_at <= timezone.now()


def test_an_insert_takes_defaults_keys_for_relations_and_makes_its_own_time():
    item = ImportRunItemFactory()
    given = {"run_id": item.run_id, "item_id": item.pk, "event_type": "advisory", "stage": "probe"}
    made = ImportRunItemEvent.objects.create(**given, created_at=timezone.now() - timedelta(days=9))
    pk = NEW_EVENT.insert(**given, created_at=timezone.now() - timedelta(days=9))

    assert stored_row(pk) == stored_row(made.pk)
    assert stored_row(pk)["attempt"] == 1 and stored_row(pk)["payload"] == {}
    stored = ImportRunItemEvent.objects.filter(pk__in=[pk, made.pk]).values_list("created_at")
    assert all(at > timezone.now() - timedelta(minutes=1) for (at,) in stored)  # auto_now_add


def test_an_insert_refuses_a_name_the_model_has_not():
    item = ImportRunItemFactory()
    with pytest.raises(TypeError, match="colour"):
        NEW_EVENT.insert(**event_values(item, 1), colour="red")
    assert not ImportRunItemEvent.objects.exists()


def test_an_insert_leaves_a_field_of_its_own_making_to_create():
    class Stamped(models.CharField):
        def pre_save(self, model_instance, add):
            return "stamped"

    field = Stamped(max_length=9)
    field.set_attributes_from_name("stamp")
    assert compiled_reads._source(field) is None
    assert compiled_reads._source(ImportRunItemEvent._meta.get_field("created_at")).made_now


def test_an_insert_hands_over_as_they_are_only_plain_texts():
    """A text of a plain text field goes to the database unchanged; an encrypted one (a
    subclass) is prepared by its field, never written as it was given."""
    source = compiled_reads._source
    assert source(ImportRunItemEvent._meta.get_field("message")).plain is str
    assert source(ImportRunItemEvent._meta.get_field("item")).plain is str  # its key
    api_key = source(ImportRunItem._meta.get_field("api_key"))
    assert api_key.plain is None
    assert api_key.prepared("sk-secret", connection) != "sk-secret"


NEW_RECORD = CompiledInsert(ManagedResource)


def record_values(host, n: int) -> dict:
    return {
        "host": host,
        "resource_type": ManagedResource.ResourceType.USER,
        "host_resource_id": str(n),
        "logical_key": f"user-{n}@example.com",
        "secret": f"sk-user-key-{n:04d}",
        "families": ["kimi"],
    }


def managed_row(pk: int, *, numbered: bool = False) -> dict:
    """The stored row without its key and times (``numbered``: only the fields that differ
    from one ``record_values`` to the next, the secret's ciphertext among them)."""
    row = ManagedResource.objects.filter(pk=pk).values().get()
    if numbered:
        return {k: v for k, v in row.items() if k in ("host_resource_id", "logical_key", "secret")}
    return {k: v for k, v in row.items() if k not in ("id", "created_at", "updated_at")}


def test_a_compiled_insert_returns_the_key_the_database_makes(monkeypatch):
    host = HostFactory()
    made = ManagedResource.objects.create(**record_values(host, 1))
    compiled, real = [], SQLInsertCompiler.as_sql
    monkeypatch.setattr(SQLInsertCompiler, "as_sql", lambda self: compiled.append(1) or real(self))

    ours = NEW_RECORD.create(**record_values(host, 2))
    inserted = NEW_RECORD.insert(**record_values(host, 3))

    assert ours.pk == made.pk + 1 and inserted == made.pk + 2
    assert not ours._state.adding and ours._state.db == "default"
    assert managed_row(ours.pk) == managed_row(made.pk) | managed_row(ours.pk, numbered=True)
    assert reveal(ManagedResource.objects.get(pk=inserted).secret) == "sk-user-key-0003"
    assert len(compiled) == 1  # once for both, in this process


def test_insert_many_writes_the_rows_inserts_write_in_one_statement():
    item = ImportRunItemFactory()
    one = [NEW_EVENT.insert(**event_values(item, n)) for n in (1, 2)]
    rows = [event_values(item, n) | {"event_id": f"evt_many_{n}"} for n in (1, 2)]
    before = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        NEW_EVENT.insert_many(rows)

    assert [q["sql"][:6] for q in queries] == ["INSERT"]
    # A value per field and row, not an array per field (PostgreSQL's UNNEST): the statement
    # is prepared, and a few rows' arrays cost more to send than their values.
    assert "UNNEST" not in queries[0]["sql"].upper()
    assert [stored_row(f"evt_many_{n}") for n in (1, 2)] == [stored_row(pk) for pk in one]
    many = ImportRunItemEvent.objects.filter(pk__startswith="evt_many_").order_by("pk")
    assert all(before <= event.created_at <= timezone.now() for event in many)


def test_insert_many_of_a_model_whose_keys_the_database_makes_inserts_each_row():
    host = HostFactory()
    with CaptureQueriesContext(connection) as queries:
        NEW_RECORD.insert_many([record_values(host, 4), record_values(host, 5)])
    inserts = [q for q in queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 2
    stored = ManagedResource.objects.filter(host=host).values_list("host_resource_id", flat=True)
    assert sorted(stored) == ["4", "5"]


@pytest.mark.skipif(
    connection.vendor != "sqlite", reason="an SQLite before 3.35; PostgreSQL returns the key"
)
def test_a_compiled_insert_is_create_where_the_database_cannot_return_the_key(monkeypatch):
    host = HostFactory()
    monkeypatch.setattr(connection.features, "can_return_columns_from_insert", False)
    record = CompiledInsert(ManagedResource).create(**record_values(host, 7))
    assert ManagedResource.objects.get(pk=record.pk).host_resource_id == "7"


def built_items(run: ImportRun, prefix: str, count: int) -> list[ImportRunItem]:
    return [
        ImportRunItem(
            item_id=f"{prefix}{n:04d}",
            run=run,
            position=n,
            base_url=f"https://u{n % 3}.example/v1",
            provider_id=f"u{n % 3}-example",
            api_key=f"sk-many-{n:04d}",
            api_key_fingerprint="sha256:0000",
            api_key_digest=f"digest-{n}",
            requested_models=["kimi-k2.6"] if n % 2 else [],
            next_retry_at=timezone.now(),
        )
        for n in range(count)
    ]


def stored_items(prefix: str) -> list[dict]:
    rows = ImportRunItem.objects.filter(pk__startswith=prefix).order_by("pk").values()
    skipped = ("item_id", "created_at", "updated_at", "next_retry_at", "api_key")
    return [{k: v for k, v in row.items() if k not in skipped} for row in rows]


def test_create_many_writes_the_rows_bulk_create_writes_in_batches_of_compiled_inserts():
    run = ImportRun.objects.get(pk=ImportRunItemFactory().run_id)
    count = CompiledInsert.MANY_BATCH + 7
    ImportRunItem.objects.bulk_create(built_items(run, "item_bulk_", count))
    ours = built_items(run, "item_many_", count)
    many = CompiledInsert(ImportRunItem)
    with CaptureQueriesContext(connection) as queries:
        many.create_many(ours)

    fields = ImportRunItem._meta.local_concrete_fields
    batch = min(CompiledInsert.MANY_BATCH, connection.ops.bulk_batch_size(fields, ours))
    assert [q["sql"][:6] for q in queries] == ["INSERT"] * -(-count // batch)
    assert stored_items("item_many_") == stored_items("item_bulk_")
    stored = ImportRunItem.objects.get(pk="item_many_0005")
    assert reveal(stored.api_key) == "sk-many-0005"  # the secret sealed as save seals it
    assert not ours[0]._state.adding


SUMMED_RETRIES = CompiledValues(
    ImportRunItem,
    lambda: ImportRunItem.objects.filter(
        run_id=Slot("run", ImportRunItem._meta.get_field("run").target_field)
    )
    .values("run__is_preview")
    .annotate(retries=Sum("retry_count"), last=Max("updated_at"))
    .values_list("run__is_preview", "retries", "last")
    .order_by(),
)


def test_compiled_values_reads_what_the_values_queryset_reads_and_compiles_once(monkeypatch):
    run, other = ImportRunFactory(), ImportRunFactory()
    for n in (1, 2, 4):
        ImportRunItemFactory(run=run, retry_count=n)
    ImportRunItemFactory(run=other, retry_count=8)
    last = {r.pk: max(r.items.values_list("updated_at", flat=True)) for r in (run, other)}
    compiled, real = [], SQLCompiler.as_sql

    def as_sql(self, *args, **kwargs):
        compiled.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SQLCompiler, "as_sql", as_sql)

    # Converted as the queryset converts its values: a bool, a datetime.
    assert SUMMED_RETRIES.rows(run=run.run_id) == [(False, 7, last[run.pk])]
    assert SUMMED_RETRIES.rows(run=other.run_id) == [(False, 8, last[other.pk])]
    assert SUMMED_RETRIES.rows(run="run_missing") == []
    assert len(compiled) == 1


def leased_by(owner: str) -> list:
    return sorted(ImportRunItem.objects.filter(lease_owner=owner).values_list("pk", flat=True))


@pytest.mark.skipif(
    not compiled_reads.returns_rows_from_update(connection), reason="needs UPDATE … RETURNING"
)
def test_compiled_update_pks_writes_as_update_returning_pks_and_compiles_once():
    """Each shape is built and compiled once; each call's slots take its values, prepared as
    the field prepares what it compares and what it writes."""
    runs = [ImportRunFactory() for _ in range(3)]
    for run in runs:
        for _ in range(3):
            ImportRunItemFactory(run=run, attempt=1)
    built = []
    field = ImportRunItem._meta.get_field

    def build(shape):
        built.append(shape)
        count, limit = shape
        slots = [compiled_reads.Slot(f"run_{n}", field("run").target_field) for n in range(count)]
        runs_q = Q()
        for slot in slots:
            runs_q |= Q(run_id=slot)
        first = ImportRunItem.objects.filter(runs_q).order_by("position").values("pk")[:limit]
        queryset = ImportRunItem.objects.filter(pk__in=first)
        return queryset, {"lease_owner": compiled_reads.Slot("owner", field("lease_owner"))}

    statement = compiled_reads.CompiledUpdatePks(ImportRunItem, build)
    one = statement.update((1, 2), run_0=runs[0].pk, owner="a")
    two = statement.update((1, 2), run_0=runs[1].pk, owner="b")
    both = statement.update((2, 9), run_0=runs[0].pk, run_1=runs[2].pk, owner="c")

    def first_of(run, n):
        return sorted(run.items.order_by("position").values_list("pk", flat=True)[:n])

    assert built == [(1, 2), (2, 9)]
    assert sorted(one) == first_of(runs[0], 2)
    assert sorted(two) == first_of(runs[1], 2) == leased_by("b")
    assert sorted(both) == sorted(first_of(runs[0], 3) + first_of(runs[2], 3)) == leased_by("c")


def test_compiled_update_rows_returns_each_written_rows_key_and_fields_as_written():
    run = ImportRunFactory()
    items = [ImportRunItemFactory(run=run, attempt=n) for n in (1, 2)]
    field = ImportRunItem._meta.get_field

    def build(shape):
        queryset = ImportRunItem.objects.filter(run_id=Slot("run", field("run").target_field))
        return queryset, {"attempt": F("attempt") + Slot("step", field("attempt"))}

    statement = compiled_reads.CompiledUpdatePks(
        ImportRunItem, build, returning=("attempt", "lease_owner")
    )
    rows = statement.update_rows(None, run=run.pk, step=10)
    assert sorted(rows) == sorted((item.pk, item.attempt + 10, None) for item in items)
    assert sorted(statement.update(None, run=run.pk, step=1)) == sorted(i.pk for i in items)


def test_compiled_read_reads_what_the_queryset_reads_with_each_calls_values():
    """Rows with their related row (``select_related``) and deferred fields (``only``) as
    Django reads them; ``first`` as ``QuerySet.first`` (by primary key when unordered); the
    SQL built once however many calls."""
    runs = [ImportRunFactory() for _ in range(2)]
    for run in runs:
        for attempt in (1, 1, 2):
            ImportRunItemFactory(run=run, attempt=attempt)
    built = []
    field = ImportRunItem._meta.get_field

    def of_run(**filters):
        built.append(filters)
        run = compiled_reads.Slot("run", field("run").target_field)
        return ImportRunItem.objects.filter(run_id=run, **filters).select_related("run")

    rows = compiled_reads.CompiledRead(ImportRunItem, lambda: of_run(attempt=1))
    first = compiled_reads.CompiledRead(
        ImportRunItem, lambda: of_run().only("item_id", "run", "attempt"), first=True
    )
    for run in runs:
        expected = ImportRunItem.objects.filter(run=run, attempt=1).select_related("run")
        got = rows.rows(run=run.pk)
        assert [i.pk for i in got] == [i.pk for i in expected]
        assert [i.run.state for i in got] == [i.run.state for i in expected]  # no query
        one = first.first(run=run.pk)
        assert one.pk == ImportRunItem.objects.filter(run=run).first().pk
        assert one.get_deferred_fields() >= {"api_key", "base_url"}
    assert first.first(run="run_none") is None
    assert len(built) == 2  # once each


@pytest.mark.django_db(transaction=True)
def test_threads_share_what_was_compiled_and_each_reads_on_its_own_connection(compiles):
    """A worker's item places are threads with a connection each: a statement is compiled
    once for all of them (per connection, each place compiled every statement again)."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    items = [ImportRunItemFactory(), ImportRunItemFactory(), ImportRunItemFactory()]
    reads = CompiledGet(lambda: ImportRunItem.objects.select_related("run"))
    assert reads.get(items[0].pk).run_id == items[0].run_id  # compiled here, in this thread

    def read(item: ImportRunItem) -> tuple[str, str, int]:
        try:
            found = reads.get(item.pk)
            return found.pk, found.run.pk, id(connections["default"])
        finally:
            connections.close_all()

    with ThreadPoolExecutor(3) as pool:
        found = list(pool.map(read, items))
    assert [(pk, run) for pk, run, _ in found] == [(i.pk, i.run_id) for i in items]
    assert id(connections["default"]) not in {used for _, _, used in found}
    assert compiles == ["import_run_items"]


def test_a_fixed_plan_statement_has_its_constants_written_in_and_its_slots_as_parameters():
    """On PostgreSQL a generic plan sees a constant only in the statement's text: strings,
    booleans and whole numbers are written in as literals (quotes doubled, a percent sign
    escaped as the placeholders need); slots and other values stay parameters."""
    slot = compiled_reads.Slot("run", ImportRunItem._meta.get_field("run").target_field)
    sql = 'SELECT %s, "a" LIKE %s, 100%% FROM t WHERE x = %s AND y = %s AND z = %s'
    params = ["it's", "50%", slot, 1.5, True]

    written = compiled_reads._constants_written(sql, params, connection, fixed_plan=True)
    not_fixed = compiled_reads._constants_written(sql, params, connection, fixed_plan=False)

    assert not_fixed == (sql, tuple(params))
    if connection.vendor == "postgresql":
        assert written == (
            "SELECT 'it''s', \"a\" LIKE '50%%', 100%% FROM t WHERE x = %s AND y = %s AND z = true",
            (slot, 1.5),
        )
    else:  # nothing is prepared: nothing to write in
        assert written == (sql, tuple(params))


def test_a_fixed_plan_read_reads_what_the_queryset_reads_whatever_its_constants():
    run = ImportRunFactory()
    for n, base_url in enumerate(["https://50%.example/v1", "https://o'neil.example/v1", "x"]):
        ImportRunItemFactory(run=run, position=n, base_url=base_url, attempt=n)
    field = ImportRunItem._meta.get_field

    def matching(**filters):
        run_slot = compiled_reads.Slot("run", field("run").target_field)
        return ImportRunItem.objects.filter(run_id=run_slot, **filters).order_by("position")

    for filters in (
        {"base_url__contains": "50%"},
        {"base_url__startswith": "https://o'neil"},
        {"attempt__gte": 1, "base_url__endswith": "/v1"},
    ):
        read = compiled_reads.CompiledRead(
            ImportRunItem, lambda filters=filters: matching(**filters), fixed_plan=True
        )
        expected = list(ImportRunItem.objects.filter(run=run, **filters).order_by("position"))
        assert [i.pk for i in read.rows(run=run.pk)] == [i.pk for i in expected], filters
        assert expected
