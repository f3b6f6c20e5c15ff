"""Keys of one provider that reach the provision stage together: the first sets up the
provider's group, channel and users' access, the others wait for it and take what it made
(in one worker process ``batch_import.stages.provision.UNSETTLED``; one of another process,
``settled_elsewhere``)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from batch_import import stages
from batch_import.models import ImportRunItem
from batch_import.reuse_preflight import sibling_key
from batch_import.stages import StageContext, provision
from batch_import.stages.common import item_resources
from batch_import.tasks import advance_item, advance_items
from hosts.models import ManagedResource
from hosts.sub2api import HostError, shared_client_for_host
from tests.integration.pipeline import drive, entry, register, start
from tests.integration.shared_db import shared_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
KEYS = 4
PROVIDER_FIRST = (  # what an item asks the host when no sibling has set the provider up
    "GET /api/v1/admin/groups",
    "POST /api/v1/admin/groups",
    "GET /api/v1/admin/channels",
    "POST /api/v1/admin/channels",
    "GET /api/v1/admin/users",
    "POST /api/v1/admin/users",
    "POST /api/v1/admin/subscriptions/assign",
)


def provision_all_at_once(monkeypatch, keys: int) -> None:
    """Every item's first provision starts once all of them have reached it."""
    barrier = threading.Barrier(keys, timeout=20)
    real, met = stages.STAGE_STEPS["provision"], set()

    def provision_together(item, context):
        if item.item_id not in met:
            met.add(item.item_id)
            barrier.wait()
        real(item, context)

    monkeypatch.setitem(stages.STAGE_STEPS, "provision", provision_together)


def keys_of_one_provider(host_simulator, upstream_factory, mode="partial"):
    upstream = upstream_factory(models=("kimi-k2.6",), api_key=None)
    entries = [entry(upstream, key=f"sk-key-{n}") for n in range(KEYS)]
    run = start(register(host_simulator), entries, mode=mode)
    return run, list(run.items.values_list("item_id", flat=True))


def host_calls(sim, since: int) -> Counter:
    return Counter(f"{r.method} {r.path}" for r in sim.requests[since:])


def test_keys_provisioning_together_set_their_provider_up_once(
    host_simulator, upstream_factory, monkeypatch
):
    """Side by side, each key asked for the group, the channel and the user, and they met on
    the host (409, then a second look)."""
    shared_database_url()  # threads write side by side: not on in-memory SQLite's table locks
    provision_all_at_once(monkeypatch, KEYS)
    run, item_ids = keys_of_one_provider(host_simulator, upstream_factory)
    before = len(host_simulator.requests)

    outcomes = advance_items(item_ids)

    assert outcomes == dict.fromkeys(item_ids, "done")
    items = list(run.items.all())
    assert {i.access_status for i in items} == {"active"}
    assert len({(i.group_id, i.channel_id) for i in items}) == 1
    assert len({i.account_id for i in items}) == KEYS
    calls = host_calls(host_simulator, before)
    assert {call: calls[call] for call in PROVIDER_FIRST} == dict.fromkeys(PROVIDER_FIRST, 1)
    assert calls["POST /api/v1/admin/accounts"] == KEYS


def first_fails_once_the_others_wait(monkeypatch, key) -> list:
    """The first key to look for its group is refused by the host once the others wait."""
    real_ensure_group, failed = provision.Provisioner.ensure_group, []

    def first_fails(self, resources):
        if not failed:
            failed.append(self.item.item_id)
            while provision.UNSETTLED.waiters(key) < KEYS - 1:
                threading.Event().wait(0.01)
            raise HostError(status=400, reason="BAD_REQUEST", message="refused")
        return real_ensure_group(self, resources)

    monkeypatch.setattr(provision.Provisioner, "ensure_group", first_fails)
    return failed


def test_when_the_first_key_fails_a_waiting_one_sets_the_provider_up(
    host_simulator, upstream_factory, monkeypatch
):
    """The first to look for the group fails (once the others wait for it): one of them sets
    the provider up next, and the rest take what it made."""
    shared_database_url()
    provision_all_at_once(monkeypatch, KEYS)
    run, item_ids = keys_of_one_provider(host_simulator, upstream_factory)
    failed = first_fails_once_the_others_wait(monkeypatch, sibling_key(run.items.first()))
    before = len(host_simulator.requests)

    outcomes = advance_items(item_ids)

    assert outcomes == dict.fromkeys(item_ids, "done")
    others = list(run.items.exclude(item_id=failed[0]))
    assert run.items.get(item_id=failed[0]).access_status == "broken"
    assert {i.access_status for i in others} == {"active"}
    assert len({(i.group_id, i.channel_id) for i in others}) == 1
    calls = host_calls(host_simulator, before)
    # Only the failed key's own lookups beside its group are asked twice (its channel, its user).
    made = [call for call in PROVIDER_FIRST if call.startswith("POST")]
    assert {call: calls[call] for call in made} == dict.fromkeys(made, 1)
    assert calls["GET /api/v1/admin/groups"] == 1


def test_keys_waiting_in_a_strict_run_make_nothing_once_the_first_failed(
    host_simulator, upstream_factory, monkeypatch
):
    """The strict run is rolled back when the first key fails; the keys that waited for it are
    stopped by then and ask the host for nothing (a waiter takes over only once the failure
    is told)."""
    shared_database_url()
    provision_all_at_once(monkeypatch, KEYS)
    run, item_ids = keys_of_one_provider(host_simulator, upstream_factory, mode="strict")
    failed = first_fails_once_the_others_wait(monkeypatch, sibling_key(run.items.first()))
    before = len(host_simulator.requests)

    outcomes = advance_items(item_ids)

    assert outcomes == {i: "done" if i == failed[0] else "superseded" for i in item_ids}
    run.refresh_from_db()
    assert run.state == "failed"
    assert set(run.items.values_list("current_stage", flat=True)) == {"done"}
    made = [call for call in host_calls(host_simulator, before).elements() if "POST" in call]
    assert made == ["POST /api/v1/admin/users"]  # the failed key's own, beside its group


