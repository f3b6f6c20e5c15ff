"""What the simulated host sends to an account's upstream ``base_url`` (§9.7), over real HTTP
(``httpx``; the transport is injectable through ``HostSimulator(upstream_transport=...)``).

* the [NEW] Responses probe on account create/update (§4.10),
* the account test stream (§4.7),
* gateway forwarding: raw Chat Completions passthrough, or Chat → Responses → Chat (§9.4).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import EventSource, SSEError

from hosts.simulator.rows import SimAccount

PROBE_TIMEOUT = 5.0


def endpoint(base_url: str, suffix: str) -> str:
    """``{base}/v1{suffix}``; a base already ending in ``/v1`` gets only the suffix ([NEW])."""
    base = (base_url or "https://api.openai.com").rstrip("/")
    return base + suffix if base.endswith("/v1") else f"{base}/v1{suffix}"


def _headers(account: SimAccount, *, stream: bool = False) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {account.credentials.get('api_key') or ''}"}
    if stream:
        headers["Accept"] = "text/event-stream"
    return headers


def probe_responses(client: httpx.Client, account: SimAccount) -> bool | None:
    """Non-streaming ``POST /v1/responses``: 404/405/501 → False, 2xx or other → True,
    network error → None (the key stays unwritten)."""
    mapped = sorted(v for v in account.model_mapping.values() if isinstance(v, str) and v)
    body = {
        "model": mapped[0] if mapped else "gpt-5.4",
        "input": "hi",
        "instructions": "Reply briefly.",
        "stream": False,
    }
    try:
        response = client.post(
            endpoint(account.credentials.get("base_url", ""), "/responses"),
            json=body,
            headers=_headers(account),
            timeout=PROBE_TIMEOUT,
        )
    except httpx.HTTPError:
        return None
    return response.status_code not in (404, 405, 501)


def _sse_payloads(response: httpx.Response) -> Iterator[Any]:
    """The JSON data of each event up to ``[DONE]``; undecodable data is skipped, and a body
    that is no event stream has no events."""
    try:
        for event in EventSource(response).iter_sse():
            if event.data.strip() == "[DONE]":
                return
            try:
                yield json.loads(event.data)
            except ValueError:
                continue
    except SSEError:
        return


def account_test_events(
    client: httpx.Client, account: SimAccount, model: str, *, use_chat: bool
) -> Iterator[dict[str, Any]]:
    """Events after ``test_start``: content deltas, then ``test_complete`` or ``error``.
    Also yields ``{"type": "_status", "status": n}`` first so the caller can mark errors."""
    if use_chat:
        url = endpoint(account.credentials.get("base_url", ""), "/chat/completions")
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
        }
    else:
        url = endpoint(account.credentials.get("base_url", ""), "/responses")
        body = {
            "model": model,
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
            "instructions": "You are a connectivity test.",
            "stream": True,
        }
    try:
        with client.stream(
            "POST", url, json=body, headers=_headers(account, stream=True)
        ) as response:
            yield {"type": "_status", "status": response.status_code}
            if response.status_code != 200:
                text = response.read().decode("utf-8", "replace")[:200]
                yield {"type": "error", "error": f"API returned {response.status_code}: {text}"}
                return
            if "text/event-stream" not in response.headers.get("content-type", ""):
                data = json.loads(response.read() or b"{}")
                text = chat_text(data) if use_chat else responses_text(data)
                if text:
                    yield {"type": "content", "text": text}
                yield {"type": "test_complete", "success": True}
                return
            for event in _sse_payloads(response):
                if not isinstance(event, Mapping):
                    continue
                if use_chat:
                    for choice in event.get("choices") or []:
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            yield {"type": "content", "text": delta}
                elif event.get("type") == "response.output_text.delta" and event.get("delta"):
                    yield {"type": "content", "text": event["delta"]}
                elif event.get("type") == "error" or isinstance(event.get("error"), Mapping):
                    error = event.get("error") or {}
                    yield {"type": "error", "error": str(error.get("message") or "stream error")}
                    return
                elif event.get("type") == "response.completed":
                    break
            yield {"type": "test_complete", "success": True}
    except (httpx.HTTPError, ValueError) as exc:
        yield {"type": "error", "error": f"Request failed: {type(exc).__name__}"}


def chat_text(data: Any) -> str:
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return ""
    return content if isinstance(content, str) else ""


def responses_text(data: Any) -> str:
    if not isinstance(data, Mapping):
        return ""
    if isinstance(data.get("output_text"), str):
        return data["output_text"]
    parts = []
    for item in data.get("output") or []:
        for content in (item.get("content") or []) if isinstance(item, Mapping) else []:
            if isinstance(content, Mapping) and content.get("type") == "output_text":
                parts.append(str(content.get("text") or ""))
    return "".join(parts)


@dataclass
class Forwarded:
    """An upstream answer to relay: status, body and content type (stream when piped)."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    stream: Iterator[bytes] | None = None


