"""A subscription that already exists in other terms never fails an item (issue #16, point 1):
the host simulator answers a re-assign like real [NEW] sub2api (§13)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hosts.simulator.rows import utcnow
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def only_subscription(sim):
    (subscription,) = sim.state.subscriptions.values()
    return subscription


def test_a_second_run_asking_for_more_days_extends_the_subscription(
    host_simulator, upstream_factory
):
    host = register(host_simulator)
    upstream = upstream_factory(models=("glm-4.5",))
    drive(start(host, [entry(upstream)], subscription_days=30))
    first = only_subscription(host_simulator)
    first_expiry = first.expires_at
    assert (first.expires_at - first.starts_at).days == 30  # a new one is not extended

    run = drive(start(host, [entry(upstream)], subscription_days=90))

    item = run.items.get()
    assert run.state == "completed" and item.access_status == "active"
    subscription = only_subscription(host_simulator)
    assert subscription.expires_at >= utcnow() + timedelta(days=89)
    assert subscription.expires_at > first_expiry
    event = item.events.get(event_type="reused", message__contains="subscription")
    assert "extended by" in event.message and event.payload["extended_by_days"] >= 59
    assert event.payload["conflict_reason"] == "validity_days_mismatch"


def test_a_subscription_an_admin_extended_is_reused_as_it_is(host_simulator, upstream_factory):
    host = register(host_simulator)
    upstream = upstream_factory(models=("glm-4.5",))
    drive(start(host, [entry(upstream)], subscription_days=30))
    with host_simulator.state.lock:  # an admin gave the user another year
        only_subscription(host_simulator).expires_at += timedelta(days=365)
    expiry = only_subscription(host_simulator).expires_at

    run = drive(start(host, [entry(upstream)], subscription_days=30))

    assert run.state == "completed"
    assert only_subscription(host_simulator).expires_at == expiry  # not shortened, not extended
    event = run.items.get().events.get(event_type="reused", message__contains="subscription")
    assert "reused (valid until" in event.message
    assert event.payload == {
        "subscription_id": only_subscription(host_simulator).id,
        "extended_by_days": 0,
        "conflict_reason": "validity_days_mismatch",
        "managed": True,
    }


def test_the_simulator_refuses_a_re_assign_in_other_terms(host_simulator, upstream_factory):
    from hosts.sub2api import HostError, client_for_host

    host = register(host_simulator)
    drive(start(host, [entry(upstream_factory(models=("glm-4.5",)))], subscription_days=30))
    subscription = only_subscription(host_simulator)
    with client_for_host(host) as client:
        same = client.subscriptions.assign(
            user_id=subscription.user_id, group_id=subscription.group_id, validity_days=30
        )
        assert same.id == subscription.id
        for days, notes, reason in (
            (60, "", "validity_days_mismatch"),
            (30, "x", "notes_mismatch"),
        ):
            with pytest.raises(HostError) as refused:
                client.subscriptions.assign(
                    user_id=subscription.user_id,
                    group_id=subscription.group_id,
                    validity_days=days,
                    notes=notes,
                )
            assert refused.value.status == 409
            assert refused.value.reason == "SUBSCRIPTION_ASSIGN_CONFLICT"
            assert refused.value.metadata == {"conflict_reason": reason}
        with host_simulator.state.lock:  # expired: a re-assign renews it with the new terms
            subscription.expires_at = utcnow() - timedelta(days=1)
        renewed = client.subscriptions.assign(
            user_id=subscription.user_id, group_id=subscription.group_id, validity_days=7
        )
        assert renewed.id == subscription.id and renewed.status == "active"


def test_a_subscription_we_did_not_make_is_covered_but_never_ours_to_revoke(
    host_simulator, upstream_factory
):
    """A subscription our records do not know (an admin's, or from a lost database) is
    extended when it ends too soon, but a rollback of the run leaves it on the host."""
    from batch_import.rollback import rollback_run
    from hosts.models import ManagedResource

    host = register(host_simulator)
    upstream = upstream_factory(models=("glm-4.5",))
    drive(start(host, [entry(upstream)], subscription_days=30))
    ManagedResource.objects.filter(resource_type="subscription").delete()
    subscription_id = only_subscription(host_simulator).id

    run = drive(start(host, [entry(upstream)], subscription_days=90))

    item = run.items.get()
    assert item.access_status == "active"
    event = item.events.get(event_type="reused", message__contains="subscription")
    assert "extended by" in event.message and "a rollback keeps it" in event.message
    assert event.payload["managed"] is False
    assert not ManagedResource.objects.filter(resource_type="subscription").exists()
    rollback_run(run_id=run.run_id, requested_by="ops")
    assert subscription_id in host_simulator.state.subscriptions


def test_the_simulator_extends_like_the_host(host_simulator, upstream_factory):
    from hosts.sub2api import HostError, client_for_host

    host = register(host_simulator)
    drive(start(host, [entry(upstream_factory(models=("glm-4.5",)))], subscription_days=30))
    subscription = only_subscription(host_simulator)
    with client_for_host(host) as client:
        with pytest.raises(HostError) as too_short:
            client.subscriptions.extend(subscription.id, -31)
        assert too_short.value.reason == "ADJUST_WOULD_EXPIRE"
        with host_simulator.state.lock:
            subscription.expires_at = utcnow() - timedelta(days=10)
        with pytest.raises(HostError) as shorten:
            client.subscriptions.extend(subscription.id, -1)
        assert shorten.value.reason == "CANNOT_SHORTEN_EXPIRED"
        renewed = client.subscriptions.extend(subscription.id, 7)  # from now, not from its end
    assert renewed.status == "active"
    assert utcnow() + timedelta(days=6) < renewed.expires_at <= utcnow() + timedelta(days=7)
