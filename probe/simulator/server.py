"""An OpenAI-compatible upstream on ``http.server`` for tests and the demo (ARCHITECTURE §12).

It behaves like the providers the probe meets: ``GET /v1/models``, ``POST /v1/chat/completions``
(JSON or SSE ``data: {chunk}`` lines ending with ``data: [DONE]``), ``POST /v1/responses``
(the Responses API shape, streaming ``response.output_text.delta`` … ``response.completed``, or
unsupported with 403/404/405) and, when enabled, ``POST /v1/messages`` (Anthropic shape,
non-stream). Errors use the OpenAI envelope ``{"error": {"message", "type", "param", "code"}}``
(Anthropic's on ``/v1/messages``): a wrong key is 401 ``invalid_api_key``, an unknown model 404
``model_not_found``.

Behaviour lives in a mutable ``UpstreamConfig`` read per request. Every request is recorded
(``requests``) with its body and whether it was authorised — never the key itself.
Unauthenticated control endpoints for other processes (loopback use only):
``GET|PATCH /__sim/config``, ``POST /__sim/faults``, ``GET|DELETE /__sim/requests``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn
from urllib.parse import unquote

from probe.simulator.config import Fault, SimModel, UpstreamConfig

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/__sim/"
MIN_RESPONSES_OUTPUT_TOKENS = 16


@dataclass
class RecordedRequest:
    method: str
    path: str
    body: Any
    model: str | None
    stream: bool
    authorized: bool
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 0  # 0 until answered (or when the connection was dropped)


class _Abort(Exception):
    """Stop handling: the answer (or the deliberate silence) has been produced."""


class UpstreamSimulator:
    """One simulated upstream on ``host:port`` (0 = an ephemeral port); start() then use."""

    def __init__(
        self, config: UpstreamConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config or UpstreamConfig()
        self._host, self._port = host, port
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._counter = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> UpstreamSimulator:
        if self._server is not None:
            return self
        server = ThreadingHTTPServer((self._host, self._port), _Handler)
        server.daemon_threads = True
        server.simulator = self  # type: ignore[attr-defined]
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"upstream-sim-{self.config.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers held by latency or a timeout fault
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> UpstreamSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The root URL (``http://127.0.0.1:<port>``)."""
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an operator pastes: the root plus ``/v1``."""
        return f"{self.url}/v1"

    @property
    def api_key(self) -> str | None:
        return self.config.api_key

    # --- runtime control ----------------------------------------------------------------------

    def fail_next(
        self,
        times: int = 1,
        *,
        path: str = "*",
        status: int = 500,
        mode: str = "status",
        model: str | None = None,
        retry_after: float | None = None,
    ) -> Fault:
        """Make the next ``times`` requests on ``path`` fail (see ``Fault``)."""
        return self.add_fault(
            Fault(
                path=path,
                status=status,
                times=times,
                mode=mode,
                model=model,
                retry_after=retry_after,
            )
        )

    def add_fault(self, fault: Fault) -> Fault:
        with self._lock:
            self.config.faults.append(fault)
        return fault

    def configure(self, **changes: Any) -> None:
        with self._lock:
            self.config.update(changes)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        return [
            request
            for request in self.requests
            if request.path == path and (method is None or request.method == method)
        ]

    def clear_requests(self) -> None:
        """Forget the request log and reset ``max_in_flight``."""
        with self._lock:
            self._requests.clear()
            self._max_in_flight = self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The most upstream requests handled at the same time since the last clear."""
        with self._lock:
            return self._max_in_flight

    # --- used by the handler ------------------------------------------------------------------

    def _enter(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _take_fault(self, path: str, model: str | None) -> Fault | None:
        with self._lock:
            for fault in self.config.faults:
                if fault.matches(path, model):
                    fault.times -= 1
                    taken = Fault(**asdict(fault))
                    self.config.faults = [f for f in self.config.faults if f.times > 0]
                    return taken
        return None

    def _next_id(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)


# --- the HTTP handler -------------------------------------------------------------------------


def _error_body(message: str, etype: str, code: str | None, param: Any = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


_FAULT_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Bad request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to access this resource.", "permission_error", "forbidden"),
    404: ("Not found.", "invalid_request_error", "not_found"),
    429: ("Rate limit reached for requests. Please try again later.", "requests", None),
    500: ("The server had an error while processing your request.", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
    504: ("Gateway timeout.", "server_error", None),
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "upstream-simulator/1.0"
    timeout = 10  # idle keep-alive connections do not pin a thread for ever
    # Headers and body go out in separate writes; without this, Nagle + delayed ACK add ~40 ms.
    disable_nagle_algorithm = True

    @property
    def sim(self) -> UpstreamSimulator:
        return self.server.simulator  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("upstream-sim %s: " + format, self.sim.config.name, *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # --- plumbing -----------------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        raw = self._read_body()
        try:
            if path.startswith(CONTROL_PREFIX):
                self._control(method, path, raw)
            else:
                self._upstream(method, path, raw)
        except _Abort:
            pass
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout fired)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
        self._status = status

    def _start_sse(self) -> None:
        # No length and no chunking: the stream ends when the connection closes, as many
        # providers do; HTTP/1.1 clients read until EOF.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self._status = 200

    def _sse(self, data: Any, event: str | None = None) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        frame = (f"event: {event}\n" if event else "") + f"data: {text}\n\n"
        self.wfile.write(frame.encode())
        self.wfile.flush()

    def _fail(
        self, status: int, message: str, etype: str, code: str | None, param: Any = None
    ) -> NoReturn:
        self._send_json(status, _error_body(message, etype, code, param))
        raise _Abort

    # --- control endpoints --------------------------------------------------------------------

    def _control(self, method: str, path: str, raw: bytes) -> None:
        body = _json_or_none(raw)
        try:
            if path == "/__sim/config" and method == "GET":
                self._send_json(200, self.sim.config.to_dict())
            elif path == "/__sim/config" and method in ("PATCH", "POST"):
                self.sim.configure(**(body or {}))
                self._send_json(200, self.sim.config.to_dict())
            elif path == "/__sim/faults" and method == "POST":
                fault = self.sim.add_fault(Fault.from_dict(body or {}))
                self._send_json(201, asdict(fault))
            elif path == "/__sim/requests" and method == "GET":
                self._send_json(200, [asdict(request) for request in self.sim.requests])
            elif path == "/__sim/requests" and method == "DELETE":
                self.sim.clear_requests()
                self._send_json(200, [])
            else:
                self._fail(404, f"Invalid URL ({method} {path})", "invalid_request_error", None)
        except (TypeError, ValueError) as exc:
            self._fail(400, str(exc), "invalid_request_error", None)

    # --- the upstream -------------------------------------------------------------------------

    def _upstream(self, method: str, path: str, raw: bytes) -> None:
        config = self.sim.config
        body = _json_or_none(raw)
        model = body.get("model") if isinstance(body, dict) else None
        stream = bool(body.get("stream")) if isinstance(body, dict) else False
        authorized = self._authorized(config.api_key)
        record = RecordedRequest(
            method=method,
            path=path,
            body=body if body is not None else raw.decode(errors="replace"),
            model=model if isinstance(model, str) else None,
            stream=stream,
            authorized=authorized,
            headers=_masked_headers(dict(self.headers.items())),
        )
        self._status = 0
        self.sim._enter(record)
        try:
            self.sim._wait(config.latency)
            fault = self.sim._take_fault(path, record.model)
            if fault is not None:
                self._inject(fault)
            if not authorized:
                self._unauthorized(path)
            self._route(method, path, body, config)
        finally:
            record.status = self._status
            self.sim._leave()

    def _authorized(self, api_key: str | None) -> bool:
        if not api_key:
            return True
        bearer = self.headers.get("Authorization", "")
        return bearer == f"Bearer {api_key}" or self.headers.get("x-api-key") == api_key

    def _unauthorized(self, path: str) -> NoReturn:
        if path == "/v1/messages":
            self._send_json(
                401,
                {
                    "type": "error",
                    "error": {"type": "authentication_error", "message": "invalid x-api-key"},
                },
            )
            raise _Abort
        self._fail(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")

    def _inject(self, fault: Fault) -> None:
        if fault.mode == "timeout":
            self.sim._wait(self.sim.config.hang_seconds)
            self.close_connection = True
            self._fail(504, "Gateway timeout.", "server_error", None)
        if fault.mode == "disconnect":
            self.close_connection = True
            raise _Abort
        if fault.mode == "garbage":
            payload = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self._status = 200
            raise _Abort
        message, etype, code = _FAULT_ERRORS.get(
            fault.status, ("Simulated failure.", "server_error", None)
        )
        if fault.status == 429:
            code = "rate_limit_exceeded"
        headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
        self._send_json(fault.status, _error_body(message, etype, code), headers)
        raise _Abort

    def _route(self, method: str, path: str, body: Any, config: UpstreamConfig) -> None:
        if method == "GET" and path == "/v1/models":
            self._list_models(config)
        elif method == "GET" and path.startswith("/v1/models/"):
            name = unquote(path.removeprefix("/v1/models/"))
            model = config.model(name)
            if model is None:
                self._model_not_found(name)
            self._send_json(200, _model_object(model))
        elif method == "POST" and path in ("/v1/chat/completions", "/v1/responses", "/v1/messages"):
            if not isinstance(body, dict):
                self._fail(
                    400,
                    "We could not parse the JSON body of your request.",
                    "invalid_request_error",
                    None,
                )
            handler = {
                "/v1/chat/completions": self._chat,
                "/v1/responses": self._responses,
                "/v1/messages": self._messages,
            }[path]
            handler(body, config)
        else:
            self._fail(404, f"Invalid URL ({method} {path})", "invalid_request_error", None)

    def _list_models(self, config: UpstreamConfig) -> None:
        objects = [_model_object(model) for model in config.models]
        shape = config.models_shape
        if shape == "non_json":
            payload = b"<html><body>models</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self._status = 200
        elif shape == "bare_list":
            self._send_json(200, [model.id for model in config.models])
        elif shape == "models_key":
            self._send_json(200, {"models": objects})
        elif shape == "empty":
            self._send_json(200, {"object": "list", "data": []})
        else:
            self._send_json(200, {"object": "list", "data": objects})

    def _model_not_found(self, model: Any) -> NoReturn:
        self._fail(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        )

    def _require_model(self, body: dict[str, Any], config: UpstreamConfig) -> SimModel:
        name = body.get("model")
        if not isinstance(name, str) or not name:
            self._fail(
                400, "you must provide a model parameter", "invalid_request_error", None, "model"
            )
        model = config.model(name)
        if model is None:
            self._model_not_found(name)
        return model

    # --- chat completions ---------------------------------------------------------------------

    def _chat(self, body: dict[str, Any], config: UpstreamConfig) -> None:
        model = self._require_model(body, config)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            self._fail(
                400, "'messages' is a required property", "invalid_request_error", None, "messages"
            )
        tools = body.get("tools") or []
        if tools and not model.tools:
            self._fail(
                400,
                f"Model {model.id} does not support tools.",
                "invalid_request_error",
                "unsupported_parameter",
                "tools",
            )
        if body.get("stream") and not model.stream:
            self._fail(
                400,
                f"Model {model.id} does not support streaming.",
                "invalid_request_error",
                "unsupported_parameter",
                "stream",
            )
        limit = _token_limit(body, "max_tokens", "max_completion_tokens")
        words, truncated = _reply_words(model.reply, limit)
        tool_name = _tool_name(tools) if body.get("tool_choice") != "none" else None
        finish = "tool_calls" if tool_name else "length" if truncated else "stop"
        ident = f"chatcmpl-sim-{self.sim._next_id()}"
        created = int(time.time())
        if body.get("stream"):
            self._chat_stream(ident, created, model, words, tool_name, finish)
            return
        message: dict[str, Any] = {"role": "assistant", "content": "".join(words)}
        if model.reasoning:
            message["reasoning_content"] = "The user asks for a short confirmation."
        if tool_name:
            message["content"] = None
            message["tool_calls"] = [_tool_call(ident, tool_name)]
        usage = {"prompt_tokens": 9, "completion_tokens": len(words)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        self._send_json(
            200,
            {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": model.id,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            },
        )

    def _chat_stream(
        self,
        ident: str,
        created: int,
        model: SimModel,
        words: list[str],
        tool_name: str | None,
        finish: str,
    ) -> None:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model.id,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }

        self._start_sse()
        self._sse(chunk({"role": "assistant", "content": ""}))
        if model.reasoning:
            self._sse(chunk({"reasoning_content": "The user asks for a short confirmation."}))
        if tool_name:
            self._sse(chunk({"tool_calls": [{"index": 0, **_tool_call(ident, tool_name)}]}))
        else:
            for word in words:
                self._sse(chunk({"content": word}))
        self._sse(chunk({}, finish))
        self._sse("[DONE]")

    # --- responses API ------------------------------------------------------------------------

    def _responses(self, body: dict[str, Any], config: UpstreamConfig) -> None:
        if config.responses_status is not None:
            status = int(config.responses_status)
            if status == 403:
                self._fail(
                    403,
                    "This endpoint is not enabled for your account.",
                    "permission_error",
                    "forbidden",
                )
            message = "Invalid URL (POST /v1/responses)" if status == 404 else "Not allowed."
            self._fail(status, message, "invalid_request_error", None)
        model = self._require_model(body, config)
        if "input" not in body:
            self._fail(400, "Missing required parameter: 'input'.", "invalid_request_error", None)
        limit = _token_limit(body, "max_output_tokens")
        if limit is not None and limit < MIN_RESPONSES_OUTPUT_TOKENS:
            self._fail(
                400,
                "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
                f"{MIN_RESPONSES_OUTPUT_TOKENS}, but got {limit} instead.",
                "invalid_request_error",
                "integer_below_min_value",
                "max_output_tokens",
            )
        number = self.sim._next_id()
        words, truncated = _reply_words(model.reply, limit)
        tool_name = _tool_name(body.get("tools") or []) if model.tools else None
        response = _response_object(number, model, "".join(words), tool_name, truncated)
        if not body.get("stream"):
            self._send_json(200, response)
            return
        self._start_sse()
        for event in _response_events(number, response, words):
            self._sse(event, event=event["type"])

    # --- anthropic messages -------------------------------------------------------------------

    def _messages(self, body: dict[str, Any], config: UpstreamConfig) -> None:
        def anthropic_error(status: int, etype: str, message: str) -> NoReturn:
            self._send_json(status, {"type": "error", "error": {"type": etype, "message": message}})
            raise _Abort

        if not config.anthropic_messages:
            self._fail(404, "Invalid URL (POST /v1/messages)", "invalid_request_error", None)
        model = config.model(body.get("model"))
        if model is None:
            anthropic_error(404, "not_found_error", f"model: {body.get('model')}")
        if not isinstance(body.get("max_tokens"), int):
            anthropic_error(400, "invalid_request_error", "max_tokens: Field required")
        if body.get("stream"):
            anthropic_error(
                400, "invalid_request_error", "stream: not implemented by the simulator"
            )
        words, truncated = _reply_words(model.reply, body["max_tokens"])
        self._send_json(
            200,
            {
                "id": f"msg_sim_{self.sim._next_id()}",
                "type": "message",
                "role": "assistant",
                "model": model.id,
                "content": [{"type": "text", "text": "".join(words)}],
                "stop_reason": "max_tokens" if truncated else "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 9, "output_tokens": len(words)},
            },
        )


# --- payload helpers ----------------------------------------------------------------------------


def _json_or_none(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _masked_headers(headers: dict[str, str]) -> dict[str, str]:
    secret = {"authorization", "x-api-key"}
    return {name: ("***" if name.lower() in secret else value) for name, value in headers.items()}


def _model_object(model: SimModel) -> dict[str, Any]:
    return {"id": model.id, "object": "model", "created": 1_700_000_000, "owned_by": "simulator"}


def _token_limit(body: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _reply_words(reply: str, limit: int | None) -> tuple[list[str], bool]:
    """The reply as stream-sized pieces ("Hello", " world"), cut to ``limit`` "tokens"."""
    parts = reply.split(" ")
    words = [part if index == 0 else f" {part}" for index, part in enumerate(parts)]
    if limit is not None and 0 <= limit < len(words):
        return words[:limit], True
    return words, False


def _tool_name(tools: list[Any]) -> str | None:
    for tool in tools:
        if isinstance(tool, dict):
            function = tool.get("function") if isinstance(tool.get("function"), dict) else tool
            if isinstance(function.get("name"), str):
                return function["name"]
    return None


def _tool_call(ident: str, name: str) -> dict[str, Any]:
    return {
        "id": f"call_{ident}",
        "type": "function",
        "function": {"name": name, "arguments": "{}"},
    }


def _response_object(
    number: int, model: SimModel, text: str, tool_name: str | None, truncated: bool
) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    if model.reasoning:
        output.append({"type": "reasoning", "id": f"rs_sim_{number}", "summary": []})
    if tool_name:
        output.append(
            {
                "type": "function_call",
                "id": f"fc_sim_{number}",
                "call_id": f"call_sim_{number}",
                "name": tool_name,
                "arguments": "{}",
                "status": "completed",
            }
        )
    else:
        output.append(
            {
                "type": "message",
                "id": f"msg_sim_{number}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )
    words = len(text.split()) if text else 0
    return {
        "id": f"resp_sim_{number}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if truncated else "completed",
        "model": model.id,
        "output": output,
        "usage": {"input_tokens": 9, "output_tokens": words, "total_tokens": 9 + words},
    }


def _response_events(
    number: int, response: dict[str, Any], words: list[str]
) -> Iterator[dict[str, Any]]:
    """The Responses API event sequence for one message (or function call) item."""
    sequence = iter(range(1_000_000))
    pending = {**response, "status": "in_progress", "output": []}
    yield {"type": "response.created", "sequence_number": next(sequence), "response": pending}
    yield {"type": "response.in_progress", "sequence_number": next(sequence), "response": pending}
    for index, item in enumerate(response["output"]):
        started = {**item, "status": "in_progress"}
        if item["type"] == "message":
            started["content"] = []
        yield {
            "type": "response.output_item.added",
            "sequence_number": next(sequence),
            "output_index": index,
            "item": started,
        }
        if item["type"] == "message":
            part = {"type": "output_text", "text": "", "annotations": []}
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            yield {
                "type": "response.content_part.added",
                "sequence_number": next(sequence),
                **where,
                "part": part,
            }
            for word in words:
                yield {
                    "type": "response.output_text.delta",
                    "sequence_number": next(sequence),
                    **where,
                    "delta": word,
                }
            text = item["content"][0]["text"]
            yield {
                "type": "response.output_text.done",
                "sequence_number": next(sequence),
                **where,
                "text": text,
            }
            yield {
                "type": "response.content_part.done",
                "sequence_number": next(sequence),
                **where,
                "part": {**part, "text": text},
            }
        yield {
            "type": "response.output_item.done",
            "sequence_number": next(sequence),
            "output_index": index,
            "item": item,
        }
    yield {"type": "response.completed", "sequence_number": next(sequence), "response": response}