def _pipe(response: httpx.Response) -> Iterator[bytes]:
    try:
        yield from response.iter_raw()
    finally:
        response.close()


def forward_chat(
    client: httpx.Client, account: SimAccount, body: dict[str, Any], *, passthrough: bool
) -> Forwarded:
    """Send a chat request (model already mapped) to the account's upstream."""
    if passthrough:
        url = endpoint(account.credentials.get("base_url", ""), "/chat/completions")
        request = client.build_request("POST", url, json=body, headers=_headers(account))
        response = client.send(request, stream=True)
        ctype = response.headers.get("content-type", "application/json")
        if response.status_code == 200 and "text/event-stream" in ctype:
            return Forwarded(200, content_type=ctype, stream=_pipe(response))
        try:
            return Forwarded(response.status_code, response.read(), ctype)
        finally:
            response.close()
    return _via_responses(client, account, body)


def forward_responses(client: httpx.Client, account: SimAccount, body: dict[str, Any]) -> Forwarded:
    """A Responses request (model already mapped) to the account's upstream, as it is."""
    url = endpoint(account.credentials.get("base_url", ""), "/responses")
    request = client.build_request(
        "POST", url, json=body, headers=_headers(account, stream=bool(body.get("stream")))
    )
    response = client.send(request, stream=True)
    ctype = response.headers.get("content-type", "application/json")
    if response.status_code == 200 and "text/event-stream" in ctype:
        return Forwarded(200, content_type=ctype, stream=_pipe(response))
    try:
        return Forwarded(response.status_code, response.read(), ctype)
    finally:
        response.close()


def chat_request_from_messages(body: dict[str, Any]) -> dict[str, Any]:
    """Anthropic Messages request → Chat Completions request (text content only)."""
    chat_messages = []
    system = body.get("system")
    if system:
        chat_messages.append({"role": "system", "content": _anthropic_text(system)})
    for message in body.get("messages") or []:
        chat_messages.append(
            {
                "role": message.get("role", "user"),
                "content": _anthropic_text(message.get("content")),
            }
        )
    return {"model": body["model"], "messages": chat_messages, "max_tokens": body["max_tokens"]}


def _anthropic_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = [c.get("text", "") for c in content or [] if isinstance(c, Mapping)]
    return "".join(str(p) for p in parts)


def message_from_chat(completion: Mapping[str, Any], model: str) -> dict[str, Any]:
    """Chat completion → Anthropic message."""
    usage = completion.get("usage") or {}
    finish = (completion.get("choices") or [{}])[0].get("finish_reason")
    return {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": chat_text(completion)}],
        "stop_reason": "max_tokens" if finish == "length" else "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": usage.get("prompt_tokens", 0),
            "output_tokens": usage.get("completion_tokens", 0),
        },
    }


def _responses_tools(tools: Any) -> list[dict[str, Any]]:
    """Chat ``{"type":"function","function":{name,…}}`` → Responses ``{"type":"function",
    name,…}`` (the host keeps tools across the conversion, §13)."""
    converted = []
    for tool in tools if isinstance(tools, list) else []:
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(function, Mapping):
            converted.append({"type": "function", **function})
    return converted


def _responses_tool_choice(choice: Any) -> Any:
    if isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        return {"type": "function", "name": choice["function"].get("name")}
    return choice


def responses_request(body: dict[str, Any]) -> dict[str, Any]:
    """Chat Completions request → Responses request: every field but the message shape
    passes (tools and tool_choice converted, ``max_tokens`` → ``max_output_tokens``)."""
    instructions, inputs = [], []
    for message in body.get("messages") or []:
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content)
        if message.get("role") == "system":
            instructions.append(text)
        else:
            inputs.append({"role": message.get("role", "user"), "content": text})
    upstream_body: dict[str, Any] = {
        "model": body["model"],
        "input": inputs,
        "stream": bool(body.get("stream")),
    }
    if instructions:
        upstream_body["instructions"] = "\n".join(instructions)
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit:
        upstream_body["max_output_tokens"] = limit
    if body.get("tools"):
        upstream_body["tools"] = _responses_tools(body["tools"])
    if "tool_choice" in body:
        upstream_body["tool_choice"] = _responses_tool_choice(body["tool_choice"])
    for name in ("temperature", "top_p", "user", "metadata", "parallel_tool_calls"):
        if name in body:
            upstream_body[name] = body[name]
    return upstream_body


