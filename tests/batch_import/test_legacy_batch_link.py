"""The run's V1 batch lists each provider once, without a row lock on the item path."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from batch_import.legacy_batch import link_legacy_batch
from batch_import.models import LegacyImportBatch
from tests.factories import ImportRunFactory

pytestmark = pytest.mark.django_db(transaction=True)


def make_batch(**kwargs) -> LegacyImportBatch:
    run = ImportRunFactory()
    return LegacyImportBatch.objects.create(
        host=run.host, run_id=run.run_id, mode="partial", **kwargs
    )


def test_a_provider_is_listed_once_in_the_order_items_linked():
    batch = make_batch()
    for provider in ("kimi", "deepseek", "kimi"):
        linked = link_legacy_batch(batch.run_id, provider)
        assert linked.pk == batch.pk
    batch.refresh_from_db()
    assert batch.provider_ids == ["kimi", "deepseek"]


def test_concurrent_links_lose_no_provider():
    """Items of many providers link at once: a compare-and-swap that lost re-reads and adds
    its provider to the winner's list (a plain read-modify-write would drop some)."""
    batch = make_batch(provider_ids=["first"])
    providers = [f"p{n}" for n in range(8)]

    def link(provider: str) -> None:
        try:
            link_legacy_batch(batch.run_id, provider)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(link, providers))
    batch.refresh_from_db()
    assert batch.provider_ids[0] == "first"
    assert sorted(batch.provider_ids[1:]) == providers


def test_a_swap_against_a_changed_list_writes_nothing(monkeypatch):
    """The losing writer's UPDATE matches no row, and the retry lists both providers."""
    batch = make_batch()
    real_get = LegacyImportBatch.objects.get
    calls = {"n": 0}

    def get_then_someone_else_links(*args, **kwargs):
        found = real_get(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:  # between our read and our swap, another item links "other"
            LegacyImportBatch.objects.filter(pk=batch.pk).update(provider_ids=["other"])
        return found

    monkeypatch.setattr(LegacyImportBatch.objects, "get", get_then_someone_else_links)
    link_legacy_batch(batch.run_id, "mine")
    batch.refresh_from_db()
    assert batch.provider_ids == ["other", "mine"] and calls["n"] == 2
