from __future__ import annotations

import pytest

from batch_import.models import ImportRunItemEvent, LegacyImportBatch
from hosts.models import ManagedResource
from tests.integration.pipeline import (
    drive,
    entry,
    register,
    start,
    warm_after_first_gateway_call,
)

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


def items_by_url(run):
    return {i.base_url: i for i in run.items.all()}


def test_requested_model_typo_is_recommended_and_a_discovered_model_used(
    host_simulator, upstream_factory
):
    upstream = upstream_factory(models=("kimi-k2.6", "kimi-k2", "glm-4.5"))
    host = register(host_simulator)
    run = drive(start(host, [entry(upstream, models=["kimi-k2.66"])]))
    item = run.items.get()
    assert item.access_status == "active"
    assert item.recommended_models[0] == "kimi-k2.6"
    assert item.resolved_smoke_model in item.raw_models
    assert "requested_model_not_found" in item.advisory_messages
    assert run.state == "completed_with_warnings"


def test_variant_spelling_of_a_requested_model_is_auto_corrected(host_simulator, upstream_factory):
    upstream = upstream_factory(models=("glm-4.5", "Kimi-K2.6"))
    host = register(host_simulator)
    item = drive(start(host, [entry(upstream, models=["kimi 2.6"])])).items.get()
    assert item.resolved_smoke_model == "Kimi-K2.6"
    assert item.recommended_models == []


def test_responses_unsupported_upstream_still_succeeds_through_raw_chat(
    host_simulator, upstream_factory
):
    upstream = upstream_factory(models=("deepseek-chat",), responses_status=404)
    host = register(host_simulator)
    run = drive(start(host, [entry(upstream)]))
    item = run.items.get()
    assert item.access_status == "active"
    transport = item.capability_profile["transport_profile"]
    assert transport["supports_openai_responses"] is False
    assert "responses_unsupported_but_chat_ok" in transport["known_advisories"]
    account = host_simulator.state.accounts[item.account_id]
    assert account.extra["openai_responses_supported"] is False
    assert upstream.requests_to("/v1/chat/completions")


def test_first_403_probe_race_becomes_advisory(host_simulator_factory, upstream_factory):
    sim = host_simulator_factory(probe_403=True)
    upstream = upstream_factory(models=("kimi-k2.6",), responses_status=404)
    run = drive(start(register(sim), [entry(upstream)]))
    item = run.items.get()
    assert (item.confirmation_status, item.access_status) == ("advisory", "active")
    assert "probe_race_absorbed" in item.advisory_messages
    # The 403 is history (an event), not the present: an active item shows no error.
    assert (item.last_error, item.last_error_stage, item.failure_class) == (None, None, "")
    assert item.events.filter(stage="confirm", message__contains="403").exists()
    assert run.state == "completed_with_warnings"


def test_first_403_with_responses_supported_is_retested_and_confirmed(
    host_simulator_factory, upstream_factory
):
    sim = host_simulator_factory(probe_403=True)
    upstream = upstream_factory(models=("kimi-k2.6",))
    item = drive(start(register(sim), [entry(upstream)])).items.get()
    assert (item.confirmation_status, item.access_status) == ("confirmed", "active")
    assert item.events.filter(event_type="retry_scheduled", stage="confirm").count() == 1


def test_initial_503_warmup_is_retried_until_active(
    host_simulator_factory, upstream_factory, monkeypatch
):
    sim = host_simulator_factory()
    warm_after_first_gateway_call(sim, monkeypatch)
    upstream = upstream_factory(models=("kimi-k2.6",))
    run = drive(start(register(sim), [entry(upstream)]))
    item = run.items.get()
    assert item.access_status == "active"
    retries = item.events.filter(event_type="retry_scheduled", stage="validate")
    assert retries.count() >= 1
    assert all("delay_ms" in event.payload for event in retries)
    assert item.retry_count >= 1 and item.last_retry_at is not None


def test_gateway_503_that_never_ends_is_degraded(
    host_simulator_factory, upstream_factory, settings
):
    settings.RELAY_VALIDATE_MAX_RETRIES = 2
    sim = host_simulator_factory(warmup_seconds=60)
    upstream = upstream_factory(models=("kimi-k2.6",))
    run = drive(start(register(sim), [entry(upstream)]))
    item = run.items.get()
    assert item.access_status == "degraded" and item.last_error_stage == "validate"
    assert run.state == "completed_with_warnings" and run.degraded_items == 1


