"""A slow host finishes an account create after our timeout: the retry must not make a twin."""

from __future__ import annotations

import time

import pytest

from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_a_create_whose_answer_was_lost_makes_exactly_one_account(
    host_simulator, upstream_factory, settings
):
    settings.RELAY_ALLOW_INSECURE_UPSTREAMS = True
    settings.RELAY_RETRY_BASE_DELAY = 0.05
    settings.RELAY_RETRY_MAX_DELAY = 0.2
    settings.RELAY_HTTP_TIMEOUT = 1.0
    # The first account POST is answered after 2 s: the client gave up after 1 s.
    host_simulator.fail_next("POST", "/api/v1/admin/accounts", status=None, delay=2.0)
    upstream = upstream_factory(models=("kimi-k2.6",))
    run = drive(start(register(host_simulator), [entry(upstream)]), rounds=60)
    item = run.items.get()
    assert item.access_status == "active"
    # The first POST is still being served; give it the time to finish (and, without
    # idempotency, to create a second account).
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and len(host_simulator.state.accounts) < 2:
        time.sleep(0.05)
    assert len(host_simulator.state.accounts) == 1
    assert item.events.filter(event_type="retry_scheduled", stage="provision").exists()


def test_the_simulator_replays_a_completed_idempotency_key(host_simulator):
    import httpx

    body = {
        "name": "twin-check",
        "platform": "openai",
        "type": "apikey",
        "credentials": {"api_key": "sk-x", "base_url": "https://u.example"},
    }
    headers = {"x-api-key": host_simulator.admin_key, "Idempotency-Key": "k-1"}
    url = host_simulator.url + "/api/v1/admin/accounts"
    first = httpx.post(url, json=body, headers=headers)
    again = httpx.post(url, json=body, headers=headers)
    assert first.json()["data"]["id"] == again.json()["data"]["id"]
    assert again.headers["X-Idempotency-Replayed"] == "true"
    assert len(host_simulator.state.accounts) == 1
