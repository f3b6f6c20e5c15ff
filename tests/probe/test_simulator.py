from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from probe.simulator import Fault, SimModel, UpstreamConfig, UpstreamSimulator
from tests.fixtures_upstream import UpstreamFactory

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def http(upstream: UpstreamSimulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {upstream.api_key}"}
    with httpx.Client(base_url=upstream.url, headers=headers, timeout=2.0) as client:
        yield client


def chat(model: str = "kimi-k2.6", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


def test_simulator_lists_models_in_openai_shape(http: httpx.Client) -> None:
    body = http.get("/v1/models").json()
    assert body["object"] == "list"
    assert [model["id"] for model in body["data"]] == ["kimi-k2.6", "deepseek-chat"]
    assert http.get("/v1/models/deepseek-chat").json()["id"] == "deepseek-chat"


def test_simulator_wrong_key_gets_the_openai_401_envelope(upstream: UpstreamSimulator) -> None:
    response = httpx.get(f"{upstream.base_url}/models", headers={"Authorization": "Bearer sk-no"})
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")
    assert upstream.requests[-1].authorized is False


def test_simulator_unknown_model_is_404_model_not_found(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=chat("kimi-k9"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


def test_simulator_chat_completion_shape(http: httpx.Client) -> None:
    body = http.post("/v1/chat/completions", json=chat(max_tokens=8)).json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "OK"}
    assert body["choices"][0]["finish_reason"] == "stop"


def test_simulator_chat_honours_max_tokens(upstream: UpstreamSimulator, http: httpx.Client) -> None:
    upstream.config.set_models([SimModel("kimi-k2.6", reply="Hello there from the simulator")])
    body = http.post("/v1/chat/completions", json=chat(max_tokens=2)).json()
    assert body["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "Hello there"},
        "finish_reason": "length",
    }


def test_simulator_chat_stream_is_sse_ending_with_done(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=chat(stream=True))
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in response.text.splitlines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "OK"


def test_simulator_stream_frames_leave_in_one_write(
    http: httpx.Client, socket_writes: list[bytes]
) -> None:
    writes = socket_writes
    response = http.post(
        "/v1/responses", json={"model": "kimi-k2.6", "input": "hi", "stream": True}
    )
    head, frames = writes
    assert head.startswith(b"HTTP/1.1 200 ") and frames == response.content
    assert frames.count(b"event: ") > 3 and frames.endswith(b"\n\n")


def test_simulator_tools_and_stream_support_per_model(
    upstream: UpstreamSimulator, http: httpx.Client
) -> None:
    tool = {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}
    upstream.config.set_models([SimModel("a"), SimModel("b", stream=False, tools=False)])
    called = http.post("/v1/chat/completions", json=chat("a", tools=[tool])).json()
    assert called["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "now"
    refused = http.post("/v1/chat/completions", json=chat("b", tools=[tool]))
    assert (refused.status_code, refused.json()["error"]["param"]) == (400, "tools")
    no_stream = http.post("/v1/chat/completions", json=chat("b", stream=True))
    assert (no_stream.status_code, no_stream.json()["error"]["param"]) == (400, "stream")


def test_simulator_reasoning_model_carries_reasoning_content(
    upstream: UpstreamSimulator, http: httpx.Client
) -> None:
    upstream.configure(models=[{"id": "deepseek-reasoner", "reasoning": True}])
    body = http.post("/v1/chat/completions", json=chat("deepseek-reasoner")).json()
    assert body["choices"][0]["message"]["reasoning_content"]


def test_simulator_responses_api_shape(http: httpx.Client) -> None:
    body = http.post("/v1/responses", json={"model": "kimi-k2.6", "input": "hi"}).json()
    assert (body["object"], body["status"]) == ("response", "completed")
    assert body["output"][0]["content"][0] == {
        "type": "output_text",
        "text": "OK",
        "annotations": [],
    }


def test_simulator_responses_refuses_tiny_max_output_tokens(http: httpx.Client) -> None:
    payload = {"model": "kimi-k2.6", "input": "hi", "max_output_tokens": 8}
    response = http.post("/v1/responses", json=payload)
    assert (response.status_code, response.json()["error"]["code"]) == (
        400,
        "integer_below_min_value",
    )


def test_simulator_responses_stream_events(http: httpx.Client) -> None:
    payload = {"model": "kimi-k2.6", "input": "hi", "stream": True}
    text = http.post("/v1/responses", json=payload).text
    events = [line.removeprefix("event: ") for line in text.splitlines() if line.startswith("ev")]
    assert events[0] == "response.created"
    assert "response.output_text.delta" in events
    assert events[-1] == "response.completed"
    assert "[DONE]" not in text


@pytest.mark.parametrize("status", [403, 404, 405])
def test_simulator_responses_can_be_unsupported(
    upstream: UpstreamSimulator, http: httpx.Client, status: int
) -> None:
    upstream.config.responses_status = status
    response = http.post("/v1/responses", json={"model": "kimi-k2.6", "input": "hi"})
    assert response.status_code == status
    assert "message" in response.json()["error"]


def test_simulator_anthropic_messages(upstream: UpstreamSimulator, http: httpx.Client) -> None:
    payload = {"model": "kimi-k2.6", "max_tokens": 1, "messages": [{"role": "user", "content": ""}]}
    assert http.post("/v1/messages", json=payload).status_code == 404
    upstream.config.anthropic_messages = True
    body = http.post("/v1/messages", json=payload).json()
    assert (body["type"], body["stop_reason"]) == ("message", "end_turn")


def test_simulator_fail_next_n_requests_on_a_path(
    upstream: UpstreamSimulator, http: httpx.Client
) -> None:
    upstream.fail_next(2, path="/v1/chat/completions", status=429, retry_after=1)
    statuses = [http.post("/v1/chat/completions", json=chat()).status_code for _ in range(3)]
    assert http.get("/v1/models").status_code == 200
    assert statuses == [429, 429, 200]
    assert upstream.config.faults == []


def test_simulator_fault_error_bodies_use_the_envelope(
    upstream: UpstreamSimulator, http: httpx.Client
) -> None:
    upstream.fail_next(1, status=429, retry_after=2)
    upstream.fail_next(1, status=500)
    limited = http.get("/v1/models")
    failed = http.get("/v1/models")
    assert (limited.headers["retry-after"], limited.json()["error"]["code"]) == (
        "2",
        "rate_limit_exceeded",
    )
    assert failed.json()["error"]["type"] == "server_error"


def test_simulator_fault_for_one_model_only(
    upstream: UpstreamSimulator, http: httpx.Client
) -> None:
    upstream.fail_next(1, model="deepseek-chat", status=500)
    assert http.post("/v1/chat/completions", json=chat("kimi-k2.6")).status_code == 200
    assert http.post("/v1/chat/completions", json=chat("deepseek-chat")).status_code == 500


def test_simulator_timeout_fault_outlasts_the_client(
    upstream: UpstreamSimulator, http: httpx.Client
) -> None:
    upstream.fail_next(1, mode="timeout")
    with pytest.raises(httpx.ReadTimeout):
        http.get("/v1/models", timeout=0.2)
    started = time.monotonic()
    upstream.stop()
    assert time.monotonic() - started < 2


def test_simulator_disconnect_and_garbage_faults(
    upstream: UpstreamSimulator, http: httpx.Client
) -> None:
    upstream.fail_next(1, mode="disconnect")
    with pytest.raises(httpx.RemoteProtocolError):
        http.get("/v1/models")
    upstream.fail_next(1, mode="garbage")
    response = http.get("/v1/models")
    assert (response.status_code, response.headers["content-type"]) == (200, "text/html")


def test_simulator_latency_is_applied(upstream_factory: UpstreamFactory) -> None:
    upstream = upstream_factory(latency=0.15)
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {upstream.api_key}"}
    httpx.get(f"{upstream.base_url}/models", headers=headers)
    assert time.monotonic() - started >= 0.15


def test_simulator_request_log_has_bodies_but_never_the_key(
    upstream: UpstreamSimulator, http: httpx.Client
) -> None:
    http.post("/v1/chat/completions", json=chat(stream=True))
    (request,) = upstream.requests_to("/v1/chat/completions", "POST")
    assert (request.model, request.stream, request.authorized, request.status) == (
        "kimi-k2.6",
        True,
        True,
        200,
    )
    assert request.body["messages"][0]["content"] == "hi"
    assert str(upstream.api_key) not in json.dumps(request.headers)
    upstream.clear_requests()
    assert upstream.requests == []


def test_simulator_models_shapes(upstream: UpstreamSimulator, http: httpx.Client) -> None:
    upstream.config.models_shape = "empty"
    assert http.get("/v1/models").json() == {"object": "list", "data": []}
    upstream.config.models_shape = "bare_list"
    assert http.get("/v1/models").json() == ["kimi-k2.6", "deepseek-chat"]
    upstream.config.models_shape = "non_json"
    assert http.get("/v1/models").headers["content-type"] == "text/html"


def test_simulator_control_endpoints(upstream: UpstreamSimulator) -> None:
    with httpx.Client(base_url=upstream.url, timeout=2.0) as control:
        patched = control.patch("/__sim/config", json={"models": ["glm-4.5"], "api_key": None})
        control.post("/__sim/faults", json={"path": "/v1/models", "status": 503})
        assert control.get("/v1/models").status_code == 503
        assert control.get("/v1/models").json()["data"][0]["id"] == "glm-4.5"
        log = control.get("/__sim/requests").json()
        assert control.patch("/__sim/config", json={"bogus": 1}).status_code == 400
    assert patched.json()["models"][0]["id"] == "glm-4.5"
    assert [entry["status"] for entry in log] == [503, 200]


def test_simulator_config_from_dict_round_trips() -> None:
    config = UpstreamConfig.from_dict(
        {"name": "kimi", "models": ["kimi-k2.6", {"id": "k", "tools": False}], "port": 1}
    )
    config.faults.append(Fault(path="/v1/models", status=500))
    assert UpstreamConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="fault mode"):
        Fault(mode="explode")


def test_simulator_several_upstreams_run_side_by_side(upstream_factory: UpstreamFactory) -> None:
    first = upstream_factory(["a"], api_key=None)
    second = upstream_factory(["b"], api_key=None)
    assert first.port != second.port
    assert httpx.get(f"{first.base_url}/models").json()["data"][0]["id"] == "a"
    assert httpx.get(f"{second.base_url}/models").json()["data"][0]["id"] == "b"


def test_simulator_context_manager_stops_the_server() -> None:
    with UpstreamSimulator(UpstreamConfig(api_key=None)) as simulator:
        url = f"{simulator.base_url}/models"
        assert httpx.get(url).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=1.0)


def run_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "probe.simulator", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_cli(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(timeout=5)


def test_simulator_cli_prints_its_url_and_serves() -> None:
    process = run_cli("--port", "0", "--models", "a,b", "--key", "sk-x", "--responses", "404")
    try:
        name, base_url = process.stdout.readline().split()  # type: ignore[union-attr]
        models = httpx.get(f"{base_url}/models", headers={"Authorization": "Bearer sk-x"})
        responses = httpx.post(
            f"{base_url}/responses",
            json={"model": "a", "input": "hi"},
            headers={"Authorization": "Bearer sk-x"},
        )
    finally:
        stop_cli(process)
    assert name == "upstream"
    assert [model["id"] for model in models.json()["data"]] == ["a", "b"]
    assert responses.status_code == 404
    assert process.returncode == 0


def test_simulator_cli_config_file_starts_several_upstreams(tmp_path: Path) -> None:
    config = tmp_path / "upstreams.json"
    upstreams = [
        {"name": "kimi", "models": ["kimi-k2.6"], "api_key": None, "responses_status": 403},
        {"name": "deepseek", "models": [{"id": "deepseek-chat", "tools": False}]},
    ]
    config.write_text(json.dumps({"upstreams": upstreams}))
    process = run_cli("--config", str(config), "--json")
    try:
        rows = json.loads(process.stdout.readline())  # type: ignore[union-attr]
        kimi = httpx.get(f"{rows[0]['base_url']}/models").json()
        deepseek = httpx.get(f"{rows[1]['base_url']}/models")
    finally:
        stop_cli(process)
    assert [row["name"] for row in rows] == ["kimi", "deepseek"]
    assert rows[0]["port"] != rows[1]["port"]
    assert kimi["data"][0]["id"] == "kimi-k2.6"
    assert deepseek.status_code == 401


def test_simulator_cli_rejects_a_bad_config_file(tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"models_shape": "weird"}))
    process = run_cli("--config", str(config))
    _out, err = process.communicate(timeout=10)
    assert process.returncode == 2
    assert "models_shape" in err


def test_simulator_serves_a_model_whose_id_has_slashes(
    upstream: UpstreamSimulator, http: httpx.Client
) -> None:
    upstream.config.set_models([SimModel("deepseek-ai/DeepSeek-V3")])
    assert http.get("/v1/models/deepseek-ai/DeepSeek-V3").json()["id"] == "deepseek-ai/DeepSeek-V3"
    assert (
        http.get("/v1/models/deepseek-ai%2FDeepSeek-V3").json()["id"] == "deepseek-ai/DeepSeek-V3"
    )


def test_simulator_logs_a_dropped_answer_as_status_0_and_counts_it_out(
    upstream: UpstreamSimulator, http: httpx.Client
) -> None:
    upstream.fail_next(1, mode="disconnect")
    with pytest.raises(httpx.RemoteProtocolError):  # the hang-up comes after the bookkeeping
        http.get("/v1/models")
    assert [request.status for request in upstream.requests] == [0]
    upstream.clear_requests()
    assert upstream.max_in_flight == 0  # no longer in flight