def test_capability_profile_is_recorded_per_model(host_simulator, upstream_factory):
    from probe.simulator import SimModel

    upstream = upstream_factory(
        models=(SimModel("m-stream", tools=False), SimModel("m-plain", stream=False))
    )
    item = drive(start(register(host_simulator), [entry(upstream)])).items.get()
    profiles = {p["raw_model_id"]: p for p in item.capability_profile["model_profiles"]}
    assert profiles["m-stream"]["supports_tools"] is False  # seed 004: booleans once settled
    assert profiles["m-plain"]["supports_stream"] is False
    assert profiles["m-plain"]["supports_tools"] is True
    assert all(p["smoke_chat_ok"] for p in profiles.values())


def test_bad_upstream_key_ends_the_item_broken_at_probe(host_simulator, upstream_factory):
    upstream = upstream_factory(models=("kimi-k2.6",))
    run = drive(start(register(host_simulator), [entry(upstream, key="sk-wrong")]))
    item = run.items.get()
    assert (item.current_stage, item.last_error_stage) == ("done", "probe")
    assert "auth" in item.last_error.lower()
    assert run.state == "failed" and run.broken_items == 1
    assert not host_simulator.state.accounts


def test_run_state_is_queryable_while_items_are_in_flight(host_simulator, upstream_factory):
    from batch_import.stages import STAGE_STEPS, StageContext

    upstream = upstream_factory(models=("kimi-k2.6",))
    run = start(register(host_simulator), [entry(upstream), entry(upstream, key="sk-other")])
    first = run.items.order_by("position").first()
    STAGE_STEPS["probe"](first, StageContext(worker_id="t"))
    run.refresh_from_db()
    assert run.state == "running" and run.completed_items == 0
    first.refresh_from_db()
    assert first.current_stage == "provision" and first.raw_models == ["kimi-k2.6"]


def test_probe_race_and_warmup_together_end_advisory_and_active(
    host_simulator_factory, upstream_factory, monkeypatch
):
    sim = host_simulator_factory(probe_403=True)
    warm_after_first_gateway_call(sim, monkeypatch)
    upstream = upstream_factory(models=("kimi-k2.6",), responses_status=403)
    item = drive(start(register(sim), [entry(upstream)])).items.get()
    assert (item.confirmation_status, item.access_status) == ("advisory", "active")
    assert {"probe_race_absorbed", "warmup_retried"} <= set(item.advisory_messages)


def test_run_item_and_events_read_back_whole_from_the_v2_tables(host_simulator, upstream_factory):
    from batch_import import projection, selectors

    upstream = upstream_factory(models=("kimi-k2.6",))
    run = drive(start(register(host_simulator), [entry(upstream)]))
    item = selectors.item_get_with_events(run.run_id, run.items.get().item_id)
    detail = projection.item_detail_projection(item, item.events.all())
    assert detail["access_status"] == "active" and detail["account_id"] == item.account_id
    assert detail["capability_profile"]["model_profiles"][0]["raw_model_id"] == "kimi-k2.6"
    assert [e["event_type"] for e in detail["events"]][-1] == "validated"
    assert projection.run_projection(selectors.run_get(run.run_id))["state"] == "completed"


def test_the_legacy_batch_status_follows_the_run_outcome(host_simulator, upstream_factory):
    """Seed 002 §4.2: a finished run's V1 batch no longer reads ``running``."""
    good = upstream_factory(models=("kimi-k2.6",))
    revoked = upstream_factory(models=("glm-4.5",), api_key="sk-the-real-key")
    host = register(host_simulator)
    all_ok = drive(start(host, [entry(good)]))
    half = drive(start(host, [entry(good), entry(revoked, key="sk-revoked")]))
    none = drive(start(host, [entry(revoked, key="sk-revoked")]))
    statuses = [
        LegacyImportBatch.objects.get(run_id=run.run_id).status for run in (all_ok, half, none)
    ]
    assert statuses == ["succeeded", "partially_succeeded", "failed"]


def test_recommendations_reach_the_api_as_canonical_families_with_raw_ids(
    host_simulator, upstream_factory
):
    """A vendor-prefixed upstream: the API names the family, the raw id stays beside it."""
    from batch_import.projection import item_detail_projection

    upstream = upstream_factory(models=("moonshotai/Kimi-K2.6", "zai-org/GLM-4.5"))
    run = drive(start(register(host_simulator), [entry(upstream, models=["kimi-k2.66"])]))
    item = run.items.get()
    assert item.access_status == "active"
    recommended = item_detail_projection(item, [])["recommended_models"]
    assert recommended[0] == {"model": "kimi-k2.6", "raw_id": "moonshotai/Kimi-K2.6"}
