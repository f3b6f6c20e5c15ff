from __future__ import annotations

from typing import Any

import httpx
import pytest

from probe.capability import CapabilityProfile, ModelCapabilityProfile, probe_capabilities
from probe.client import UpstreamClient
from probe.completion import choose_smoke_model, resolve_smoke_model, smoke_completion
from probe.simulator import UpstreamSimulator
from tests.fixtures_upstream import UpstreamFactory


def profile_with(ok: dict[str, bool]) -> CapabilityProfile:
    models = [ModelCapabilityProfile(raw, raw, raw, smoke_chat_ok=flag) for raw, flag in ok.items()]
    return CapabilityProfile(model_profiles=models)


def client_for(upstream: UpstreamSimulator, **options: Any) -> UpstreamClient:
    options = {"timeout": 2.0, "retries": 0, "backoff": 0.0, "api_key": upstream.api_key, **options}
    return UpstreamClient(upstream.base_url, options.pop("api_key"), **options)


def test_resolve_smoke_model_uses_requested_alias_when_matched() -> None:
    raw = ["moonshotai/Kimi-K2-Instruct", "moonshotai/Kimi-K2.6"]
    model, recommended = resolve_smoke_model(["kimi-k3", "kimi 2.6"], raw, None)
    assert model == "moonshotai/Kimi-K2.6"
    assert recommended[0] == "moonshotai/Kimi-K2.6"  # for the unresolved "kimi-k3"


def test_resolve_smoke_model_falls_back_to_a_working_discovered_model() -> None:
    raw = ["deepseek-reasoner", "deepseek-chat", "qwen3-32b"]
    profile = profile_with({"deepseek-reasoner": False, "deepseek-chat": True, "qwen3-32b": True})
    assert resolve_smoke_model([], raw, profile) == ("deepseek-chat", [])
    model, recommended = resolve_smoke_model(["qwen3-323b"], raw, profile)
    assert (model, recommended[0]) == ("qwen3-32b", "qwen3-32b")


def test_resolve_smoke_model_falls_back_to_first_discovered_without_profile() -> None:
    assert resolve_smoke_model(["gpt-4o"], ["glm-4.5", "glm-4.6"], None)[0] == "glm-4.5"
    profile = profile_with({"glm-4.5": False})
    assert resolve_smoke_model([], ["glm-4.5", "glm-4.6"], profile)[0] == "glm-4.6"


def test_a_requested_model_that_failed_the_smoke_chat_gives_way_to_one_that_passed() -> None:
    raw = ["glm-4.5", "kimi-k2.6", "deepseek-chat"]
    profile = profile_with({"glm-4.5": False, "kimi-k2.6": True, "deepseek-chat": True})
    choice = choose_smoke_model(["glm-4.5", "kimi-k2.6"], raw, profile)
    assert choice.model == "kimi-k2.6"
    assert choice.reason == "glm-4.5 failed the upstream smoke chat; kimi-k2.6 passed it"
    choice = choose_smoke_model(["glm-4.5"], raw, profile)
    assert choice.model in ("kimi-k2.6", "deepseek-chat") and "glm-4.5 failed" in choice.reason
    assert choose_smoke_model(["kimi-k2.6"], raw, profile).reason == ""


def test_never_a_smoke_model_known_to_fail() -> None:
    profile = profile_with({"glm-4.5": False, "glm-4.6": False})
    assert choose_smoke_model(["glm-4.5"], ["glm-4.5", "glm-4.6"], profile).model is None
    assert choose_smoke_model([], ["glm-4.5", "glm-4.6"], profile).model is None


def test_resolve_smoke_model_without_models() -> None:
    assert resolve_smoke_model(["kimi-k2.6"], [], None) == (None, [])


def test_smoke_completion_ok(upstream_client: UpstreamClient) -> None:
    result = smoke_completion(upstream_client, "kimi-k2.6")
    assert (result.model, result.http_status, result.classification) == ("kimi-k2.6", 200, "ok")
    assert result.ok and not result.transient and result.error == ""
    assert result.latency_ms >= 0


