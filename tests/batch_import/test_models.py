from __future__ import annotations

import pytest
from django.db import connection

from batch_import.models import ImportRun, ImportRunItem
from tests.factories import ImportRunFactory, ImportRunItemEventFactory, ImportRunItemFactory

SEED_ENUMS = [
    (ImportRun.State, ["running", "completed", "completed_with_warnings", "failed", "cancelled"]),
    (ImportRun.Mode, ["strict", "partial"]),
    (ImportRun.AccessMode, ["subscription", "self_service"]),
    (ImportRunItem.Stage, ["probe", "provision", "confirm", "validate", "done"]),
    (ImportRunItem.ConfirmationStatus, ["pending", "confirmed", "advisory", "failed"]),
    (ImportRunItem.AccessStatus, ["unknown", "active", "degraded", "broken"]),
    (ImportRunItem.MatchedAccountState, ["active", "disabled", "deprecated", "broken"]),
    (ImportRunItem.AccountResolution, ["created", "reused", "reactivated", "replaced"]),
]


@pytest.mark.parametrize(("enum", "values"), SEED_ENUMS, ids=lambda e: getattr(e, "__name__", ""))
def test_enum_values_equal_the_seed_strings(enum, values):
    assert list(enum.values) == values


@pytest.mark.django_db
def test_rows_live_in_the_tables_of_the_seed():
    """Readers outside Django (V1 reports, SQL) find the rows under the seed's table names."""
    event = ImportRunItemEventFactory()
    item, run = event.item, event.item.run
    with connection.cursor() as cursor:
        cursor.execute("SELECT run_id FROM import_runs")
        assert cursor.fetchall() == [(run.run_id,)]
        cursor.execute("SELECT item_id, run_id FROM import_run_items")
        assert cursor.fetchall() == [(item.item_id, run.run_id)]
        cursor.execute("SELECT item_id FROM import_run_item_events")
        assert cursor.fetchall() == [(item.item_id,)]


@pytest.mark.django_db
def test_ids_are_prefixed_sortable_and_unique():
    runs = [ImportRunFactory() for _ in range(5)]
    ids = [r.run_id for r in runs]
    assert all(i.startswith("run_") for i in ids)
    assert len(set(ids)) == 5
    assert ids == sorted(ids)
    assert ImportRunItemFactory(run=runs[0]).item_id.startswith("item_")


@pytest.mark.django_db
def test_item_defaults_match_a_fresh_item():
    item = ImportRunItemFactory()
    assert item.current_stage == "probe"
    assert item.confirmation_status == "pending"
    assert item.access_status == "unknown"
    assert item.matched_account_state is None and item.account_resolution is None


@pytest.mark.django_db
def test_upstream_key_is_encrypted_at_rest_and_masked():
    item = ImportRunItemFactory(key="sk-very-secret-upstream-key")
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM import_run_items WHERE item_id = %s", [item.item_id])
        (raw,) = cursor.fetchone()
    assert "sk-very-secret-upstream-key" not in raw
    reloaded = ImportRunItem.objects.get(pk=item.pk)
    assert reloaded.api_key.reveal() == "sk-very-secret-upstream-key"
    assert "sk-very" not in repr(reloaded.api_key) + str(reloaded.api_key) + f"{reloaded.api_key}"
    assert "sk-very" not in repr(reloaded) + str(reloaded)
    assert reloaded.api_key_fingerprint.startswith("sha256:")
    assert len(reloaded.api_key_fingerprint) == len("sha256:") + 8


@pytest.mark.django_db
@pytest.mark.parametrize("stage", ImportRunItem.Stage.values)
@pytest.mark.parametrize("access", ImportRunItem.AccessStatus.values)
def test_problem_rank_is_the_problems_first_order_and_follows_every_write(stage, access):
    """Seed 004 §8.2: unfinished first, broken/degraded next. The database keeps the stored
    rank in step, whichever way the row is written (here a bulk UPDATE, no save())."""
    item = ImportRunItemFactory(current_stage="probe", access_status="unknown")
    ImportRunItem.objects.filter(pk=item.pk).update(current_stage=stage, access_status=access)
    unfinished_first = 0 if stage != "done" else 2
    problems_next = 0 if access in ("broken", "degraded") else 1
    rank = ImportRunItem.objects.values_list("problem_rank", flat=True).get(pk=item.pk)
    assert rank == unfinished_first + problems_next