def _tool_calls(output: Any) -> list[dict[str, Any]]:
    calls = []
    for item in output if isinstance(output, list) else []:
        if isinstance(item, Mapping) and item.get("type") == "function_call":
            calls.append(
                {
                    "id": item.get("call_id") or item.get("id"),
                    "type": "function",
                    "function": {"name": item.get("name"), "arguments": item.get("arguments")},
                }
            )
    return calls


def _usage(data: Mapping[str, Any]) -> dict[str, int]:
    usage = data.get("usage") or {}
    return {
        "prompt_tokens": usage.get("input_tokens", 0),
        "completion_tokens": usage.get("output_tokens", 0),
        "total_tokens": usage.get("total_tokens", 0),
    }


def _via_responses(client: httpx.Client, account: SimAccount, body: dict[str, Any]) -> Forwarded:
    """Chat Completions → Responses API → Chat Completions; streamed when the client asked."""
    upstream_body = responses_request(body)
    url = endpoint(account.credentials.get("base_url", ""), "/responses")
    if upstream_body["stream"]:
        request = client.build_request(
            "POST", url, json=upstream_body, headers=_headers(account, stream=True)
        )
        response = client.send(request, stream=True)
        if response.status_code != 200:
            try:
                ctype = response.headers.get("content-type", "application/json")
                return Forwarded(response.status_code, response.read(), ctype)
            finally:
                response.close()
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return Forwarded(
            200,
            content_type="text/event-stream",
            stream=_chat_chunks(response, body["model"], include_usage=include_usage),
        )
    response = client.post(url, json=upstream_body, headers=_headers(account))
    if response.status_code != 200:
        ctype = response.headers.get("content-type", "application/json")
        return Forwarded(response.status_code, response.content, ctype)
    data = response.json()
    calls = _tool_calls(data.get("output"))
    message: dict[str, Any] = {"role": "assistant", "content": responses_text(data) or None}
    if calls:
        message["tool_calls"] = calls
    completion = {
        "id": "chatcmpl-" + uuid.uuid4().hex[:24],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data.get("model") or body["model"],
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if calls else _finish_reason(data),
            }
        ],
        "usage": _usage(data),
    }
    return Forwarded(200, json.dumps(completion).encode())


def _finish_reason(data: Mapping[str, Any]) -> str:
    return "length" if data.get("status") == "incomplete" else "stop"


def _chat_chunks(response: httpx.Response, model: str, *, include_usage: bool) -> Iterator[bytes]:
    """Responses stream events → chat completion chunks, as they arrive: text deltas, tool
    calls, the finish reason, and (``stream_options.include_usage``) a last usage chunk."""
    ident, created = "chatcmpl-" + uuid.uuid4().hex[:24], int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        payload = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(payload)}\n\n".encode()

    try:
        yield chunk({"role": "assistant", "content": ""})
        calls = 0
        for event in _sse_payloads(response):
            kind = event.get("type") if isinstance(event, Mapping) else None
            if kind == "response.output_text.delta":
                yield chunk({"content": event.get("delta", "")})
            elif kind == "response.output_item.done" and event["item"].get("type") == (
                "function_call"
            ):
                (call,) = _tool_calls([event["item"]])
                yield chunk({"tool_calls": [{"index": calls, **call}]})
                calls += 1
            elif kind in ("response.completed", "response.incomplete"):
                done = event.get("response") or {}
                yield chunk({}, "tool_calls" if calls else _finish_reason(done))
                if include_usage:
                    usage_chunk = {
                        "id": ident,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": _usage(done),
                    }
                    yield f"data: {json.dumps(usage_chunk)}\n\n".encode()
        yield b"data: [DONE]\n\n"
    finally:
        response.close()


def as_sse(completion: bytes) -> Iterator[bytes]:
    """Re-emit a complete chat completion as one streamed chunk plus ``[DONE]``."""
    data = json.loads(completion)
    choice = data["choices"][0]
    chunk = {
        "id": data.get("id"),
        "object": "chat.completion.chunk",
        "created": data.get("created"),
        "model": data.get("model"),
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": choice["message"]["content"]},
                "finish_reason": choice.get("finish_reason"),
            }
        ],
    }
    yield f"data: {json.dumps(chunk)}\n\n".encode()
    yield b"data: [DONE]\n\n"
