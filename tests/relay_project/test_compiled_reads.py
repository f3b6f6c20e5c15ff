from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone

from batch_import.models import ImportRun, ImportRunItem
from relay_project.compiled_reads import CompiledGet
from relay_project.crypto import reveal
from tests.factories import ImportRunItemFactory

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
