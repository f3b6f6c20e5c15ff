from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pytest_django import Settings

from probe.capability import (
    Advisory,
    CapabilityProfile,
    ModelCapabilityProfile,
    TransportProfile,
    model_id_style,
    probe_capabilities,
    responses_supported,
    seed_profile,
    send_chat,
)
from probe.client import UpstreamClient
from probe.simulator import SimModel, UpstreamSimulator
from tests.fixtures_upstream import UpstreamFactory

FEATURES = ("supports_stream", "supports_tools", "supports_reasoning_fields")

# The item detail example of seed 004 §6.5, verbatim.
SEED_004_PROFILE = {
    "transport_profile": {
        "supports_openai_models": True,
        "supports_openai_chat_completions": True,
        "supports_openai_responses": False,
        "supports_anthropic_messages": False,
        "auth_style": "bearer",
        "model_id_style": "canonical",
        "known_advisories": ["responses_unsupported_but_chat_ok", "initial_probe_race_expected"],
    },
    "model_profiles": [
        {
            "raw_model_id": "kimi-k2.6",
            "normalized_model_id": "kimi-k2.6",
            "canonical_model_family": "kimi-k2.6",
            "supports_stream": True,
            "supports_tools": "unknown",
            "supports_reasoning_fields": "unknown",
            "smoke_chat_ok": True,
        }
    ],
}


def client_for(upstream: UpstreamSimulator, **options: Any) -> UpstreamClient:
    options = {"timeout": 2.0, "retries": 0, "backoff": 0.0, **options}
    return UpstreamClient(upstream.base_url, upstream.api_key, **options)


def probe(upstream: UpstreamSimulator, **options: Any) -> CapabilityProfile:
    models = [model.id for model in upstream.config.models]
    with client_for(upstream) as client:
        return probe_capabilities(client, models, **options)


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> UpstreamClient:
    transport = httpx.MockTransport(handler)
    return UpstreamClient("https://relay.example.com", "sk-t", transport=transport, retries=0)


@pytest.mark.parametrize("status", [403, 404, 405])
def test_probe_capabilities_responses_unsupported_chat_ok_is_an_advisory(
    upstream_factory: UpstreamFactory, status: int
) -> None:
    profile = probe(upstream_factory(["kimi-k2.6"], responses_status=status))
    transport = profile.transport_profile
    assert transport.supports_openai_chat_completions is True
    assert transport.supports_openai_responses is False
    assert transport.known_advisories == [
        "responses_unsupported_but_chat_ok",
        "initial_probe_race_expected",
    ]
    assert profile.model_profiles[0].smoke_chat_ok is True
    assert responses_supported(profile) is False


def test_probe_capabilities_responses_supported(upstream_factory: UpstreamFactory) -> None:
    profile = probe(upstream_factory(["kimi-k2.6"]))
    assert profile.transport_profile.supports_openai_responses is True
    assert profile.transport_profile.known_advisories == []
    assert responses_supported(profile) is True


def test_probe_capabilities_model_profiles_captured_per_model(
    upstream_factory: UpstreamFactory,
) -> None:
    models = [
        SimModel("deepseek-ai/DeepSeek-R1", reasoning=True),
        SimModel("Qwen/Qwen3-32B", stream=False, tools=False),
    ]
    profile = probe(upstream_factory(models))
    assert [m.to_dict() for m in profile.model_profiles] == [
        {
            "raw_model_id": "deepseek-ai/DeepSeek-R1",
            "normalized_model_id": "deepseek-ai/deepseek-r1",
            "canonical_model_family": "deepseek-r1",
            "supports_stream": True,
            "supports_tools": True,
            "supports_reasoning_fields": True,
            "smoke_chat_ok": True,
        },
        {
            "raw_model_id": "Qwen/Qwen3-32B",
            "normalized_model_id": "qwen/qwen3-32b",
            "canonical_model_family": "qwen3-32b",
            "supports_stream": False,
            "supports_tools": False,
            "supports_reasoning_fields": "unknown",
            "smoke_chat_ok": True,
        },
    ]
    assert profile.transport_profile.model_id_style == "vendor_prefixed"


def test_probe_capabilities_unknown_model_is_not_smoke_ok(upstream: UpstreamSimulator) -> None:
    with client_for(upstream) as client:
        profile = probe_capabilities(client, ["kimi-k2.6", "gone-model"])
    assert [m.smoke_chat_ok for m in profile.model_profiles] == [True, False]
    assert profile.model("gone-model") == ModelCapabilityProfile(
        "gone-model", "gone-model", "gone-model", smoke_chat_ok=False
    )
    assert profile.smoke_ok_models == ["kimi-k2.6"]


def test_probe_capabilities_bounded_by_max_models(
    upstream_factory: UpstreamFactory, settings: Settings
) -> None:
    settings.RELAY_PROBE_MAX_MODELS = 2
    upstream = upstream_factory([f"model-{n}" for n in range(5)])
    profile = probe(upstream)
    chatted = {request.model for request in upstream.requests_to("/v1/chat/completions")}
    assert [m.raw_model_id for m in profile.model_profiles] == ["model-0", "model-1"]
    assert chatted == {"model-0", "model-1"}
    assert len(probe(upstream, max_models=1).model_profiles) == 1


