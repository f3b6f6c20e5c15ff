"""The V1 ``import_batches.status`` follows seed 002 §4.2: the run's outcome, then its rollback."""

from __future__ import annotations

import importlib

import pytest

from batch_import.models import ImportRun, ImportRunItem, LegacyImportBatch, RunRollback
from batch_import.run_state import RunSummary, legacy_batch_status
from batch_import.transitions import refresh_run_state
from tests.factories import ImportRunFactory, ImportRunItemFactory

State = ImportRun.State
Access = ImportRunItem.AccessStatus


def summary(state: str, *, total: int = 2, active: int = 0) -> RunSummary:
    return RunSummary(state, total, total, active, 0, 0, 0)


@pytest.mark.parametrize(
    ("state", "active", "expected"),
    [
        (State.RUNNING, 0, "running"),
        (State.COMPLETED, 2, "succeeded"),
        (State.COMPLETED_WITH_WARNINGS, 2, "succeeded"),  # advisories only: all active
        (State.COMPLETED_WITH_WARNINGS, 1, "partially_succeeded"),
        (State.COMPLETED_WITH_WARNINGS, 0, "failed"),  # degraded/broken, none active
        (State.FAILED, 0, "failed"),
        (State.FAILED, 1, "failed"),  # strict mode: one broken item fails the batch
        (State.CANCELLED, 1, "partially_succeeded"),
        (State.CANCELLED, 0, "failed"),
    ],
)
def test_run_outcome_maps_to_the_seed_batch_status(state, active, expected):
    assert legacy_batch_status(summary(state, active=active)) == expected


@pytest.mark.parametrize(
    ("rollback", "expected"),
    [
        (RunRollback.Status.RUNNING, "rollback_running"),
        (RunRollback.Status.PARTIAL, "failed"),  # §5.5: resources left behind
        (RunRollback.Status.ROLLED_BACK, "rolled_back"),
    ],
)
def test_a_rollback_owns_the_batch_status(rollback, expected):
    assert legacy_batch_status(summary(State.FAILED), rollback_status=rollback) == expected


def test_every_seed_status_is_a_choice():
    assert set(LegacyImportBatch.Status.values) == {
        "pending",
        "previewed",
        "running",
        "succeeded",
        "partially_succeeded",
        "failed",
        "rollback_running",
        "rolled_back",
    }


def batch_of(run: ImportRun) -> LegacyImportBatch:
    return LegacyImportBatch.objects.create(host=run.host, run_id=run.run_id, mode=run.mode)


@pytest.mark.django_db
def test_the_run_state_refresh_writes_the_batch_status():
    run = ImportRunFactory()
    batch = batch_of(run)
    ImportRunItemFactory(run=run, current_stage="done", access_status=Access.ACTIVE)
    pending = ImportRunItemFactory(run=run, current_stage="validate")
    refresh_run_state(run_id=run.run_id)
    batch.refresh_from_db()
    assert batch.status == "running"

    ImportRunItem.objects.filter(pk=pending.pk).update(
        current_stage="done", access_status=Access.DEGRADED
    )
    refresh_run_state(run_id=run.run_id)
    batch.refresh_from_db()
    assert batch.status == "partially_succeeded"


@pytest.mark.django_db
def test_the_run_state_refresh_leaves_a_rollback_status_alone():
    run = ImportRunFactory()
    batch = batch_of(run)
    ImportRunItemFactory(run=run, current_stage="done", access_status=Access.ACTIVE)
    RunRollback.objects.create(run=run, status=RunRollback.Status.ROLLED_BACK)
    LegacyImportBatch.objects.filter(pk=batch.pk).update(status="rolled_back")
    refresh_run_state(run_id=run.run_id)
    batch.refresh_from_db()
    assert batch.status == "rolled_back"


@pytest.mark.django_db(transaction=True)
def test_the_backfill_gives_existing_batches_their_seed_status(schema_at):
    migration = importlib.import_module("batch_import.migrations.0010_legacy_batch_status_seed_002")
    apps = schema_at(("batch_import", "0017_item_run_due_idx"))  # runs had their counts
    Run, Batch = (apps.get_model("batch_import", m) for m in ("ImportRun", "LegacyImportBatch"))
    host = apps.get_model("hosts", "Host").objects.create(
        name="h", base_url="http://127.0.0.1:1", auth_type="admin_api_key", admin_credential="x"
    )
    rows = {}
    for name, state, active, rollback in [
        ("done", State.COMPLETED, 2, None),
        ("half", State.COMPLETED_WITH_WARNINGS, 1, None),
        ("none", State.COMPLETED_WITH_WARNINGS, 0, None),
        ("live", State.RUNNING, 0, None),
        ("gone", State.FAILED, 0, RunRollback.Status.ROLLED_BACK),
        ("left", State.FAILED, 0, RunRollback.Status.PARTIAL),
    ]:
        run = Run.objects.create(
            host=host,
            mode="partial",
            access_mode="subscription",
            state=state,
            total_items=2,
            active_items=active,
        )
        if rollback:
            apps.get_model("batch_import", "RunRollback").objects.create(run=run, status=rollback)
        rows[name] = Batch.objects.create(host=host, run_id=run.run_id, mode=run.mode)
    Batch.objects.filter(pk=rows["done"].pk).update(status="completed")  # old value

    migration.backfill(apps, None)
    got = {name: Batch.objects.get(pk=b.pk).status for name, b in rows.items()}
    assert got == {
        "done": "succeeded",
        "half": "partially_succeeded",
        "none": "failed",
        "live": "running",
        "gone": "rolled_back",
        "left": "failed",
    }
