from __future__ import annotations

import pytest

from batch_import.models import ImportRunItemEvent
from hosts.models import ManagedResource
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_full_pipeline_creates_verifies_and_activates(host_simulator, upstream_factory):
    upstream = upstream_factory(models=("Kimi-K2.6", "deepseek-ai/DeepSeek-V4-Pro"))
    host = register(host_simulator)
    run = drive(start(host, [entry(upstream, models=["kimi 2.6"])]))
    item = run.items.get()
    assert run.state == "completed", list(item.events.values_list("event_type", "message"))
    assert item.raw_models == ["Kimi-K2.6", "deepseek-ai/DeepSeek-V4-Pro"]
    assert "deepseek-v4-pro" in item.canonical_model_families
    assert item.resolved_smoke_model == "Kimi-K2.6"
    assert (item.current_stage, item.confirmation_status, item.access_status) == (
        "done",
        "confirmed",
        "active",
    )
    assert item.account_resolution == "created" and item.provision_reused is False
    account = host_simulator.state.accounts[item.account_id]
    assert account.credentials["model_mapping"]["kimi-k2.6"] == "Kimi-K2.6"
    assert ManagedResource.objects.filter(resource_type="account").count() == 1
    assert item.legacy_batch.provider_ids == [item.provider_id]
    types = list(ImportRunItemEvent.objects.filter(item=item).values_list("event_type", flat=True))
    assert types[0] == "created" and types[-1] == "validated"
