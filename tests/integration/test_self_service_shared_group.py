"""Self-service runs put every provider into the probe key's one group; a group belongs to
at most one channel on the host, so the providers share it (issue #14)."""

from __future__ import annotations

import pytest

from hosts.models import ManagedResource
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_two_providers_in_the_probe_key_group_share_its_channel(host_simulator, upstream_factory):
    host = register(host_simulator)
    glm = upstream_factory(models=("glm-4.5",))
    drive(start(host, [entry(glm)]))  # a subscription run makes a group and a user key
    probe_key = ManagedResource.objects.get(resource_type="api_key").secret.reveal()
    kimi = upstream_factory(models=("kimi-k2.6",))

    run = drive(
        start(host, [entry(glm), entry(kimi)], access_mode="self_service", probe_api_key=probe_key)
    )

    items = {item.base_url: item for item in run.items.all()}
    assert {i.access_status for i in items.values()} == {"active"}, [
        i.last_error for i in items.values()
    ]
    assert run.state in ("completed", "completed_with_warnings")
    (channel,) = host_simulator.state.channels.values()
    served = {model for entry in channel.model_pricing for model in entry["models"]}
    assert served == {"glm-4.5", "kimi-k2.6"}  # the channel serves both providers' models
    kimi_item = items[kimi.base_url]
    assert kimi_item.events.filter(event_type="reused", message__contains="already serves").exists()
