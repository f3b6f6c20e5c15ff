"""The gateway's "no account" answer depends on the build (issue #16, point 3; §9.5, §13):
validation tells a warm-up (retried) from a missing mapping (definitive) and from rate limits
(retried, then degraded), whichever build said it."""

from __future__ import annotations

import time

import pytest

from tests.integration.pipeline import (
    before_validate,
    drive,
    entry,
    register,
    start,
    warm_after_first_gateway_call,
)

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.mark.parametrize("style", ["generic", "detailed", "classified"])
def test_a_warm_up_is_retried_until_active_on_every_build(
    style, host_simulator_factory, upstream_factory, monkeypatch
):
    """The first gateway call always meets the warm-up (however slow the machine); the
    account is warm by the retry."""
    sim = host_simulator_factory()
    sim.quirks.no_account = style
    warm_after_first_gateway_call(sim, monkeypatch)
    item = drive(start(register(sim), [entry(upstream_factory(models=("kimi-k2.6",)))])).items.get()
    assert item.access_status == "active" and "warmup_retried" in item.advisory_messages
    retries = item.events.filter(event_type="retry_scheduled", stage="validate")
    assert retries.exists()
    assert all(event.payload["refusal"] == "no_account" for event in retries)
    assert "no schedulable account for kimi-k2.6 yet" in retries.first().message


@pytest.mark.parametrize("style", ["generic", "detailed"])
def test_a_warm_up_that_never_ends_is_degraded_as_routing(
    style, host_simulator_factory, upstream_factory, settings
):
    settings.RELAY_VALIDATE_MAX_RETRIES = 1
    sim = host_simulator_factory(warmup_seconds=60)
    sim.quirks.no_account = style
    item = drive(start(register(sim), [entry(upstream_factory(models=("kimi-k2.6",)))])).items.get()
    assert (item.access_status, item.failure_class) == ("degraded", "gateway_routing")
    assert "no schedulable account for kimi-k2.6 yet" in item.last_error


def test_model_not_found_is_definitive_and_not_retried(
    host_simulator_factory, upstream_factory, monkeypatch
):
    """The classified build: the group has accounts, none maps the model the gateway is asked
    for (here an admin's channel mapping sends it elsewhere)."""
    sim = host_simulator_factory()
    sim.quirks.no_account = "classified"

    def remap():
        with sim.state.lock:
            for channel in sim.state.channels.values():
                channel.restrict_models = False
                channel.model_mapping = {"openai": {"*": "nowhere"}}

    before_validate(monkeypatch, remap)
    run = drive(start(register(sim), [entry(upstream_factory(models=("kimi-k2.6",)))]))
    item = run.items.get()
    if not sim.state.channels:
        pytest.skip("the pipeline made no channel for the group")
    assert (item.access_status, item.failure_class) == ("broken", "gateway_routing")
    assert not item.events.filter(event_type="retry_scheduled", stage="validate").exists()
    assert f"no account of group {item.group_id} maps kimi-k2.6" in item.last_error
    validated = item.events.get(event_type="validated")
    assert validated.payload["refusal"] == "model_not_found" and validated.payload["status"] == 404


def rate_limit(sim, seconds: float):
    def change():
        with sim.state.lock:
            for account in sim.state.accounts.values():
                account.rate_limited_until = max(
                    account.rate_limited_until, time.monotonic() + seconds
                )

    return change


def test_rate_limits_that_pass_are_retried_until_active(
    host_simulator_factory, upstream_factory, monkeypatch
):
    sim = host_simulator_factory()
    sim.quirks.no_account = "classified"
    limited = rate_limit(sim, 0.3)
    done = []

    def once():
        if not done:
            done.append(limited())

    before_validate(monkeypatch, once)
    item = drive(start(register(sim), [entry(upstream_factory(models=("kimi-k2.6",)))])).items.get()
    assert item.access_status == "active"
    retries = item.events.filter(event_type="retry_scheduled", stage="validate")
    assert retries.exists()
    # The classified 429 says every account is rate-limited; the account, read right after,
    # says by whom (unless its 0.3 s limit already passed).
    refusals = {(e.payload["refusal"], e.payload["status"]) for e in retries}
    assert refusals <= {("upstream_rate_limited", 429), ("rate_limited", 429)}
    assert "rate-limit" in retries.first().message
    first = retries.order_by("pk").first().payload
    assert first["retry_after"] == 1  # the host said when an account is free again
    assert first["delay_ms"] == 400  # ... waited for, up to the configured cap (tests: 0.4 s)


def test_rate_limits_that_last_are_degraded_as_quota(
    host_simulator_factory, upstream_factory, monkeypatch, settings
):
    settings.RELAY_VALIDATE_MAX_RETRIES = 1
    sim = host_simulator_factory()
    sim.quirks.no_account = "classified"
    before_validate(monkeypatch, rate_limit(sim, 60))
    item = drive(start(register(sim), [entry(upstream_factory(models=("kimi-k2.6",)))])).items.get()
    assert (item.access_status, item.failure_class) == ("degraded", "upstream_quota")
    assert "rate-limits its key (429)" in item.last_error


