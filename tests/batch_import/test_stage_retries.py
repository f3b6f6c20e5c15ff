"""What a stage asks about its earlier retries: counted from the item's retry events, and
answered without a query for an item that never retried (most of them)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from batch_import.models import ImportRunItem
from batch_import.stages.common import schedule_retry, stage_retries
from batch_import.stages.confirm import race_seen, retry
from tests.factories import ImportRunItemFactory

pytestmark = pytest.mark.django_db


def fresh(item: ImportRunItem) -> ImportRunItem:
    return ImportRunItem.objects.get(pk=item.pk)


def test_an_item_that_never_retried_is_answered_without_a_query(django_assert_num_queries):
    item = fresh(ImportRunItemFactory(current_stage="confirm", next_retry_at=timezone.now()))
    with django_assert_num_queries(0):
        assert stage_retries(item) == 0
        assert race_seen(item) is False


def test_retries_are_counted_per_stage_and_attempt():
    item = ImportRunItemFactory(current_stage="confirm", next_retry_at=timezone.now())
    schedule_retry(fresh(item), attempt=1, reason="one")
    assert stage_retries(fresh(item)) == 1 and race_seen(fresh(item)) is False
    retry(fresh(item), 2, "the host's probe settled", probe_race=True)
    assert stage_retries(fresh(item)) == 2 and race_seen(fresh(item)) is True
    ImportRunItem.objects.filter(pk=item.pk).update(current_stage="validate")
    assert stage_retries(fresh(item)) == 0  # none in this stage
    ImportRunItem.objects.filter(pk=item.pk).update(current_stage="confirm", attempt=2)
    assert stage_retries(fresh(item)) == 0 and race_seen(fresh(item)) is False  # a new attempt