def test_probe_capabilities_probes_preferred_models_first(
    upstream_factory: UpstreamFactory,
) -> None:
    upstream = upstream_factory(["a", "b", "c"])
    profile = probe(upstream, max_models=2, preferred=["c", "not-listed"])
    assert [m.raw_model_id for m in profile.model_profiles] == ["c", "a"]
    assert {r.model for r in upstream.requests_to("/v1/responses")} == {"c"}


def test_probe_capabilities_runs_concurrently_within_the_bound(
    upstream_factory: UpstreamFactory, settings: Settings
) -> None:
    settings.RELAY_UPSTREAM_CONCURRENCY = 2
    upstream = upstream_factory(["a", "b", "c"], latency=0.05)
    probe(upstream)
    assert len(upstream.requests) == 2 + 3 * 3
    assert upstream.max_in_flight == 2


def test_probe_capabilities_probes_are_cheap(upstream: UpstreamSimulator) -> None:
    probe(upstream)
    bodies = {(r.path, json.dumps(r.body.get("stream", False))): r.body for r in upstream.requests}
    chats = [r.body for r in upstream.requests_to("/v1/chat/completions")]
    assert chats and all(1 <= body["max_tokens"] <= 8 for body in chats)
    assert bodies[("/v1/messages", "false")]["max_tokens"] == 1
    assert bodies[("/v1/responses", "false")]["max_output_tokens"] == 16


def test_probe_capabilities_anthropic_messages(upstream_factory: UpstreamFactory) -> None:
    assert probe(upstream_factory(anthropic_messages=True)).transport_profile.to_dict()[
        "supports_anthropic_messages"
    ]
    assert not probe(upstream_factory()).transport_profile.supports_anthropic_messages


def test_probe_capabilities_rate_limit_records_advisory(upstream: UpstreamSimulator) -> None:
    upstream.fail_next(1, path="/v1/chat/completions", status=429, model="deepseek-chat")
    profile = probe(upstream)
    model = profile.model("deepseek-chat")
    assert Advisory.PROBE_RATE_LIMITED in profile.transport_profile.known_advisories
    assert model is not None
    # The simulated model supports everything: a throttled probe must not turn into "no".
    assert "no" not in (model.supports_stream, model.supports_tools)


def test_probe_capabilities_responses_timeout_is_inconclusive(
    upstream: UpstreamSimulator,
) -> None:
    upstream.fail_next(1, path="/v1/responses", mode="timeout")
    with client_for(upstream, timeout=0.3) as client:
        profile = probe_capabilities(client, ["kimi-k2.6"])
    assert profile.transport_profile.known_advisories == ["responses_probe_inconclusive"]
    assert profile.transport_profile.supports_openai_chat_completions is True
    assert responses_supported(profile) is None


def test_probe_capabilities_without_models_makes_no_calls(upstream: UpstreamSimulator) -> None:
    with client_for(upstream) as client:
        profile = probe_capabilities(client, [])
    assert upstream.requests == []
    assert profile.transport_profile.supports_openai_models is False
    assert profile.model_profiles == []


def test_probe_capabilities_refusals_mean_nothing_when_chat_fails() -> None:
    """A 400 on stream/tools says "unsupported" only if the plain chat works."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path != "/v1/chat/completions":
            return httpx.Response(404, json={"error": {"message": "no route"}})
        if body.get("stream") or body.get("tools"):
            return httpx.Response(400, json={"error": {"message": "bad request"}})
        return httpx.Response(500, json={"error": {"message": "upstream down"}})

    profile = probe_capabilities(mock_client(handler), ["m"])
    model = profile.model_profiles[0]
    assert (model.smoke_chat_ok, model.supports_stream, model.supports_tools) == (
        False,
        "unknown",
        "unknown",
    )
    assert profile.transport_profile.known_advisories == []
    assert responses_supported(profile) is False


def test_probe_capabilities_html_catch_all_on_responses_means_unsupported() -> None:
    """Relays that serve their web UI for unknown paths answer 200 HTML, not 404."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/chat/completions":
            return httpx.Response(200, json={"choices": [{"message": {"content": "OK"}}]})
        return httpx.Response(200, text="<!doctype html><div id=app></div>")

    profile = probe_capabilities(mock_client(handler), ["m"])
    assert responses_supported(profile) is False
    assert "responses_unsupported_but_chat_ok" in profile.transport_profile.known_advisories
    assert profile.transport_profile.supports_anthropic_messages is False


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"role": "assistant", "content": "OK", "reasoning_content": "thinking"}, "yes"),
        ({"role": "assistant", "content": "OK", "reasoning": "thinking"}, "yes"),
        ({"role": "assistant", "content": "OK", "reasoning_content": None}, "no"),
        ({"role": "assistant", "content": "OK"}, "unknown"),
    ],
)
def test_probe_capabilities_reasoning_fields(message: dict[str, Any], expected: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content).get("stream"):
            return httpx.Response(400, json={"error": {"message": "no stream"}})
        return httpx.Response(200, json={"choices": [{"index": 0, "message": message}]})

    profile = probe_capabilities(mock_client(handler), ["m"])
    assert profile.model_profiles[0].supports_reasoning_fields == expected


