"""Run counts through their migrations: 0014 counted existing runs once from their items and
marked them ready; 0018 moves each counted run's counts into its counter shards (shard 0, the
others at 0) and drops the run's columns. Runs on the schema of each step, with the models of
that step."""

from __future__ import annotations

import importlib

import pytest

from batch_import.models import ImportRunCounterShard
from batch_import.selectors import run_counts
from batch_import.transitions import shard_counts

pytestmark = pytest.mark.django_db(transaction=True)
counted_once = importlib.import_module("batch_import.migrations.0014_run_counters_kept")
BEFORE_SHARDS = ("batch_import", "0017_item_run_due_idx")
SHARDS = ("batch_import", "0018_run_counter_shards")


def _run(apps, **fields):
    Host = apps.get_model("hosts", "Host")
    Run = apps.get_model("batch_import", "ImportRun")
    host, _ = Host.objects.get_or_create(
        name="h",
        defaults={
            "base_url": "http://127.0.0.1:1",
            "auth_type": "admin_api_key",
            "admin_credential": "x",
        },
    )
    return Run.objects.create(host=host, mode="partial", access_mode="subscription", **fields)


def _item(apps, run, n: int, **fields):
    Item = apps.get_model("batch_import", "ImportRunItem")
    return Item.objects.create(
        run=run,
        position=n,
        base_url=f"https://relay{n}.example.com/v1",
        provider_id=f"relay{n}",
        api_key=f"sk-{n}",
        api_key_fingerprint=f"fp{n}",
        api_key_digest=f"d{n}",
        **fields,
    )


def test_existing_runs_get_the_counts_of_their_items_and_keep_them_in_shards(schema_at):
    apps = schema_at(BEFORE_SHARDS)
    run = _run(apps, total_items=99)  # a stale stored count is corrected too
    _item(apps, run, 0)
    _item(apps, run, 1, current_stage="done", access_status="active")
    _item(
        apps,
        run,
        2,
        current_stage="done",
        last_error_stage="provision",
        confirmation_status="advisory",
        has_warning=True,
    )
    empty = _run(apps, total_items=3)
    counted_once.count_existing_runs(apps, None)
    Run = apps.get_model("batch_import", "ImportRun")
    stored = Run.objects.get(pk=run.pk)
    assert stored.counters_ready
    assert (
        stored.total_items,
        stored.completed_items,
        stored.broken_items,
        stored.stage_ended_items,
        stored.advisory_items,
    ) == (3, 2, 1, 1, 1)
    assert Run.objects.get(pk=empty.pk).total_items == 0

    schema_at(SHARDS)
    assert shard_counts(run.pk) == run_counts(run.pk)
    assert shard_counts(empty.pk) == run_counts(empty.pk)
    shards = ImportRunCounterShard.objects.filter(run_id=run.pk)
    assert sorted(shards.values_list("shard", flat=True)) == list(range(16))
    assert shards.exclude(shard=0).filter(total_items__gt=0).count() == 0


def test_a_run_never_counted_gets_no_shards(schema_at):
    apps = schema_at(BEFORE_SHARDS)
    run = _run(apps, total_items=7)  # counters_ready False: its numbers were never counts
    schema_at(SHARDS)
    assert not ImportRunCounterShard.objects.filter(run_id=run.pk).exists()
