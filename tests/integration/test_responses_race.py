"""The host's Responses probe runs in the background after an account is created (issue #16,
point 2): its first tests go to /v1/responses and the upstream's own answer decides."""

from __future__ import annotations

import pytest

from tests.integration.pipeline import (
    drive,
    entry,
    host_probe_settles_after_first_confirm,
    register,
    start,
)

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_a_chat_only_upstream_our_probe_could_not_settle_races_the_host_probe(
    host_simulator_factory, upstream_factory, monkeypatch
):
    sim = host_simulator_factory()
    host_probe_settles_after_first_confirm(sim, monkeypatch)
    upstream = upstream_factory(models=("kimi-k2.6",), responses_status=404)
    upstream.fail_next(1, path="/v1/responses", status=400)  # our probe: inconclusive
    item = drive(start(register(sim), [entry(upstream)])).items.get()

    assert (
        "responses_probe_inconclusive"
        in item.capability_profile["transport_profile"]["known_advisories"]
    )
    assert (item.confirmation_status, item.access_status) == ("advisory", "active")
    assert "probe_race_absorbed" in item.advisory_messages
    retried = item.events.filter(event_type="retry_scheduled", stage="confirm")
    assert retried.exists() and "API returned 404" in retried.first().message
    account = sim.state.accounts[item.account_id]
    assert account.extra["openai_responses_supported"] is False  # the host's probe settled


def test_a_chat_only_upstream_we_know_about_is_pinned_and_never_races(
    host_simulator_factory, upstream_factory
):
    # The host's own probe stays unsettled for the whole test (however slow the machine), so
    # without the pin every account test would go to /v1/responses.
    sim = host_simulator_factory(responses_probe_seconds=60)
    upstream = upstream_factory(models=("kimi-k2.6",), responses_status=404)
    item = drive(start(register(sim), [entry(upstream)])).items.get()
    assert (item.confirmation_status, item.access_status) == ("confirmed", "active")
    assert not item.events.filter(event_type="retry_scheduled", stage="confirm").exists()
    assert not upstream.requests_to("/v1/responses")[1:]  # only our own probe went there


def test_an_upstream_with_responses_passes_at_once(host_simulator_factory, upstream_factory):
    sim = host_simulator_factory(responses_probe_seconds=0.3)
    upstream = upstream_factory(models=("kimi-k2.6",))
    item = drive(start(register(sim), [entry(upstream)])).items.get()
    assert (item.confirmation_status, item.access_status) == ("confirmed", "active")
