"""An httpx transport over the standard library's ``http.client``: the product's clients keep
httpx's API (and their tests keep faking at httpx's transport), the bytes go through
``http.client``.

Why: httpx's own transport (httpcore's pool over h11's state machine, both pure Python) cost
≈ 0.5 ms CPU per call on this machine, ``http.client`` ≈ 0.25 ms; an item makes about ten calls
and 32 items share a worker process's GIL (README, Benchmarks).

What it keeps of httpx's transport: keep-alive connections per origin (scheme, host, port), at
most ``max_keepalive`` idle per origin, dropped after ``keepalive_expiry`` seconds idle or once
the server has closed them; one TLS context; the request's timeouts (connect, write, read, each
per socket operation, as httpcore applies them); answers read as they arrive (SSE); failures as
httpx's exceptions. Calls at once are not bounded here (the callers' slots bound them). A
``connector`` replaces ``socket.create_connection`` (``probe.guard`` checks addresses there).
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

# socket.create_connection's signature: (host, port), timeout, source address -> socket
Connector = Callable[..., socket.socket]
Origin = tuple[str, str, int]
READ_SIZE = 64 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}


@contextmanager
def _as_httpx(timeout: type[httpx.TimeoutException], other: type[httpx.TransportError]):
    """Socket and protocol failures of one phase of a call as httpx names them."""
    try:
        yield
    except TimeoutError as exc:
        raise timeout(str(exc) or "timed out") from exc
    except http.client.HTTPException as exc:
        raise httpx.RemoteProtocolError(_protocol_message(exc)) from exc
    except OSError as exc:  # refused, reset, unreachable, TLS (ssl.SSLError is an OSError)
        raise other(str(exc) or type(exc).__name__) from exc


def _protocol_message(exc: http.client.HTTPException) -> str:
    if isinstance(exc, http.client.RemoteDisconnected):
        return "Server disconnected without sending a response."
    if isinstance(exc, http.client.IncompleteRead):
        return "peer closed connection without sending complete message body"
    return f"{type(exc).__name__}: {exc}"


def _closed_by_peer(sock: socket.socket | None) -> bool:
    """An idle kept connection with something to read has been closed (or broken) by the
    server: nothing else may arrive on it between calls."""
    if sock is None:
        return True
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


class StdlibTransport(httpx.BaseTransport):
    """Thread-safe: threads share its idle connections, each call has one to itself."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_keepalive: int = 20,
        keepalive_expiry: float = 5.0,
        connector: Connector | None = None,
    ) -> None:
        self.ssl_context = ssl_context  # default: made at the first TLS connection
        self.max_keepalive = max(0, int(max_keepalive))
        self.keepalive_expiry = keepalive_expiry
        self.connector = connector
        self.connections_opened = 0
        self._idle: dict[Origin, deque[tuple[http.client.HTTPConnection, float]]] = {}
        self._lock = threading.Lock()

    # --- httpx.BaseTransport ------------------------------------------------------------------
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{url}'.")
        origin = (url.scheme, url.host, url.port or DEFAULT_PORTS[url.scheme])
        timeouts = request.extensions.get("timeout", {})
        connection = self._kept(origin) or self._connect(origin, timeouts)
        try:
            with _as_httpx(httpx.WriteTimeout, httpx.WriteError):
                connection.sock.settimeout(timeouts.get("write"))
                connection.putrequest(
                    request.method,
                    url.raw_path.decode("ascii"),
                    skip_host=True,
                    skip_accept_encoding=True,
                )
                for name, value in request.headers.raw:
                    connection.putheader(name, value)
                connection.endheaders(request.read() or None)
            with _as_httpx(httpx.ReadTimeout, httpx.ReadError):
                connection.sock.settimeout(timeouts.get("read"))
                answer = connection.getresponse()
        except BaseException:
            connection.close()
            raise
        return httpx.Response(
            answer.status,
            headers=[
                (name.encode("latin-1"), value.encode("latin-1"))
                for name, value in answer.getheaders()
            ],
            stream=_Body(self, origin, connection, answer),
            extensions={
                "http_version": b"HTTP/1.1" if answer.version == 11 else b"HTTP/1.0",
                "reason_phrase": answer.reason.encode("latin-1", "replace"),
            },
        )

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for kept in idle.values():
            for connection, _ in kept:
                connection.close()

    # --- the kept connections -----------------------------------------------------------------
    def _kept(self, origin: Origin) -> http.client.HTTPConnection | None:
        """The most recently used idle connection to ``origin`` still good, if any."""
        now = time.monotonic()
        while True:
            with self._lock:
                kept = self._idle.get(origin)
                if not kept:
                    return None
                connection, since = kept.pop()
            if now - since < self.keepalive_expiry and not _closed_by_peer(connection.sock):
                return connection
            connection.close()

    def _connect(self, origin: Origin, timeouts: dict) -> http.client.HTTPConnection:
        scheme, host, port = origin
        timeout = timeouts.get("connect")
        if scheme == "https":
            if self.ssl_context is None:
                self.ssl_context = ssl.create_default_context()
            connection = http.client.HTTPSConnection(
                host, port, timeout=timeout, context=self.ssl_context
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        if self.connector is not None:
            connection._create_connection = self.connector  # http.client's own hook
        with _as_httpx(httpx.ConnectTimeout, httpx.ConnectError):
            connection.connect()
        self.connections_opened += 1
        return connection

    def _keep(self, origin: Origin, connection: http.client.HTTPConnection) -> None:
        now = time.monotonic()
        dropped = []
        with self._lock:
            kept = self._idle.setdefault(origin, deque())
            kept.append((connection, now))
            while kept and (
                len(kept) > self.max_keepalive or now - kept[0][1] >= self.keepalive_expiry
            ):
                dropped.append(kept.popleft()[0])
        for old in dropped:
            old.close()


class _Body(httpx.SyncByteStream):
    """An answer's body as it arrives; its connection goes back to the pool once the body has
    been read to its end (and the server keeps it open), else it is closed."""

    def __init__(
        self,
        transport: StdlibTransport,
        origin: Origin,
        connection: http.client.HTTPConnection,
        answer: http.client.HTTPResponse,
    ) -> None:
        self._transport = transport
        self._origin = origin
        self._connection = connection
        self._answer = answer
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        answer = self._answer
        with _as_httpx(httpx.ReadTimeout, httpx.ReadError):
            while chunk := answer.read1(READ_SIZE):
                yield chunk
            if answer.length:  # the server closed before the Content-Length it announced
                raise http.client.IncompleteRead(b"", answer.length)
        self._done = True

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        self._answer.close()  # http.client sends nothing more on a connection until then
        if self._done and not self._answer.will_close and connection.sock is not None:
            self._transport._keep(self._origin, connection)
        else:
            connection.close()


def send_plainly(
    client: httpx.Client,
    transport: httpx.BaseTransport,
    method: str,
    url: httpx.URL,
    *,
    headers: Mapping[str, str] | None = None,
    json: Any = None,
) -> httpx.Response:
    """``client.request(method, url, headers=…, json=…)`` for a client of ours, sent straight
    to ``transport`` (the one the client was made with): the same request (the client's
    headers, then the call's; its timeouts), the answer read to its end.

    For clients that follow no redirects and have no auth, no event hooks and no cookies to
    send (the caller keeps any an answer sets), and an absolute ``url``: what the client's
    own layers would do for such a call is nothing, yet they cost as much CPU as the call
    itself (≈ 50 µs: the auth flow, the redirect loop, the answer's stream wrapped and timed).
    """
    sent = httpx.Headers(client.headers)
    if headers:
        sent.update(headers)
    request = httpx.Request(
        method, url, headers=sent, json=json, extensions={"timeout": client.timeout.as_dict()}
    )
    response = transport.handle_request(request)
    response.request = request
    try:
        response.read()
    finally:
        response.close()
    return response
