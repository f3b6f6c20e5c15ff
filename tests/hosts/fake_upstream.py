"""A throwaway OpenAI-compatible upstream for the host tests only.

The real upstream simulator lives in ``probe/simulator`` (another module's job); this one is
just enough for the host simulator to forward to: key check, ``/v1/chat/completions`` (plain
and streamed), ``/v1/responses`` (or 404 when unsupported) and forced failures.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class UpstreamCall:
    method: str
    path: str
    body: Any
    authorization: str
    cookie: str | None = None


@dataclass
class FakeUpstream:
    api_key: str = "sk-upstream-test"
    reply: str = "pong"
    responses_supported: bool = True
    fail_status: dict[str, int] = field(default_factory=dict)  # path -> forced status
    set_cookie: str = ""  # a Set-Cookie header on every JSON answer
    calls: list[UpstreamCall] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def paths(self) -> list[str]:
        return [call.path for call in self.calls]

    def start(self) -> FakeUpstream:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                upstream._handle(self)

            do_POST = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- answers -------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        auth = h.headers.get("Authorization", "")
        self.calls.append(UpstreamCall(h.command, h.path, body, auth, h.headers.get("Cookie")))
        h.set_cookie = self.set_cookie
        if auth != f"Bearer {self.api_key}":
            return _send(h, 401, {"error": {"type": "invalid_request_error", "message": "bad key"}})
        if h.path in self.fail_status:
            status = self.fail_status[h.path]
            return _send(h, status, {"error": {"type": "server_error", "message": "forced"}})
        if h.path == "/v1/models":
            return _send(h, 200, {"object": "list", "data": [{"id": "up-model"}]})
        if h.path == "/v1/chat/completions":
            return self._chat(h, body or {})
        if h.path == "/v1/responses":
            if not self.responses_supported:
                return _send(h, 404, {"error": {"type": "not_found", "message": "no responses"}})
            return self._responses(h, body or {})
        return _send(h, 404, {"error": {"type": "not_found", "message": h.path}})

    def _chat(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        model = body.get("model", "")
        if body.get("stream"):
            chunks = [
                {"choices": [{"index": 0, "delta": {"content": part}}], "model": model}
                for part in (self.reply[:2], self.reply[2:])
            ]
            return _stream(h, [json.dumps(c) for c in chunks] + ["[DONE]"])
        return _send(
            h,
            200,
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": self.reply},
                        "finish_reason": "stop",
                    }
                ],
            },
        )

    def _responses(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        model = body.get("model", "")
        if body.get("stream"):
            events = [
                {"type": "response.output_text.delta", "delta": self.reply},
                {"type": "response.completed"},
            ]
            return _stream(h, [json.dumps(e) for e in events])
        output = [{"type": "message", "content": [{"type": "output_text", "text": self.reply}]}]
        usage = {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}
        return _send(h, 200, {"model": model, "output": output, "usage": usage})


def _send(h: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
    data = json.dumps(payload).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    if getattr(h, "set_cookie", ""):
        h.send_header("Set-Cookie", h.set_cookie)
    h.end_headers()
    h.wfile.write(data)


def _stream(h: BaseHTTPRequestHandler, payloads: list[str]) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/event-stream")
    h.send_header("Connection", "close")
    h.end_headers()
    for payload in payloads:
        h.wfile.write(f"data: {payload}\n\n".encode())
        h.wfile.flush()
    h.close_connection = True
