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

    # The first POST may still be served: wait until it is answered (and, without
    # idempotency, has made a second account). Answered creates are the retry's and the
    # first one's (a replay, or the twin).
    def answered_creates() -> int:
        return sum(
            r.method == "POST" and r.path == "/api/v1/admin/accounts" and r.status < 300
            for r in host_simulator.requests
        )

    deadline = time.monotonic() + 10
    while answered_creates() < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert answered_creates() == 2
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
