"""Self-service on a host that masks keys in its group listings (issue #16, point 5)."""

from __future__ import annotations

import pytest

from hosts.models import ManagedResource
from hosts.simulator.rows import SimKey
from hosts.sub2api import HostError, client_for_host
from hosts.sub2api.groups import masked_key_matches
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.mark.parametrize(
    ("shown", "matches"),
    [
        ("sk-abc...wxyz", True),
        ("sk-abc****wxyz", True),
        ("sk-abc\u2026wxyz", True),
        ("sk-abd...wxyz", False),
        ("sk-abc...wxyy", False),
        ("...wxyz", False),  # nothing visible at the start: too weak to match
        ("sk-abcdefwxyz", False),  # not masked, not equal
    ],
)
def test_masked_key_matches(shown, matches):
    assert masked_key_matches(shown, "sk-abcdef0123456789wxyz") is matches


def test_self_service_finds_the_probe_key_group_when_keys_are_masked(
    host_simulator, upstream_factory
):
    host = register(host_simulator)
    upstream = upstream_factory(models=("glm-4.5",))
    drive(start(host, [entry(upstream)]))  # a subscription run makes a group and a user key
    key = ManagedResource.objects.get(resource_type="api_key")
    host_simulator.quirks.masked_group_keys = True

    run = drive(
        start(
            host, [entry(upstream)], access_mode="self_service", probe_api_key=key.secret.reveal()
        )
    )

    item = run.items.get()
    assert item.access_status == "active"
    assert str(item.group_id) == key.logical_key.split("|")[1]


def test_two_groups_with_look_alike_masked_keys_are_refused_not_guessed(host_simulator):
    host = register(host_simulator)
    host_simulator.quirks.masked_group_keys = True
    with client_for_host(host) as client:
        groups = [client.groups.create(name=f"g{i}", platform="openai") for i in range(2)]
    probe = "sk-" + "a" * 60 + "beef"
    twin = "sk-" + "a" * 3 + "0" * 57 + "beef"  # the same first 6 and last 4 characters
    state = host_simulator.state
    with state.lock:
        for group, raw in zip(groups, (probe, twin), strict=True):
            key_id = state.new_id("key")
            state.keys[key_id] = SimKey(id=key_id, user_id=1, key=raw, name="k", group_id=group.id)
    with client_for_host(host) as client, pytest.raises(HostError) as refused:
        client.groups.group_of_key(probe)
    assert refused.value.reason == "KEY_GROUP_AMBIGUOUS"
    assert "2 groups" in refused.value.message
