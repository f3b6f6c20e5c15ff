"""An OpenAI-compatible upstream for tests and the demo (ARCHITECTURE §12), route functions on
``relay_project.loopback_http`` like the host simulator: every route answers on its ``asyncio``
loop, the latency and a hang are waits of the loop, never a held thread.

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
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any
from urllib.parse import unquote

from probe.simulator.config import Fault, SimModel, UpstreamConfig
from relay_project.loopback_http import (
    Abort,
    After,
    Answer,
    LoopbackServer,
    OffLoop,
    Request,
    Response,
    Router,
    match,
)

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
        self._server: LoopbackServer | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> UpstreamSimulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = LoopbackServer(
            self.handle,
            host=self._host,
            port=self._port,
            name=f"upstream-sim-{self.config.name}",
            software="upstream-simulator/1.0",
            idle_timeout=10,  # idle keep-alive connections are closed, as providers close them
            on_loop=True,
        ).start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers held by latency or a timeout fault
        server.stop()

    def __enter__(self) -> UpstreamSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return self._server.address[1]

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

    # --- serving ------------------------------------------------------------------------------

    def handle(self, req: Request) -> Answer:
        """Answer one request (the server's app, on its loop). An upstream request is
        recorded and counted in flight until its answer is out; control requests are
        neither. The latency and a hang are waits on the loop (``After``): no route blocks."""
        call = Call(self, req, req.path.rstrip("/") or "/", _json_or_none(req.body))
        if call.path.startswith(CONTROL_PREFIX):
            return _control(call)
        record = RecordedRequest(
            method=req.method,
            path=call.path,
            body=call.body if call.body is not None else req.body.decode(errors="replace"),
            model=call.model,
            stream=bool(call.body.get("stream")) if isinstance(call.body, dict) else False,
            authorized=_authorized(req, self.config.api_key),
            headers=_masked_headers(dict(req.headers.items())),
        )
        self._enter(record)

        def sent(status: int) -> None:
            record.status = status
            self._leave()

        return _told(
            After(self._waited(self.config.latency), partial(_upstream, call, record)), sent
        )

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

    def _waited(self, seconds: float) -> float:
        """How long a wait of ``seconds`` lasts: none once the simulator stops."""
        return 0.0 if self._stopping.is_set() else max(seconds, 0.0)


@dataclass
class Call:
    """What a route function gets: the simulator, the request, its path (no trailing slash)
    and JSON body (None when absent or not JSON), and the path parameters."""

    sim: UpstreamSimulator
    req: Request
    path: str
    body: Any
    params: dict[str, str] = field(default_factory=dict)

    @property
    def config(self) -> UpstreamConfig:
        return self.sim.config

    @property
    def model(self) -> str | None:
        model = self.body.get("model") if isinstance(self.body, dict) else None
        return model if isinstance(model, str) else None

    def json_object(self) -> dict[str, Any]:
        if not isinstance(self.body, dict):
            raise openai_error(
                400, "We could not parse the JSON body of your request.", "invalid_request_error"
            )
        return self.body


# --- answers --------------------------------------------------------------------------------


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers or {},
    )


def _error_body(message: str, etype: str, code: str | None, param: Any = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


def openai_error(
    status: int, message: str, etype: str, code: str | None = None, param: Any = None
) -> Abort:
    """The OpenAI error envelope, to raise."""
    return Abort(json_response(_error_body(message, etype, code, param), status))


def anthropic_error(status: int, etype: str, message: str) -> Abort:
    return Abort(
        json_response({"type": "error", "error": {"type": etype, "message": message}}, status)
    )


def invalid_url(call: Call) -> Abort:
    return openai_error(
        404, f"Invalid URL ({call.req.method} {call.path})", "invalid_request_error"
    )


def _html(payload: bytes) -> Response:
    return Response(body=payload, content_type="text/html")


def _event_stream(frames: Iterator[bytes]) -> Response:
    """An SSE answer, made once the head is out. No frame waits on anything, so they leave
    together in one write: a write per frame cost a system call and a wake-up of the reader
    each, for the same bytes at the same moment."""
    return Response(
        content_type="text/event-stream; charset=utf-8",
        headers={"Cache-Control": "no-cache"},
        stream=_together(frames),
        stream_waits=False,
    )


def _together(frames: Iterator[bytes]) -> Iterator[bytes]:
    yield b"".join(frames)


def _sse(data: Any, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    return ((f"event: {event}\n" if event else "") + f"data: {text}\n\n").encode()


_FAULT_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Bad request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    # A key with no balance left, as Chinese providers (DeepSeek) answer it.
    402: ("Insufficient Balance", "unknown_error", "invalid_request_error"),
    403: ("You are not allowed to access this resource.", "permission_error", "forbidden"),
    404: ("Not found.", "invalid_request_error", "not_found"),
    429: ("Rate limit reached for requests. Please try again later.", "requests", None),
    500: ("The server had an error while processing your request.", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
    504: ("Gateway timeout.", "server_error", None),
}


# --- control endpoints ------------------------------------------------------------------------

control: Router[Call] = Router()


@control.route("GET", "/__sim/config")
def get_config(call: Call) -> Response:
    return json_response(call.config.to_dict())


@control.route("PATCH", "/__sim/config")
@control.route("POST", "/__sim/config")
def patch_config(call: Call) -> Response:
    call.sim.configure(**(call.body or {}))
    return json_response(call.config.to_dict())


@control.route("POST", "/__sim/faults")
def add_fault(call: Call) -> Response:
    fault = call.sim.add_fault(Fault.from_dict(call.body or {}))
    return json_response(asdict(fault), 201)


@control.route("GET", "/__sim/requests")
def list_requests(call: Call) -> Response:
    return json_response([asdict(request) for request in call.sim.requests])


@control.route("DELETE", "/__sim/requests")
def clear_requests(call: Call) -> Response:
    call.sim.clear_requests()
    return json_response([])


def _control(call: Call) -> Response:
    found = match(control.routes, call.req.method, call.path)
    if found is None:
        raise invalid_url(call)
    route, call.params = found
    try:
        return route.handler(call)
    except (TypeError, ValueError) as exc:
        raise openai_error(400, str(exc), "invalid_request_error") from None


# --- the upstream -----------------------------------------------------------------------------

upstream: Router[Call] = Router()


def _upstream(call: Call, record: RecordedRequest) -> Answer:
    """After the latency: an injected fault, the key check and the route, as a provider
    would."""
    fault = call.sim._take_fault(call.path, record.model)
    if fault is not None:
        return _injected(call, fault)
    if not record.authorized:
        raise _unauthorized(call.path)
    found = match(upstream.routes, call.req.method, call.path)
    if found is None:
        raise invalid_url(call)
    route, call.params = found
    return route.handler(call)


def _timed_out() -> Response:
    response = json_response(_error_body("Gateway timeout.", "server_error", None), 504)
    response.close = True
    return response


def _told(answer: Answer, sent: Callable[[int], None]) -> Answer:
    """``answer`` with ``sent`` told the status its response went out with (0: none),
    whenever that response comes; told 0 at once when making it fails."""
    if isinstance(answer, Response):
        answer.on_sent = sent
        return answer

    def then() -> Answer:
        try:
            produced = answer.then()
        except Abort as abort:
            produced = abort.response
        except BaseException:
            sent(0)
            raise
        return _told(produced, sent)

    if isinstance(answer, After):
        return After(answer.seconds, then)
    return OffLoop(then)


def _authorized(req: Request, api_key: str | None) -> bool:
    if not api_key:
        return True
    bearer = req.headers.get("Authorization", "")
    return bearer == f"Bearer {api_key}" or req.headers.get("x-api-key") == api_key


def _unauthorized(path: str) -> Abort:
    if path == "/v1/messages":
        return anthropic_error(401, "authentication_error", "invalid x-api-key")
    return openai_error(
        401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
    )


def _injected(call: Call, fault: Fault) -> Answer:
    if fault.mode == "timeout":
        return After(call.sim._waited(call.config.hang_seconds), _timed_out)
    if fault.mode == "disconnect":
        return Response.hang_up()
    if fault.mode == "garbage":
        return _html(b"<html><body><h1>502 Bad Gateway</h1></body></html>")
    message, etype, code = _FAULT_ERRORS.get(
        fault.status, ("Simulated failure.", "server_error", None)
    )
    if fault.status == 429:
        code = "rate_limit_exceeded"
    headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
    return json_response(_error_body(message, etype, code), fault.status, headers)


@upstream.route("GET", "/v1/models")
def list_models(call: Call) -> Response:
    config = call.config
    shape = config.models_shape
    if shape == "non_json":
        return _html(b"<html><body>models</body></html>")
    if shape == "bare_list":
        return json_response([model.id for model in config.models])
    objects = [_model_object(model) for model in config.models]
    if shape == "models_key":
        return json_response({"models": objects})
    if shape == "empty":
        return json_response({"object": "list", "data": []})
    return json_response({"object": "list", "data": objects})


@upstream.route("GET", "/v1/models/{name:path}")
def get_model(call: Call) -> Response:
    name = unquote(call.params["name"])
    model = call.config.model(name)
    if model is None:
        raise _model_not_found(name)
    return json_response(_model_object(model))


def _model_not_found(model: Any) -> Abort:
    return openai_error(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    )


def _require_model(call: Call, body: dict[str, Any]) -> SimModel:
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise openai_error(
            400, "you must provide a model parameter", "invalid_request_error", None, "model"
        )
    model = call.config.model(name)
    if model is None:
        raise _model_not_found(name)
    return model


# --- chat completions -----------------------------------------------------------------------


@upstream.route("POST", "/v1/chat/completions")
def chat_completions(call: Call) -> Response:
    body = call.json_object()
    model = _require_model(call, body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise openai_error(
            400, "'messages' is a required property", "invalid_request_error", None, "messages"
        )
    tools = body.get("tools") or []
    if tools and not model.tools:
        raise openai_error(
            400,
            f"Model {model.id} does not support tools.",
            "invalid_request_error",
            "unsupported_parameter",
            "tools",
        )
    if body.get("stream") and not model.stream:
        raise openai_error(
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
    ident = f"chatcmpl-sim-{call.sim._next_id()}"
    created = int(time.time())
    if body.get("stream"):
        return _event_stream(_chat_frames(ident, created, model, words, tool_name, finish))
    message: dict[str, Any] = {"role": "assistant", "content": "".join(words)}
    if model.reasoning:
        message["reasoning_content"] = "The user asks for a short confirmation."
    if tool_name:
        message["content"] = None
        message["tool_calls"] = [_tool_call(ident, tool_name)]
    usage = {"prompt_tokens": 9, "completion_tokens": len(words)}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return json_response(
        {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": model.id,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }
    )


def _chat_frames(
    ident: str,
    created: int,
    model: SimModel,
    words: list[str],
    tool_name: str | None,
    finish: str,
) -> Iterator[bytes]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return _sse(
            {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model.id,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
        )

    yield chunk({"role": "assistant", "content": ""})
    if model.reasoning:
        yield chunk({"reasoning_content": "The user asks for a short confirmation."})
    if tool_name:
        yield chunk({"tool_calls": [{"index": 0, **_tool_call(ident, tool_name)}]})
    else:
        for word in words:
            yield chunk({"content": word})
    yield chunk({}, finish)
    yield _sse("[DONE]")


# --- responses API ----------------------------------------------------------------------------


@upstream.route("POST", "/v1/responses")
def responses(call: Call) -> Response:
    body = call.json_object()
    config = call.config
    if config.responses_status is not None:
        status = int(config.responses_status)
        if status == 403:
            raise openai_error(
                403,
                "This endpoint is not enabled for your account.",
                "permission_error",
                "forbidden",
            )
        message = "Invalid URL (POST /v1/responses)" if status == 404 else "Not allowed."
        raise openai_error(status, message, "invalid_request_error")
    model = _require_model(call, body)
    if "input" not in body:
        raise openai_error(400, "Missing required parameter: 'input'.", "invalid_request_error")
    limit = _token_limit(body, "max_output_tokens")
    if limit is not None and limit < MIN_RESPONSES_OUTPUT_TOKENS:
        raise openai_error(
            400,
            "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
            f"{MIN_RESPONSES_OUTPUT_TOKENS}, but got {limit} instead.",
            "invalid_request_error",
            "integer_below_min_value",
            "max_output_tokens",
        )
    number = call.sim._next_id()
    words, truncated = _reply_words(model.reply, limit)
    tool_name = _tool_name(body.get("tools") or []) if model.tools else None
    response = _response_object(number, model, "".join(words), tool_name, truncated)
    if not body.get("stream"):
        return json_response(response)
    events = _response_events(number, response, words)
    return _event_stream(_sse(event, event=event["type"]) for event in events)


# --- anthropic messages -----------------------------------------------------------------------


@upstream.route("POST", "/v1/messages")
def messages(call: Call) -> Response:
    body = call.json_object()
    config = call.config
    if not config.anthropic_messages:
        raise openai_error(404, "Invalid URL (POST /v1/messages)", "invalid_request_error")
    model = config.model(body.get("model"))
    if model is None:
        raise anthropic_error(404, "not_found_error", f"model: {body.get('model')}")
    if not isinstance(body.get("max_tokens"), int):
        raise anthropic_error(400, "invalid_request_error", "max_tokens: Field required")
    if body.get("stream"):
        raise anthropic_error(
            400, "invalid_request_error", "stream: not implemented by the simulator"
        )
    words, truncated = _reply_words(model.reply, body["max_tokens"])
    return json_response(
        {
            "id": f"msg_sim_{call.sim._next_id()}",
            "type": "message",
            "role": "assistant",
            "model": model.id,
            "content": [{"type": "text", "text": "".join(words)}],
            "stop_reason": "max_tokens" if truncated else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 9, "output_tokens": len(words)},
        }
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
