from __future__ import annotations

import pytest
from django.core.management import call_command
from django_q.conf import Conf
from django_q.models import Schedule

from batch_import.services import item_retry, run_cancel
from batch_import.stages import STAGE_STEPS, StageContext
from batch_import.tasks import advance_item, sweep
from tests.integration.pipeline import before_stage, drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_run_start_hands_items_to_django_q_which_runs_the_pipeline(
    host_simulator, upstream_factory, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(Conf, "SYNC", True)  # django-q2 runs the task inline, as in a worker
    upstream = upstream_factory(models=("kimi-k2.6",))
    host = register(host_simulator)
    with django_capture_on_commit_callbacks(execute=True):
        run = start(host, [entry(upstream)])
    run.refresh_from_db()
    assert run.state == "completed" and run.items.get().access_status == "active"


def test_sweep_hands_due_items_to_workers(host_simulator, upstream_factory, monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", True)
    upstream = upstream_factory(models=("kimi-k2.6",))
    run = start(register(host_simulator), [entry(upstream)])  # on_commit never fires here
    assert sweep() == 1
    run.refresh_from_db()
    assert run.state == "completed"
    assert sweep() == 0


def test_setup_schedules_is_idempotent():
    call_command("setup_schedules")
    call_command("setup_schedules")
    schedule = Schedule.objects.get(func="batch_import.tasks.sweep")
    assert schedule.schedule_type == Schedule.MINUTES and schedule.repeats == -1


def test_cancel_stops_pending_items_and_lets_in_flight_items_finish_their_step(
    host_simulator, upstream_factory
):
    upstream = upstream_factory(models=("kimi-k2.6",))
    run = start(register(host_simulator), [entry(upstream), entry(upstream, key="sk-2")])
    first, second = run.items.order_by("position")
    # The first item is in a worker's hands (leased) when the operator cancels.
    first.lease_owner, first.lease_until = "w", first.created_at.replace(year=2999)
    first.save(update_fields=["lease_owner", "lease_until"])
    run = run_cancel(run_id=run.run_id, actor="ops")
    second.refresh_from_db()
    assert run.state == "cancelled" and second.current_stage == "done"
    STAGE_STEPS["probe"](first, StageContext(worker_id="w"))  # it finishes its current step
    first.refresh_from_db()
    assert first.current_stage == "provision"
    first.lease_owner = first.lease_until = None
    first.save(update_fields=["lease_owner", "lease_until"])
    assert advance_item(first.item_id, worker_id="w") == "cancelled"  # its next step never runs
    first.refresh_from_db()
    assert first.current_stage == "done" and first.account_id is None  # never provisioned
    assert first.events.filter(event_type="cancelled").exists()
    assert not host_simulator.state.accounts
    run.refresh_from_db()
    assert run.state == "cancelled"


def test_a_cancel_while_a_worker_runs_a_stage_stops_the_item_before_its_next_stage(
    host_simulator, upstream_factory, monkeypatch
):
    upstream = upstream_factory(models=("kimi-k2.6",))
    run = start(register(host_simulator), [entry(upstream), entry(upstream, key="sk-2")])
    first = run.items.order_by("position").first()
    # The operator cancels while the worker probes (the worker holds the item's lease): the
    # worker goes on from the row its probe's transition read, which says so.
    before_stage(monkeypatch, "probe", lambda: run_cancel(run_id=run.run_id, actor="ops"))
    assert advance_item(first.item_id, worker_id="w") == "cancelled"
    first.refresh_from_db()
    assert first.current_stage == "done" and first.account_id is None  # never provisioned
    assert list(first.events.values_list("event_type", flat=True).order_by("created_at")) == [
        "created",
        "stage_started",
        "stage_completed",
        "cancelled",
    ]
    assert first.lease_owner is None and not host_simulator.state.accounts
    run.refresh_from_db()
    assert run.state == "cancelled" and run.completed_items == 2


def test_retry_a_broken_item_from_its_failed_stage(host_simulator, upstream_factory):
    upstream = upstream_factory(models=("kimi-k2.6",))
    host = register(host_simulator)
    run = drive(start(host, [entry(upstream, key="sk-typo")]))
    item = run.items.get()
    assert item.last_error_stage == "probe" and run.state == "failed"
    upstream.configure(api_key="sk-typo")  # the upstream now accepts the key
    item_retry(run_id=run.run_id, item_id=item.item_id, actor="ops")
    run = drive(run)
    item.refresh_from_db()
    assert (item.attempt, item.access_status, run.state) == (2, "active", "completed")
    assert item.events.filter(event_type="retried").count() == 1
