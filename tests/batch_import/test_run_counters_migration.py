"""Migration 0014 counts existing runs once from their items (the recount's rule) and marks
their counters ready for the incremental path."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as global_apps

from batch_import.models import ImportRun, ImportRunItem
from batch_import.selectors import run_counts
from batch_import.transitions import stored_counts
from tests.factories import ImportRunFactory, ImportRunItemFactory

pytestmark = pytest.mark.django_db
migration = importlib.import_module("batch_import.migrations.0014_run_counters_kept")
Stage, Access = ImportRunItem.Stage, ImportRunItem.AccessStatus


def test_existing_runs_get_the_counts_of_their_items():
    run = ImportRunFactory(total_items=99)  # a stale stored count is corrected too
    ImportRunItemFactory(run=run)
    ImportRunItemFactory(run=run, current_stage=Stage.DONE, access_status=Access.ACTIVE)
    ImportRunItemFactory(
        run=run,
        current_stage=Stage.DONE,
        last_error_stage=Stage.PROVISION,
        confirmation_status=ImportRunItem.ConfirmationStatus.ADVISORY,
        has_warning=True,
    )
    empty = ImportRunFactory(total_items=3)
    migration.count_existing_runs(global_apps, None)
    run.refresh_from_db()
    assert run.counters_ready and stored_counts(run) == run_counts(run.run_id)
    assert (run.total_items, run.broken_items, run.stage_ended_items, run.advisory_items) == (
        3,
        1,
        1,
        1,
    )
    empty.refresh_from_db()
    assert empty.counters_ready and empty.total_items == 0
    assert ImportRun.objects.filter(counters_ready=False).count() == 0
