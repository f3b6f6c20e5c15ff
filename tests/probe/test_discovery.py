from __future__ import annotations

from typing import Any

import httpx
import pytest

from probe.client import UpstreamClient
from probe.discovery import discover_models
from probe.errors import ProbeError
from tests.fixtures_upstream import UpstreamFactory


def client_answering(status: int, **response: Any) -> UpstreamClient:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, **response))
    return UpstreamClient("https://api.example.com/v1", "sk-test", transport=transport, retries=0)


def client_raising(exc: type[httpx.TransportError]) -> UpstreamClient:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("simulated", request=request)

    transport = httpx.MockTransport(handler)
    return UpstreamClient("https://api.example.com", "sk-test", transport=transport, retries=0)


def test_discover_models_reads_the_openai_list_shape() -> None:
    body = {"object": "list", "data": [{"id": "deepseek-chat"}, {"id": "deepseek-reasoner"}]}
    result = discover_models(client_answering(200, json=body))
    assert result.raw_models == ["deepseek-chat", "deepseek-reasoner"]
    assert (result.http_status, result.is_empty) == (200, False)
    assert result.latency_ms >= 0


@pytest.mark.parametrize(
    "body",
    [
        ["kimi-k2.6", "kimi-k2"],
        [{"id": "kimi-k2.6"}, {"id": "kimi-k2"}],
        {"models": [{"id": "kimi-k2.6"}, "kimi-k2"]},
        {"models": [{"name": "kimi-k2.6"}, {"model": "kimi-k2"}]},
    ],
)
def test_discover_models_tolerates_bare_lists_and_models_key(body: Any) -> None:
    assert discover_models(client_answering(200, json=body)).raw_models == ["kimi-k2.6", "kimi-k2"]


def test_discover_models_drops_duplicates_and_blank_ids() -> None:
    body = {"data": [{"id": "glm-4.5"}, {"id": " "}, {"id": "glm-4.5"}, {"id": 7}, "glm-4.6"]}
    assert discover_models(client_answering(200, json=body)).raw_models == ["glm-4.5", "glm-4.6"]


@pytest.mark.parametrize("body", [{"object": "list", "data": []}, {"data": None}, []])
def test_discover_models_empty_list_is_a_result_not_an_error(body: Any) -> None:
    result = discover_models(client_answering(200, json=body))
    assert result.is_empty
    assert result.raw_models == []


@pytest.mark.parametrize("status", [401, 403])
def test_discover_models_auth_failure(status: int) -> None:
    with pytest.raises(ProbeError) as caught:
        discover_models(client_answering(status, json={"error": {"message": "Unauthorized"}}))
    assert caught.value.kind == "auth_failed"


def test_discover_models_timeout() -> None:
    with pytest.raises(ProbeError) as caught:
        discover_models(client_raising(httpx.ConnectTimeout))
    assert caught.value.kind == "timeout"


def test_discover_models_connection_refused_is_unreachable() -> None:
    with pytest.raises(ProbeError) as caught:
        discover_models(client_raising(httpx.ConnectError))
    assert caught.value.kind == "unreachable"


def test_discover_models_non_json_is_bad_response() -> None:
    with pytest.raises(ProbeError) as caught:
        discover_models(client_answering(200, text="<html>Welcome to nginx</html>"))
    assert caught.value.kind == "bad_response"


@pytest.mark.parametrize("body", [{"object": "model", "id": "x"}, {"data": "x"}, [{"x": 1}]])
def test_discover_models_unknown_shape_is_bad_response(body: Any) -> None:
    with pytest.raises(ProbeError) as caught:
        discover_models(client_answering(200, json=body))
    assert caught.value.kind == "bad_response"


@pytest.mark.parametrize("shape", ["openai", "bare_list", "models_key"])
def test_discover_models_over_loopback(upstream_factory: UpstreamFactory, shape: str) -> None:
    upstream = upstream_factory(["MiniMax-M2", "deepseek-ai/DeepSeek-V3"], models_shape=shape)
    with UpstreamClient(upstream.base_url, upstream.api_key, retries=0) as client:
        result = discover_models(client)
    assert result.raw_models == ["MiniMax-M2", "deepseek-ai/DeepSeek-V3"]
    assert [r.path for r in upstream.requests] == ["/v1/models"]


def test_discover_models_wrong_key_over_loopback(upstream_factory: UpstreamFactory) -> None:
    upstream = upstream_factory(api_key="sk-right")
    client = UpstreamClient(upstream.url, "sk-wrong", retries=0)
    with pytest.raises(ProbeError) as caught:
        discover_models(client)
    assert (caught.value.kind, caught.value.code) == ("auth_failed", "invalid_api_key")


def test_discover_models_closed_port_is_unreachable(upstream_factory: UpstreamFactory) -> None:
    upstream = upstream_factory()
    base_url = upstream.base_url
    upstream.stop()
    client = UpstreamClient(base_url, "sk-x", retries=0, timeout=1.0)
    with pytest.raises(ProbeError) as caught:
        discover_models(client)
    assert caught.value.kind == "unreachable"