def test_a_channel_that_prices_nothing_is_definitive(
    host_simulator_factory, upstream_factory, monkeypatch
):
    """The detailed build says why: the group's channel restricts models and prices none."""
    sim = host_simulator_factory()
    sim.quirks.no_account = "detailed"

    def restrict():
        with sim.state.lock:
            for channel in sim.state.channels.values():
                channel.restrict_models, channel.model_pricing = True, []

    before_validate(monkeypatch, restrict)
    item = drive(start(register(sim), [entry(upstream_factory(models=("kimi-k2.6",)))])).items.get()
    if not sim.state.channels:
        pytest.skip("the pipeline made no channel for the group")
    assert (item.access_status, item.failure_class) == ("broken", "gateway_routing")
    assert not item.events.filter(event_type="retry_scheduled", stage="validate").exists()
    assert f"the channel of group {item.group_id} prices no kimi-k2.6" in item.last_error


def test_a_key_over_its_own_limit_is_degraded_without_retrying(
    host_simulator, upstream_factory, monkeypatch
):
    """A 429 about the key itself (its subscription's daily limit) passes only when the
    window resets: not worth a retry, not a broken setup either."""
    from hosts.sub2api import ChatCompletion
    from hosts.sub2api.gateway import GatewayAPI

    def over_limit(self, api_key, **kwargs):
        return ChatCompletion(
            status=429,
            error_type="USAGE_LIMIT_EXCEEDED",
            error_message="daily usage limit exceeded",
        )

    monkeypatch.setattr(GatewayAPI, "chat_completion", over_limit)
    item = drive(
        start(register(host_simulator), [entry(upstream_factory(models=("kimi-k2.6",)))])
    ).items.get()
    assert (item.access_status, item.failure_class) == ("degraded", "upstream_quota")
    assert not item.events.filter(event_type="retry_scheduled", stage="validate").exists()
    assert "used up its quota or usage limit" in item.last_error


# --- quota or a refused upstream key, told apart from routing (#14) -------------------------


def upstream_fails(upstream, status: int):
    """From now on the upstream answers ``status`` to every request the host forwards."""
    from probe.simulator import Fault

    return lambda: upstream.add_fault(Fault(path="*", status=status, times=10_000))


@pytest.mark.parametrize("style", ["generic", "detailed", "classified"])
def test_an_upstream_rate_limit_is_quota_on_every_build(
    style, host_simulator_factory, upstream_factory, monkeypatch, settings
):
    """The upstream says 429: the host rate-limits the account, then answers "no account"
    (503 generic or detailed, 429 classified). The account's state says it is the upstream's
    limit, not routing."""
    settings.RELAY_VALIDATE_MAX_RETRIES = 1
    sim = host_simulator_factory(no_account=style)
    upstream = upstream_factory(models=("kimi-k2.6",))
    before_validate(monkeypatch, upstream_fails(upstream, 429))
    item = drive(start(register(sim), [entry(upstream)])).items.get()
    assert (item.access_status, item.failure_class) == ("degraded", "upstream_quota")
    assert "rate-limits its key (429)" in item.last_error
    retries = item.events.filter(event_type="retry_scheduled", stage="validate")
    assert {e.payload["refusal"] for e in retries} == {"upstream_rate_limited"}
    account = sim.state.accounts[item.account_id]
    assert account.dto(old=False)["rate_limit_reset_at"] is not None


@pytest.mark.parametrize("style", ["generic", "detailed", "classified"])
def test_an_upstream_key_out_of_balance_is_quota_and_not_retried(
    style, host_simulator_factory, upstream_factory, monkeypatch
):
    """402 upstream: the host marks the account "Payment required (402): …" and answers 502
    "Upstream request failed" (then "no account"): quota, degraded at once."""
    sim = host_simulator_factory(no_account=style)
    upstream = upstream_factory(models=("kimi-k2.6",))
    before_validate(monkeypatch, upstream_fails(upstream, 402))
    item = drive(start(register(sim), [entry(upstream)])).items.get()
    assert (item.access_status, item.failure_class) == ("degraded", "upstream_quota")
    assert "Payment required (402): Insufficient Balance" in item.last_error
    assert not item.events.filter(event_type="retry_scheduled", stage="validate").exists()


def test_an_upstream_key_revoked_after_provisioning_is_upstream_auth(
    host_simulator, upstream_factory, monkeypatch
):
    upstream = upstream_factory(models=("kimi-k2.6",))
    before_validate(monkeypatch, upstream_fails(upstream, 401))
    item = drive(start(register(host_simulator), [entry(upstream)])).items.get()
    assert (item.access_status, item.failure_class) == ("broken", "upstream_auth")
    assert "Authentication failed (401)" in item.last_error


def test_a_channel_pricing_restriction_is_definitive_on_the_generic_build(
    host_simulator_factory, upstream_factory, monkeypatch
):
    """The generic build hides the restriction behind "Service temporarily unavailable";
    the channel's own configuration tells it, so it is not taken for a warm-up."""
    sim = host_simulator_factory(no_account="generic")

    def restrict():
        with sim.state.lock:
            for channel in sim.state.channels.values():
                channel.restrict_models, channel.model_pricing = True, []

    before_validate(monkeypatch, restrict)
    item = drive(start(register(sim), [entry(upstream_factory(models=("kimi-k2.6",)))])).items.get()
    if not sim.state.channels:
        pytest.skip("the pipeline made no channel for the group")
    assert (item.access_status, item.failure_class) == ("broken", "gateway_routing")
    assert not item.events.filter(event_type="retry_scheduled", stage="validate").exists()
    assert f"the channel of group {item.group_id} prices no kimi-k2.6" in item.last_error
    assert "Service temporarily unavailable" in item.last_error  # what the host said
