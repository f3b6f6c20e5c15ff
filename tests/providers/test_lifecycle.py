"""How the inventory learns about imports: the after-run task, the catch-up, the backfill
migration, and the admin actions (issue #18)."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django_q.conf import Conf
from django_q.models import Schedule

from providers import services, tasks
from providers.models import Provider, ProviderEvent, ReconcileRun
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]
backfill = importlib.import_module("providers.migrations.0002_backfill_from_runs").backfill


def test_a_finished_run_is_folded_in_and_baselined_by_the_after_run_task(
    host_simulator, upstream_factory, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(Conf, "SYNC", True)  # django-q2 runs the tasks inline, as a worker
    host = register(host_simulator)
    with django_capture_on_commit_callbacks(execute=True):
        run = drive(start(host, [entry(upstream_factory(models=("glm-4.5",)))]))
    provider = Provider.objects.get()
    assert provider.state == "active" and provider.last_import_run_id == run.run_id
    reconcile = ReconcileRun.objects.get()
    assert reconcile.trigger == "after_import" and reconcile.state == "completed"
    assert not reconcile.test_accounts and not reconcile.sync_models
    assert reconcile.results.filter(kind="baseline").count() == 3


def test_a_preview_makes_no_provider(host_simulator, upstream_factory):
    run = drive(start(register(host_simulator), [entry(upstream_factory())], dry_run=True))
    assert services.provider_absorb_run(run_id=run.run_id) == []
    assert tasks.after_import_run(run.run_id) is None
    assert not Provider.objects.exists()


def test_the_scheduled_reconcile_catches_up_with_runs_nobody_absorbed(
    host_simulator, upstream_factory
):
    host = register(host_simulator)
    drive(start(host, [entry(upstream_factory(models=("glm-4.5",)))]))
    assert not Provider.objects.exists()  # the after-run task was lost

    assert tasks.scheduled_reconcile() == 1

    assert Provider.objects.get().state == "active"
    assert ReconcileRun.objects.get().trigger == "scheduled"
    assert tasks.scheduled_reconcile() == 0  # one is still running on that host


def test_the_backfill_migration_rebuilds_the_inventory_from_runs(host_simulator, upstream_factory):
    host = register(host_simulator)
    good = upstream_factory(models=("glm-4.5",))
    run = drive(start(host, [entry(good), entry(upstream_factory(), key="sk-revoked")]))
    assert run.state == "completed_with_warnings"

    backfill(apps, None)

    active, broken = Provider.objects.order_by("state")
    assert active.state == "active" and active.access_status == "subscription_ready"
    assert active.accounts.get().status == "active"
    assert broken.state == "failed" and broken.accounts.count() == 0
    assert ProviderEvent.objects.filter(actor="migration").count() == 2
    # A second migration run (or the live absorb after it) adds nothing twice.
    services.provider_absorb_run(run_id=run.run_id)
    assert active.checks.count() == 1


def test_setup_schedules_owns_the_reconcile_schedules():
    call_command("setup_schedules")
    call_command("setup_schedules")
    funcs = set(Schedule.objects.values_list("func", flat=True))
    assert funcs == {
        "batch_import.tasks.sweep",
        "providers.tasks.sweep",
        "providers.tasks.scheduled_reconcile",
    }
    assert Schedule.objects.count() == 3


def test_admin_actions_reconcile_and_disable(client, host_simulator, upstream_factory):
    user = get_user_model().objects.create_user(
        username="ops", password="pw", is_staff=True, is_superuser=True
    )
    client.force_login(user)
    host = register(host_simulator)
    run = drive(start(host, [entry(upstream_factory(models=("glm-4.5",)))]))
    (provider,) = services.provider_absorb_run(run_id=run.run_id)
    url = "/admin/providers/provider/"
    assert provider.provider_id in client.get(url).content.decode()
    client.post(url, {"action": "reconcile", "_selected_action": [provider.pk]})
    assert ReconcileRun.objects.get().requested_by == "ops"
    client.post(url, {"action": "disable", "_selected_action": [provider.pk]})
    provider.refresh_from_db()
    assert provider.state == "disabled"
    assert client.get(f"{url}{provider.pk}/change/").status_code == 200
    assert client.get("/admin/providers/reconcilerun/").status_code == 200


def test_a_rolled_back_run_leaves_the_provider_without_accounts(
    host_simulator, upstream_factory, monkeypatch, django_capture_on_commit_callbacks
):
    from batch_import.rollback import rollback_run

    monkeypatch.setattr(Conf, "SYNC", True)
    host = register(host_simulator)
    with django_capture_on_commit_callbacks(execute=True):
        run = drive(start(host, [entry(upstream_factory(models=("glm-4.5",)))]))
    assert Provider.objects.get().state == "active"
    with django_capture_on_commit_callbacks(execute=True):
        rollback_run(run_id=run.run_id, requested_by="ops")
    provider = Provider.objects.get()
    assert provider.accounts.get().status == "removed"
    assert provider.state == "validated"  # the upstream answered; nothing on the host now
