"""An httpx transport of kept-alive HTTP/1.1 connections: the product's clients keep httpx's API
(and their tests keep faking at httpx's transport); the bytes go over plain sockets, each answer
read by ``httptools`` (the C parser, llhttp, that uvicorn reads requests with).

Why: httpx's own transport (httpcore's pool over h11's state machine, both pure Python) cost
≈ 0.5 ms CPU per call on this machine, one over the standard library's ``http.client`` ≈ 0.25
(its header checks per line, its answers' headers parsed by the ``email`` package), this one
≈ 0.1; an item makes about ten calls and 32 items share a worker process's GIL
(docs/performance.md).

What it keeps of httpx's transport: keep-alive connections per origin (scheme, host, port), at
most ``max_keepalive`` idle per origin, dropped after ``keepalive_expiry`` seconds idle or once
the server has closed them; one TLS context; the request's timeouts (connect, write, read, each
per socket operation, as httpcore applies them); answers read as they arrive (SSE); failures as
httpx's exceptions; a header name or value that would break the request's framing refused before
anything is sent. Calls at once are not bounded here (the callers' slots bound them). A
``connector`` replaces ``socket.create_connection`` (``probe.guard`` checks addresses there).
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import httptools
import httpx

# socket.create_connection's signature: (host, port), timeout, source address -> socket
Connector = Callable[..., socket.socket]
Origin = tuple[str, str, int]
READ_SIZE = 64 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 9110 §5.1 / §5.5: a field name is a token; a value has no CR, LF or NUL.
_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\r\n\x00]")
# Answers that end with their head (RFC 9110 §6.4.1).
_NO_BODY_STATUSES = frozenset({204, 304})
_DISCONNECTED = "Server disconnected without sending a response."
_INCOMPLETE = "peer closed connection without sending complete message body"


@contextmanager
def _as_httpx(timeout: type[httpx.TimeoutException], other: type[httpx.TransportError]):
    """Socket failures of one phase of a call as httpx names them."""
    try:
        yield
    except TimeoutError as exc:
        raise timeout(str(exc) or "timed out") from exc
    except OSError as exc:  # refused, reset, unreachable, TLS (ssl.SSLError is an OSError)
        raise other(str(exc) or type(exc).__name__) from exc


def _closed_by_peer(sock: socket.socket) -> bool:
    """An idle kept connection with something to read has been closed (or broken) by the
    server: nothing else may arrive on it between calls."""
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def _request_head(request: httpx.Request) -> bytes:
    """The request line and header lines, as sent; refuses a name or value that would end a
    line or the head early (a pasted key with a line break in it, say)."""
    lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), request.url.raw_path)]
    for name, value in request.headers.raw:
        if not _NAME.fullmatch(name) or _BAD_VALUE.search(value):
            raise httpx.LocalProtocolError(f"Illegal header {name!r}: not sent")
        lines.append(b"%s: %s\r\n" % (name, value))
    lines.append(b"\r\n")
    return b"".join(lines)


def _framed_body(request: httpx.Request) -> bytes:
    """The body as its headers frame it: httpx announces a streamed one as chunked."""
    body = request.read()
    if request.headers.get("transfer-encoding", "").lower() != "chunked":
        return body
    return (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"


class _Answer:
    """One answer read off a connection: its head first, then its body as it arrives.
    ``httptools`` calls the ``on_*`` methods while it parses what ``receive`` feeds it."""

    def __init__(self, sock: socket.socket, *, head_only: bool) -> None:
        self.sock = sock
        self.head_only = head_only  # an answer to HEAD has no body, whatever it announces
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.framed = False  # Content-Length or chunked: else the body ends when the server closes
        self.chunks: list[bytes] = []
        self.head_done = False
        self.done = False
        self.extra = False  # bytes after the answer: the connection cannot be trusted again
        self.keep_alive = False  # as the head says (llhttp forgets it once the answer ends)
        self._parser = httptools.HttpResponseParser(self)
        self._buffer = bytearray(READ_SIZE)

    # --- httptools' callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.done:
            self.extra = True

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:  # an interim answer (103 Early Hints): the real one follows
            self.reason, self.headers, self.framed = b"", [], False
            return
        self.status = status
        self.head_done = True
        self.keep_alive = self._parser.should_keep_alive()
        if self.head_only or status in _NO_BODY_STATUSES:
            self.done = True

    def on_body(self, body: bytes) -> None:
        if not self.done:
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.head_done:
            self.done = True

    # --- reading -----------------------------------------------------------------------------
    def receive(self) -> None:
        """What the server sent next, fed to the parser (blocks up to the socket's timeout)."""
        count = self.sock.recv_into(self._buffer)
        if count == 0:
            self._closed()
            return
        try:
            self._parser.feed_data(memoryview(self._buffer)[:count])
        except httptools.HttpParserError as exc:
            if self.done:  # garbage after a whole answer: the answer stands, the socket goes
                self.extra = True
                return
            raise httpx.RemoteProtocolError(f"malformed answer: {exc}") from exc

    def _closed(self) -> None:
        if self.done:
            return
        if not self.head_done:
            raise httpx.RemoteProtocolError(_DISCONNECTED)
        if self.framed:
            raise httpx.RemoteProtocolError(_INCOMPLETE)
        self.done = True  # an unframed body ends where the connection does
        self.extra = True  # and the connection is gone

    def read_head(self) -> None:
        while not self.head_done:
            self.receive()

    def end(self) -> None:
        """Let the parser and the buffer go now: the parser holds this answer (its callbacks),
        a cycle only the collector would break, and 64 KiB with it per call."""
        self._parser = self._buffer = None

    def reusable(self) -> bool:
        return self.done and self.keep_alive and not self.extra

    def http_version(self) -> bytes:
        return b"HTTP/" + self._parser.get_http_version().encode("ascii")


class PooledTransport(httpx.BaseTransport):
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
        self._idle: dict[Origin, deque[tuple[socket.socket, float]]] = {}
        self._lock = threading.Lock()

    # --- httpx.BaseTransport ------------------------------------------------------------------
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{url}'.")
        origin = (url.scheme, url.host, url.port or DEFAULT_PORTS[url.scheme])
        timeouts = request.extensions.get("timeout", {})
        sent = _request_head(request) + _framed_body(request)
        sock = self._kept(origin) or self._connect(origin, timeouts)
        answer = _Answer(sock, head_only=request.method == "HEAD")
        try:
            with _as_httpx(httpx.WriteTimeout, httpx.WriteError):
                sock.settimeout(timeouts.get("write"))
                sock.sendall(sent)
            with _as_httpx(httpx.ReadTimeout, httpx.ReadError):
                sock.settimeout(timeouts.get("read"))
                answer.read_head()
        except BaseException:
            answer.end()
            sock.close()
            raise
        return httpx.Response(
            answer.status,
            headers=answer.headers,
            stream=_Body(self, origin, answer),
            extensions={"http_version": answer.http_version(), "reason_phrase": answer.reason},
        )

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for kept in idle.values():
            for sock, _ in kept:
                sock.close()

    # --- the kept connections -----------------------------------------------------------------
    def _kept(self, origin: Origin) -> socket.socket | None:
        """The most recently used idle connection to ``origin`` still good, if any."""
        now = time.monotonic()
        while True:
            with self._lock:
                kept = self._idle.get(origin)
                if not kept:
                    return None
                sock, since = kept.pop()
            if now - since < self.keepalive_expiry and not _closed_by_peer(sock):
                return sock
            sock.close()

    def _connect(self, origin: Origin, timeouts: Mapping[str, Any]) -> socket.socket:
        scheme, host, port = origin
        timeout = timeouts.get("connect")
        connect = self.connector or socket.create_connection
        with _as_httpx(httpx.ConnectTimeout, httpx.ConnectError):
            sock = connect((host, port), timeout)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if scheme == "https":
                    if self.ssl_context is None:
                        self.ssl_context = ssl.create_default_context()
                    sock = self.ssl_context.wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise
        self.connections_opened += 1
        return sock

    def _keep(self, origin: Origin, sock: socket.socket) -> None:
        now = time.monotonic()
        dropped = []
        with self._lock:
            kept = self._idle.setdefault(origin, deque())
            kept.append((sock, now))
            while kept and (
                len(kept) > self.max_keepalive or now - kept[0][1] >= self.keepalive_expiry
            ):
                dropped.append(kept.popleft()[0])
        for old in dropped:
            old.close()


class _Body(httpx.SyncByteStream):
    """An answer's body as it arrives; its connection goes back to the pool once the body has
    been read to its end (and the server keeps it open), else it is closed."""

    def __init__(self, transport: PooledTransport, origin: Origin, answer: _Answer) -> None:
        self._transport = transport
        self._origin = origin
        self._answer: _Answer | None = answer

    def __iter__(self) -> Iterator[bytes]:
        answer = self._answer
        if answer is None:
            return
        with _as_httpx(httpx.ReadTimeout, httpx.ReadError):
            while True:
                if answer.chunks:
                    chunks, answer.chunks = answer.chunks, []
                    yield b"".join(chunks)
                if answer.done:
                    return
                answer.receive()

    def close(self) -> None:
        answer, self._answer = self._answer, None
        if answer is None:
            return
        answer.end()
        if answer.reusable():
            self._transport._keep(self._origin, answer.sock)
        else:
            answer.sock.close()


class NoCookies(httpx.Cookies):
    """A client's cookie jar that keeps nothing an answer sets (``client._cookies``): httpx
    builds a urllib request per answer only to look for one."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


def without_cookies(client: httpx.Client) -> httpx.Client:
    """``client``, never keeping (so never sending back) a cookie an answer sets."""
    client.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    client._cookies = NoCookies(client.cookies)
    return client


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