def test_smoke_completion_responses_unsupported_uses_chat_completions(
    upstream_factory: UpstreamFactory,
) -> None:
    upstream = upstream_factory(["kimi-k2.6"], responses_status=403)
    with client_for(upstream) as client:
        profile = probe_capabilities(client, ["kimi-k2.6"])
        upstream.clear_requests()
        result = smoke_completion(client, "kimi-k2.6", profile)
    assert result.ok
    assert [r.path for r in upstream.requests] == ["/v1/chat/completions"]


def test_smoke_completion_unknown_model(upstream: UpstreamSimulator) -> None:
    with client_for(upstream) as client:
        result = smoke_completion(client, "kimi-k2.7")
    assert (result.http_status, result.classification) == (404, "model_not_found")
    assert "kimi-k2.7" in result.error


def test_smoke_completion_auth_failed(upstream: UpstreamSimulator) -> None:
    with client_for(upstream, api_key="sk-wrong-0123456789") as client:
        result = smoke_completion(client, "kimi-k2.6")
    assert (result.http_status, result.classification, result.transient) == (
        401,
        "auth_failed",
        False,
    )
    assert "0123456789" not in result.error


def test_smoke_completion_rate_limited(upstream: UpstreamSimulator) -> None:
    upstream.fail_next(1, path="/v1/chat/completions", status=429)
    with client_for(upstream) as client:
        result = smoke_completion(client, "kimi-k2.6")
    assert (result.http_status, result.classification, result.transient) == (
        429,
        "rate_limited",
        True,
    )


def test_smoke_completion_server_error_is_transient(upstream: UpstreamSimulator) -> None:
    upstream.fail_next(1, path="/v1/chat/completions", status=503)
    with client_for(upstream) as client:
        result = smoke_completion(client, "kimi-k2.6")
    assert (result.http_status, result.classification, result.transient) == (
        503,
        "transient",
        True,
    )


def test_smoke_completion_retries_a_transient_failure(upstream: UpstreamSimulator) -> None:
    upstream.fail_next(1, path="/v1/chat/completions", status=500)
    with client_for(upstream, retries=1) as client:
        assert smoke_completion(client, "kimi-k2.6").ok
    assert [r.status for r in upstream.requests] == [500, 200]


def test_smoke_completion_timeout_has_no_status(upstream: UpstreamSimulator) -> None:
    upstream.fail_next(1, path="/v1/chat/completions", mode="timeout")
    with client_for(upstream, timeout=0.3) as client:
        result = smoke_completion(client, "kimi-k2.6")
    assert (result.http_status, result.classification, result.transient) == (0, "transient", True)
    assert result.latency_ms >= 300


def test_smoke_completion_garbage_is_bad_response(upstream: UpstreamSimulator) -> None:
    upstream.fail_next(1, path="/v1/chat/completions", mode="garbage")
    with client_for(upstream) as client:
        result = smoke_completion(client, "kimi-k2.6")
    assert (result.http_status, result.classification) == (200, "bad_response")


@pytest.mark.parametrize(
    ("status", "body", "classification"),
    [
        (400, {"error": {"message": "Model Not Exist"}}, "model_not_found"),
        (400, {"error": {"message": "invalid model: kimi-k9"}}, "model_not_found"),
        (400, {"error": {"message": "messages must not be empty"}}, "http_error"),
        (402, {"error": {"message": "Insufficient Balance"}}, "http_error"),
        (200, {"id": "x", "object": "chat.completion", "choices": []}, "bad_response"),
    ],
)
def test_smoke_completion_classifies_provider_answers(
    status: int, body: dict[str, Any], classification: str
) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, json=body))
    client = UpstreamClient("https://api.example.com", "sk-t", transport=transport, retries=0)
    result = smoke_completion(client, "kimi-k9")
    assert (result.http_status, result.classification) == (status, classification)
