"""Many keys of one provider in one run: what is the same for all of them (group, channel,
the users' access) is set up by the first and reused by the others without asking the host."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from hosts.models import ManagedResource
from probe.client import USER_AGENT
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
KEYS = 4


def ours(request) -> bool:
    """Sent by our probe (the host simulator's own calls to the upstream are not)."""
    return {k.lower(): v for k, v in request.headers.items()}.get("user-agent") == USER_AGENT


def probe_kind(request) -> str:
    body = request.body if isinstance(request.body, dict) else {}
    return "stream" if request.stream else "tools" if body.get("tools") else ""


def host_calls(sim, since: int) -> Counter:
    return Counter(f"{r.method} {r.path}" for r in sim.requests[since:])


def test_one_providers_keys_set_up_group_channel_and_access_once(host_simulator, upstream_factory):
    upstream = upstream_factory(models=("kimi-k2.6", "glm-5"), api_key=None)
    host = register(host_simulator)
    before = len(host_simulator.requests)

    run = drive(start(host, [entry(upstream, key=f"sk-key-{n}") for n in range(KEYS)]))

    assert run.state == "completed"
    items = list(run.items.all())
    assert len({(i.group_id, i.channel_id) for i in items}) == 1
    assert len({i.account_id for i in items}) == KEYS
    calls = host_calls(host_simulator, before)
    assert calls["GET /api/v1/admin/channels"] == 1  # looked for once, then made
    for once in (
        "GET /api/v1/admin/groups",
        "GET /api/v1/admin/users",
        "POST /api/v1/admin/subscriptions/assign",
        "POST /api/v1/auth/login",
        "GET /api/v1/keys",
    ):
        assert calls[once] == 1, (once, calls)
    assert calls["POST /api/v1/admin/accounts"] == KEYS


def test_self_service_providers_share_the_operator_keys_group_lookup(
    host_simulator, upstream_factory
):
    host = register(host_simulator)
    glm = upstream_factory(models=("glm-4.5",))
    drive(start(host, [entry(glm)]))  # a subscription run makes a group and a user key
    probe_key = ManagedResource.objects.get(resource_type="api_key").secret.reveal()
    upstreams = [upstream_factory(models=("kimi-k2.6",), api_key=None) for _ in range(3)]
    before = len(host_simulator.requests)

    run = drive(
        start(
            host,
            [entry(u, key=f"sk-{n}") for n, u in enumerate(upstreams)],
            access_mode="self_service",
            probe_api_key=probe_key,
        )
    )

    assert {i.access_status for i in run.items.all()} == {"active"}
    calls = host_calls(host_simulator, before)
    # The key → group lookup (every group's key listing) is made once for the run.
    assert calls["GET /api/v1/admin/groups"] == 1, calls


def test_one_upstreams_routes_and_model_features_are_probed_once_per_run(
    host_simulator, upstream_factory
):
    """The routes and a model's features belong to the upstream: the first key probes them,
    the others only prove their own chat per model."""
    upstream = upstream_factory(models=("kimi-k2.6", "glm-5"), api_key=None)

    run = drive(
        start(register(host_simulator), [entry(upstream, key=f"sk-{n}") for n in range(KEYS)])
    )

    assert run.state == "completed"
    sent = Counter(
        (r.path, probe_kind(r)) for r in upstream.requests if r.method == "POST" and ours(r)
    )
    assert sent[("/v1/responses", "")] == 1
    assert sent[("/v1/messages", "")] == 1
    assert sent[("/v1/chat/completions", "stream")] == 2  # one per probed model, once
    assert sent[("/v1/chat/completions", "tools")] == 2
    assert sent[("/v1/chat/completions", "")] == 2 * KEYS  # each key proves its own chat
    profiles = {json.dumps(i.capability_profile, sort_keys=True) for i in run.items.all()}
    assert len(profiles) == 1  # every key ends with the same profile
