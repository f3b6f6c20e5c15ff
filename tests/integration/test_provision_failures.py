from __future__ import annotations

import pytest

from hosts.models import ManagedResource
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

# Provisioning tries a transient host error RELAY_HTTP_RETRIES + 1 more times (1 in these tests).
FAILURES_TO_GIVE_UP = 3


def test_host_500_mid_provision_in_partial_mode_keeps_the_rest_and_tracks_everything(
    host_simulator, upstream_factory
):
    a = upstream_factory(models=("kimi-k2.6",))
    b = upstream_factory(models=("glm-4.5",))
    host = register(host_simulator)
    host_simulator.fail_next(
        "POST", "/api/v1/admin/accounts", count=FAILURES_TO_GIVE_UP, status=500
    )
    run = drive(start(host, [entry(a), entry(b)], mode="partial"))
    failed, ok = run.items.order_by("position")
    # Transient host errors that ran out of retries: degraded, classed as a host problem.
    assert (failed.last_error_stage, failed.access_status) == ("provision", "degraded")
    assert failed.failure_class == "host_refused"
    assert "500" in failed.last_error
    assert failed.events.filter(event_type="error").exists()
    assert failed.events.filter(event_type="retry_scheduled", stage="provision").count() == 2
    assert ok.access_status == "active"
    assert run.state == "completed_with_warnings"
    # Nothing on the host that is not recorded, and nothing recorded that is not on the host.
    recorded = {(r.resource_type, int(r.host_resource_id)) for r in ManagedResource.objects.all()}
    on_host = (
        {("group", g) for g in host_simulator.state.groups}
        | {("channel", c) for c in host_simulator.state.channels}
        | {("account", acc) for acc in host_simulator.state.accounts}
    )
    assert on_host <= recorded


def test_host_500_mid_provision_in_strict_mode_fails_and_rolls_back(
    host_simulator, upstream_factory
):
    a = upstream_factory(models=("kimi-k2.6",))
    b = upstream_factory(models=("glm-4.5",))
    host = register(host_simulator)
    host_simulator.fail_next(
        "POST", "/api/v1/admin/accounts", count=FAILURES_TO_GIVE_UP, status=500
    )
    run = drive(start(host, [entry(a), entry(b)], mode="strict"))
    failed, stopped = run.items.order_by("position")
    assert run.state == "failed"
    assert failed.last_error_stage == "provision"
    assert failed.events.filter(event_type="rolled_back").count() >= 2  # channel + group
    assert stopped.current_stage == "done" and stopped.last_error.startswith("rolled back")
    # What the rollback removed can never read active.
    assert (stopped.access_status, stopped.failure_class) == ("broken", "rolled_back")
    assert stopped.rolled_back_at is not None
    assert not host_simulator.state.groups and not host_simulator.state.channels
    assert not host_simulator.state.accounts
    assert set(ManagedResource.objects.values_list("state", flat=True)) <= {"deleted"}


def test_strict_rollback_never_touches_what_another_run_created(host_simulator, upstream_factory):
    a = upstream_factory(models=("kimi-k2.6",))
    host = register(host_simulator)
    earlier = drive(start(host, [entry(a)])).items.get()
    b = upstream_factory(models=("glm-4.5",))
    host_simulator.fail_next(
        "POST", "/api/v1/admin/accounts", count=FAILURES_TO_GIVE_UP, status=500
    )
    run = drive(start(host, [entry(b), entry(a)], mode="strict"))
    assert run.state == "failed"
    assert earlier.account_id in host_simulator.state.accounts
    assert earlier.group_id in host_simulator.state.groups