def probed_elsewhere_first(host_simulator, upstream_factory):
    """Two keys of one provider probed, the first one's lease held by another process."""
    run, _ = keys_of_one_provider(host_simulator, upstream_factory)
    first, later = [fresh(item.item_id) for item in run.items.order_by("position")[:2]]
    context = StageContext(worker_id="test-worker")
    for item in (first, later):
        stages.STAGE_STEPS["probe"](item, context)
    until = timezone.now() + timedelta(minutes=1)
    ImportRunItem.objects.filter(pk=first.pk).update(lease_owner="elsewhere:1:w", lease_until=until)
    return run, fresh(first.item_id), later.item_id


def fresh(item_id: str) -> ImportRunItem:
    return ImportRunItem.objects.select_related("run", "run__host").get(pk=item_id)


def on_first_poll(monkeypatch, then) -> list:
    """``then()`` once the item has found a sibling provisioning elsewhere the first time."""
    real, polled = provision.provisioning_elsewhere, []

    def and_then(item, before):
        busy = real(item, before)
        if busy and not polled:
            polled.append(item.item_id)
            then()
        return busy

    monkeypatch.setattr(provision, "provisioning_elsewhere", and_then)
    return polled


def test_a_key_waits_for_an_earlier_one_provisioning_in_another_process(
    host_simulator, upstream_factory, monkeypatch
):
    run, first, later = probed_elsewhere_first(host_simulator, upstream_factory)

    def the_other_process_provisions():
        client = shared_client_for_host(first.run.host)
        provision.Provisioner(first, item_resources(first, client)).provision_with(None)

    polled = on_first_poll(monkeypatch, the_other_process_provisions)
    before = len(host_simulator.requests)

    assert advance_item(later, worker_id="test-worker") == "done"

    assert polled == [later]
    items = list(run.items.filter(item_id__in=[first.item_id, later]))
    assert len({(i.group_id, i.channel_id) for i in items}) == 1
    assert fresh(later).access_status == "active"
    calls = host_calls(host_simulator, before)  # the first key's set-up, and nothing again
    assert {call: calls[call] for call in PROVIDER_FIRST} == dict.fromkeys(PROVIDER_FIRST, 1)


def test_a_key_sets_the_provider_up_when_the_other_process_stops_provisioning(
    host_simulator, upstream_factory, monkeypatch
):
    _, first, later = probed_elsewhere_first(host_simulator, upstream_factory)
    released = ImportRunItem.objects.filter(pk=first.pk)
    polled = on_first_poll(monkeypatch, lambda: released.update(lease_owner=None, lease_until=None))

    assert advance_item(later, worker_id="test-worker") == "done"

    assert polled == [later]
    assert fresh(later).access_status == "active"
    assert fresh(first.item_id).group_id is None  # still to provision: it was not ended


def test_no_key_waits_for_another_process_that_may_wait_for_its_own(
    host_simulator, upstream_factory, monkeypatch
):
    """A key of this process that entered provisioning before the sibling elsewhere waits for
    this process's leader: the leader waiting for that sibling, which may wait for them, could
    make a circle (seen in the bench: 15 s lost)."""
    _, elsewhere, later = probed_elsewhere_first(host_simulator, upstream_factory)
    earliest = fresh(elsewhere.run.items.exclude(pk__in=[elsewhere.pk, later]).first().pk)
    now = timezone.now()
    for item_id, seconds in ((earliest.pk, -2), (elsewhere.pk, -1), (later, 0)):
        ImportRunItem.objects.filter(pk=item_id).update(updated_at=now + timedelta(seconds=seconds))
    earliest, later_item = fresh(earliest.pk), fresh(later)
    key = sibling_key(later_item)
    polled = on_first_poll(monkeypatch, lambda: None)

    with provision.UNSETTLED.turn(key, timeout=1, rank=(earliest.updated_at, earliest.pk)):
        assert provision.settled_elsewhere(later_item, time.monotonic() + 5, key) is None

    assert polled == []


def test_self_service_providers_provisioning_together_look_the_key_group_up_once(
    host_simulator, upstream_factory, monkeypatch
):
    """In self-service every provider of the run shares the operator key's group: the run's
    keys wait for the first whatever their provider."""
    shared_database_url()
    host = register(host_simulator)
    drive(start(host, [entry(upstream_factory(models=("glm-4.5",)))]))  # makes a user key
    probe_key = ManagedResource.objects.get(resource_type="api_key").secret.reveal()
    upstreams = [upstream_factory(models=("kimi-k2.6",), api_key=None) for _ in range(3)]
    run = start(
        host,
        [entry(u, key=f"sk-{n}") for n, u in enumerate(upstreams)],
        access_mode="self_service",
        probe_api_key=probe_key,
    )
    provision_all_at_once(monkeypatch, 3)
    before = len(host_simulator.requests)

    outcomes = advance_items(list(run.items.values_list("item_id", flat=True)))

    assert set(outcomes.values()) == {"done"}
    assert {i.access_status for i in run.items.all()} == {"active"}
    assert host_calls(host_simulator, before)["GET /api/v1/admin/groups"] == 1