def test_send_chat_retries_with_max_completion_tokens() -> None:
    """OpenAI reasoning models refuse max_tokens; the probe switches parameter once."""
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        if "max_tokens" in bodies[-1]:
            message = "Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens' instead."
            return httpx.Response(400, json={"error": {"message": message}})
        return httpx.Response(200, json={"choices": [{"message": {"content": ""}}]})

    assert send_chat(mock_client(handler), "o3-mini").status == 200
    assert [sorted(body) for body in bodies][1] == [
        "max_completion_tokens",
        "messages",
        "model",
        "stream",
    ]


def test_capability_profile_serializes_as_seed_004() -> None:
    profile = CapabilityProfile.from_dict(SEED_004_PROFILE)
    data = profile.to_dict()
    assert data["transport_profile"] == SEED_004_PROFILE["transport_profile"]
    assert data["model_profiles"] == SEED_004_PROFILE["model_profiles"]
    assert CapabilityProfile.from_dict(data) == profile
    assert responses_supported(profile) is False


def test_capability_profile_from_dict_tolerates_missing_and_odd_values() -> None:
    profile = CapabilityProfile.from_dict(
        {"model_profiles": [{"raw_model_id": "Kimi-K2.6", "supports_tools": "maybe"}, "junk"]}
    )
    assert profile.transport_profile == TransportProfile()
    assert profile.model_profiles == [
        ModelCapabilityProfile("Kimi-K2.6", "kimi-k2.6", "kimi-k2.6", supports_tools="unknown")
    ]
    assert CapabilityProfile.from_dict(None) == CapabilityProfile()


def test_responses_supported_without_profile_is_unknown() -> None:
    assert responses_supported(None) is None


@pytest.mark.parametrize(
    ("raw_models", "style"),
    [
        (["kimi-k2.6", "deepseek-chat"], "canonical"),
        (["deepseek-ai/DeepSeek-V3", "Qwen/Qwen3-32B"], "vendor_prefixed"),
        (["deepseek-ai/DeepSeek-V3", "deepseek-chat"], "mixed"),
        ([], "canonical"),
    ],
)
def test_model_id_style(raw_models: list[str], style: str) -> None:
    assert model_id_style(raw_models) == style


def test_a_known_profile_leaves_only_each_models_chat_to_send(
    upstream_factory: UpstreamFactory,
) -> None:
    """Another key of the same upstream settled the routes and the model's features: this key
    sends one chat per model (its own proof) and ends with the same profile."""
    upstream = upstream_factory(["kimi-k2.6", SimModel("glm-5", tools=False)], responses_status=404)
    first = probe(upstream)
    sent_before = len(upstream.requests)

    second = probe(upstream, known=first)

    sent = upstream.requests[sent_before:]
    assert [(r.path, r.stream) for r in sent] == [("/v1/chat/completions", False)] * 2
    assert all(not (r.body or {}).get("tools") for r in sent)
    assert second.to_dict() == first.to_dict()


def test_a_single_probe_is_sent_from_the_calling_thread(
    upstream_factory: UpstreamFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later key of a settled upstream with one model sends one chat: no thread pool for it."""
    from probe import capability

    upstream = upstream_factory(["kimi-k2.6"])
    first = probe(upstream)
    monkeypatch.setattr(capability, "ThreadPoolExecutor", None)  # building a pool now fails
    assert probe(upstream, known=first).to_dict() == first.to_dict()


def test_an_inconclusive_known_profile_is_probed_again(upstream: UpstreamSimulator) -> None:
    upstream.fail_next(1, path="/v1/responses", mode="timeout")
    with client_for(upstream, timeout=0.3) as client:
        inconclusive = probe_capabilities(client, ["kimi-k2.6"])
        settled = probe_capabilities(client, ["kimi-k2.6"], known=inconclusive)
    assert responses_supported(inconclusive) is None
    assert responses_supported(settled) is True


@pytest.mark.parametrize(
    ("stored", "wire"),
    [
        ("yes", True),
        ("no", False),
        ("unknown", "unknown"),
        (True, True),
        (False, False),
        (None, "unknown"),
        ("maybe", "unknown"),
    ],
)
def test_model_features_take_seed_004_types(stored, wire) -> None:
    """Seed 004 §6.5: a boolean once settled, the string "unknown" otherwise; rows stored
    with yes/no before read the same."""
    profile = {"model_profiles": [{"raw_model_id": "m", **dict.fromkeys(FEATURES, stored)}]}
    [model] = seed_profile(profile)["model_profiles"]
    assert all(model[name] == wire and type(model[name]) is type(wire) for name in FEATURES)
    assert seed_profile(None) is None
