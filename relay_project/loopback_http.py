"""The small HTTP framework both loopback simulators run on (``probe.simulator``, the upstream;
``hosts.simulator``, the host): request and response values, a router of route functions and a
``ThreadingHTTPServer`` on its own thread.

    router: Router[Call] = Router()

    @router.route("GET", "/v1/models/{name:path}")
    def model(call: Call) -> Response: ...

    server = LoopbackServer(app, host="127.0.0.1", port=0, name="upstream-sim").start()

An app is ``Callable[[Request], Response]``; anywhere inside it ``raise Abort(response)`` answers
at once. Stdlib only, so the ground floor can hold it; no pipeline module imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import os
import queue
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlsplit

logger = logging.getLogger(__name__)

C = TypeVar("C")
# The stdlib's limits on a header line and the number of fields (http.client).
_MAX_LINE = 65536
_MAX_HEADERS = 100


class Headers:
    """A request's header fields, read the way ``email.message.Message`` answers them (what
    ``http.server`` builds, at a third of a small request's CPU): ``get`` and ``[]`` fold the
    name's case and give the first of repeated fields (None when absent); ``items()`` lists
    every field as sent."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._fields = fields
        self._first: dict[str, str] = {}
        for name, value in fields:
            self._first.setdefault(name.lower(), value)

    def get(self, name: str, default: Any = None) -> Any:
        return self._first.get(name.lower(), default)

    def __getitem__(self, name: str) -> str | None:
        return self._first.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def keys(self) -> list[str]:
        return [name for name, _ in self._fields]

    def values(self) -> list[str]:
        return [value for _, value in self._fields]

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Headers | Mapping[str, str]  # case-insensitive
    body: bytes = b""

    def header(self, name: str) -> str:
        return (self.headers.get(name) or "").strip()


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterator[bytes] | None = None  # streamed bodies (SSE) are sent close-delimited
    # Whether the stream may wait between its pieces (another call, a pause): iterated on a
    # pool thread. A stream that never waits is written on the loop (``on_loop`` apps).
    stream_waits: bool = True
    close: bool = False  # close the connection after this answer
    silent: bool = False  # answer nothing and hang up (a dropped connection)
    # Called once the answer is out (or given up) with the status the client got (0: none).
    on_sent: Callable[[int], None] | None = None

    @classmethod
    def hang_up(cls) -> Response:
        return cls(status=0, close=True, silent=True)


class Abort(Exception):
    """Raised anywhere in an app to answer with ``response`` at once."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass(frozen=True)
class Route(Generic[C]):
    method: str
    pattern: re.Pattern[str]
    handler: Callable[[C], Response]
    options: Mapping[str, Any]  # what the simulator's dispatch reads (the host: auth, new_only)


_PLACEHOLDER = re.compile(r"\{(\w+)(:path)?\}")


def _compile(path: str) -> re.Pattern[str]:
    """``{name}`` matches one segment, ``{name:path}`` the rest of the path (slashes too)."""

    def group(found: re.Match[str]) -> str:
        return f"(?P<{found[1]}>{'.+' if found[2] else '[^/]+'})"

    return re.compile("^" + _PLACEHOLDER.sub(group, path) + "$")


class Router(Generic[C]):
    """Route functions by method and path pattern, matched in registration order."""

    def __init__(self) -> None:
        self.routes: list[Route[C]] = []

    def route(
        self, method: str, path: str, **options: Any
    ) -> Callable[[Callable[[C], Response]], Callable[[C], Response]]:
        pattern = _compile(path)

        def register(handler: Callable[[C], Response]) -> Callable[[C], Response]:
            self.routes.append(Route(method, pattern, handler, options))
            return handler

        return register


def match(
    routes: Sequence[Route[C]],
    method: str,
    path: str,
    *,
    accept: Callable[[Route[C]], bool] | None = None,
) -> tuple[Route[C], dict[str, str]] | None:
    """The first route for ``method`` whose pattern matches ``path`` (and ``accept`` takes),
    with its path parameters."""
    for route in routes:
        if route.method != method or (accept is not None and not accept(route)):
            continue
        found = route.pattern.match(path)
        if found:
            return route, found.groupdict()
    return None


@dataclass(frozen=True)
class After:
    """An answer ``seconds`` from now: whatever ``then()`` answers then. On a server whose app
    runs on its loop (``on_loop``), a wait that holds no thread: a simulator's latency."""

    seconds: float
    then: Callable[[], Answer]


@dataclass(frozen=True)
class OffLoop:
    """An answer from ``then()``, run on a thread of the server's pool: work that may block
    (a call to another server, a wait on an event), which the loop must never run."""

    then: Callable[[], Answer]


Answer = Response | After | OffLoop
App = Callable[[Request], Answer]

# The stdlib's request handler's texts: the reason phrases, the Server header's second word.
_REASONS = {code: phrase for code, (phrase, _) in BaseHTTPRequestHandler.responses.items()}
_PYTHON = "Python/" + sys.version.split()[0]


class _Date:
    """The Date header's text for the current second (as Go's net/http keeps it), shared by
    every answer of the process: formatting it took ~3 % of the simulators' CPU."""

    second, text = 0, ""

    @classmethod
    def now(cls) -> str:
        now = int(time.time())
        if cls.second != now:
            cls.second, cls.text = now, formatdate(now, usegmt=True)
        return cls.text


class _BadRequest(Exception):
    """A request the server answers with ``status`` and then hangs up, as the stdlib's
    handler does."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class _Connection(asyncio.Protocol):
    """One client connection: its requests read one after another, each answered before the
    next is read (HTTP/1.1 keep-alive, no pipelining of answers)."""

    def __init__(self, server: LoopbackServer) -> None:
        self.server = server
        self.loop = server._loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False  # a request of this connection is being answered
        self.closing = False
        # One timer per connection for its idle timeout, moved on lazily: a request only
        # notes when the connection was last busy (a timer made and cancelled per request
        # filled the loop's heap with cancelled ones).
        self.idle: asyncio.TimerHandle | None = None
        self.idle_since: float | None = None  # None: busy
        # The request's wait for its answer (``After``): its timer and what answers then.
        self.waiting: tuple[asyncio.TimerHandle, Callable[[], Answer]] | None = None
        # Of the request being read or answered: its version, whether the connection ends
        # after its answer, whether a 100 Continue went out for it.
        self.version = "HTTP/1.1"
        self.close_after = False
        self.continue_sent = False

    # --- asyncio's calls ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server._connections.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None:  # head and body leave in one write; no Nagle delay either way
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._wait_idle()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._next_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._stop_idle()
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None
        self.server._connections.discard(self)

    # --- reading ------------------------------------------------------------------------------

    def _next_request(self) -> None:
        try:
            request = self._parse()
        except _BadRequest as bad:
            self._refuse(bad)
            return
        if request is None:
            return
        self._stop_idle()
        self.busy = True
        if self.server.on_loop:
            self._settle(partial(self.server.app, request))
        else:
            self._answer(OffLoop(partial(self.server.app, request)))

    def _parse(self) -> Request | None:
        """The request at the buffer's start once it is whole (None until then), taken out of
        the buffer; its close and continue wishes noted."""
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            body_at = end + 4
        else:
            end = buffer.find(b"\n\n")
            if end < 0:
                self._check_unfinished_head()
                return None
            body_at = end + 2
        lines = bytes(buffer[:end]).decode("iso-8859-1").split("\n")
        while lines and not lines[0].strip():  # blank lines before a request are skipped
            lines.pop(0)
        if not lines:
            del buffer[:body_at]
            return None
        words = lines[0].rstrip("\r").split()
        if len(lines[0]) > _MAX_LINE:
            raise _BadRequest(HTTPStatus.REQUEST_URI_TOO_LONG, "Request-URI Too Long")
        if len(words) != 3 or not words[2].startswith("HTTP/"):
            raise _BadRequest(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({lines[0]!r})")
        method, target, version = words
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            raise _BadRequest(
                HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"Invalid HTTP version ({version})"
            )
        headers = Headers(_header_fields(lines[1:]))
        length_text = (headers.get("Content-Length") or "0").strip()
        try:
            length = int(length_text)
        except ValueError:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "Bad Content-Length") from None
        if len(buffer) < body_at + max(length, 0):
            expect = (headers.get("Expect") or "").lower()
            if expect == "100-continue" and version == "HTTP/1.1" and not self.continue_sent:
                self.continue_sent = True
                self._send(b"HTTP/1.1 100 Continue\r\n\r\n")
            return None
        body = bytes(buffer[body_at : body_at + max(length, 0)])
        del buffer[: body_at + max(length, 0)]
        self.continue_sent = False
        self.close_after = version != "HTTP/1.1"
        connection = (headers.get("Connection") or "").lower()
        if connection == "close":
            self.close_after = True
        elif connection == "keep-alive":
            self.close_after = False
        self.version = version
        if target.startswith("//"):  # as the stdlib does (gh-87389): no open redirect
            target = "/" + target.lstrip("/")
        if "?" not in target and "#" not in target and "://" not in target:
            return Request(method=method, path=target, query={}, headers=headers, body=body)
        parts = urlsplit(target)
        return Request(
            method=method,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=headers,
            body=body,
        )

    def _check_unfinished_head(self) -> None:
        """A head still coming in that is already longer than the stdlib takes."""
        buffer = self.buffer
        first = buffer.find(b"\n")
        if (first < 0 and len(buffer) > _MAX_LINE) or first > _MAX_LINE + 1:
            raise _BadRequest(HTTPStatus.REQUEST_URI_TOO_LONG, "Request-URI Too Long")
        if len(buffer) > _MAX_LINE * (_MAX_HEADERS + 2):
            raise _BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")

    # --- answering ----------------------------------------------------------------------------

    def _produced(self, produce: Callable[[], Answer]) -> Answer | None:
        """What ``produce()`` answers (an ``Abort``'s response too); None when it failed, said
        loudly: the connection then hangs up, as the stdlib's server did."""
        try:
            return produce()
        except Abort as abort:
            return abort.response
        except Exception:
            logger.exception("%s: the app failed", self.server.name)
            return None

    def _settle(self, produce: Callable[[], Answer]) -> None:
        """Run ``produce`` here on the loop and answer with what it answers."""
        answer = self._produced(produce)
        if answer is None:
            self._close()
            return
        self._answer(answer)

    def _answer(self, answer: Answer) -> None:
        if isinstance(answer, After):
            self._wait(answer)
        elif isinstance(answer, OffLoop):
            self.server._pool_submit(self._off_loop, answer.then)
        elif answer.stream is not None and not answer.silent:
            if answer.stream_waits or not self.server.on_loop:
                self.server._pool_submit(self._stream, answer)
            else:
                self._stream(answer)
        else:
            self._respond(answer)

    def _off_loop(self, produce: Callable[[], Answer]) -> None:
        """On a pool thread: ``produce`` may block; its answer goes back to the loop."""
        answer = self._produced(produce)
        if answer is None:
            self._from_thread(self._close)
            return
        if isinstance(answer, Response) and answer.stream is not None and not answer.silent:
            self._stream(answer)
        else:
            self._from_thread(self._answer, answer)

    def _respond(self, response: Response) -> None:
        """A whole answer (head and body in one write), or a hang-up."""
        sent = 0
        try:
            if response.silent or self.closing:
                self.close_after = True
                return
            head = self._head(response, [("Content-Length", str(len(response.body)))])
            self._send(head + response.body)
            sent = response.status
        finally:
            if response.on_sent is not None:
                response.on_sent(sent)
            self._done(close=response.close or response.silent)

    def _stream(self, response: Response) -> None:
        """A streamed answer, each piece written as the stream gives it, in chunks over a
        connection that stays open when the server sends them so, else ended by closing the
        connection. On a pool thread (the stream may wait), or on the loop for a stream that
        never waits."""
        assert response.stream is not None
        chunked = self.server.chunked_streams and self.version == "HTTP/1.1"
        sent, close = 0, response.close
        try:
            if chunked:
                self._from_thread(
                    self._send, self._head(response, [("Transfer-Encoding", "chunked")])
                )
                try:
                    for chunk in response.stream:
                        if chunk:  # an empty chunk would end the answer
                            self._from_thread(self._send, b"%x\r\n%s\r\n" % (len(chunk), chunk))
                except Exception:
                    # Ends without the last chunk: the client sees the answer cut short.
                    logger.exception("%s: a stream failed midway", self.server.name)
                    close = True
                else:
                    self._from_thread(self._send, b"0\r\n\r\n")
                    sent = response.status
                return
            close = True  # no length and no chunks: the stream ends when the connection does
            self._from_thread(self._send, self._head(response, [("Connection", "close")]))
            sent = response.status
            for chunk in response.stream:
                self._from_thread(self._send, chunk)
        except Exception:
            logger.exception("%s: a stream failed midway", self.server.name)
        finally:
            self._from_thread(self._streamed, response, sent, close)

    def _streamed(self, response: Response, sent: int, close: bool) -> None:
        if response.on_sent is not None:
            response.on_sent(sent)
        self._done(close=close)

    def _head(self, response: Response, framing: list[tuple[str, str]]) -> bytes:
        status = response.status
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, '')}",
            f"Server: {self.server.software or 'BaseHTTP/0.6'} {_PYTHON}",
            f"Date: {_Date.now()}",
            f"Content-Type: {response.content_type}",
        ]
        lines += [f"{name}: {value}" for name, value in response.headers.items()]
        lines += [f"{name}: {value}" for name, value in framing]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "strict")

    def _done(self, *, close: bool) -> None:
        """The answer is out: hang up, or read the next request."""
        self.busy = False
        if close or self.close_after or self.closing:
            self._close()
            return
        self._wait_idle()
        if self.buffer:
            self._next_request()

    def _refuse(self, bad: _BadRequest) -> None:
        body = (
            f"<!DOCTYPE HTML>\n<html><body><h1>Error response</h1><p>Error code: "
            f"{int(bad.status)}</p><p>Message: {html.escape(bad.message)}.</p></body></html>\n"
        ).encode()
        refusal = Response(
            status=int(bad.status), body=body, content_type="text/html;charset=utf-8"
        )
        framing = [("Connection", "close"), ("Content-Length", str(len(body)))]
        self._send(self._head(refusal, framing) + body)
        self._close()

    # --- the wire -----------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _close(self) -> None:
        self.closing = True
        self._stop_idle()
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None
        if self.transport is not None:
            self.transport.close()

    def _from_thread(self, callback: Callable[..., None], *args: Any) -> None:
        """``callback(*args)`` on the loop: at once when this is the loop's thread."""
        if self.server.in_loop():
            callback(*args)
            return
        with contextlib.suppress(RuntimeError):  # the loop has stopped: the server is gone
            self.loop.call_soon_threadsafe(callback, *args)

    def _wait_idle(self) -> None:
        timeout = self.server.idle_timeout
        if timeout is None or self.closing:
            return
        self.idle_since = self.loop.time()
        if self.idle is None:
            self.idle = self.loop.call_later(timeout, self._idle_out)

    def _stop_idle(self) -> None:
        self.idle_since = None

    def _idle_out(self) -> None:
        self.idle = None
        timeout = self.server.idle_timeout
        if self.closing or timeout is None:
            return
        if self.idle_since is None or self.busy:  # busy now: look again a timeout later
            self.idle = self.loop.call_later(timeout, self._idle_out)
            return
        left = self.idle_since + timeout - self.loop.time()
        if left > 0:
            self.idle = self.loop.call_later(left, self._idle_out)
            return
        self._close()

    def _wait(self, after: After) -> None:
        if after.seconds <= 0:
            self._settle(after.then)
            return
        handle = self.loop.call_later(after.seconds, self._waited)
        self.waiting = (handle, after.then)

    def _waited(self) -> None:
        """The wait is over (its time came, or the server stops): answer now."""
        if self.waiting is not None:
            handle, then = self.waiting
            self.waiting = None
            handle.cancel()
            self._settle(then)


def _header_fields(lines: list[str]) -> list[tuple[str, str]]:
    """The head's fields in order, a folded line joined to the field before it."""
    if len(lines) > _MAX_HEADERS:
        raise _BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
    fields: list[tuple[str, str]] = []
    for raw in lines:
        if len(raw) > _MAX_LINE:
            raise _BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
        text = raw.rstrip("\r")
        if not text:
            continue
        if text[0] in " \t" and fields:  # a folded continuation of the field before
            name, value = fields[-1]
            fields[-1] = (name, value + text)
            continue
        name, colon, value = text.partition(":")
        if colon:
            fields.append((name, value.lstrip(" \t")))
    return fields


class _Pool:
    """Threads for the apps' blocking answers and streams: a task goes to an idle thread, or
    to a new one when none is idle (a hang holds one for its time). ``ThreadPoolExecutor``
    made a future and its conditions per task that nobody here reads."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: queue.SimpleQueue[tuple[Callable[..., None], tuple]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        with self._lock:
            start = self._idle == 0
            if not start:
                self._idle -= 1  # that thread takes this task
        if start:
            threading.Thread(target=self._work, name=self._name, daemon=True).start()
        self._tasks.put((fn, args))

    def _work(self) -> None:
        while True:
            fn, args = self._tasks.get()
            try:
                fn(*args)
            except Exception:
                logger.exception("%s: a task failed", self._name)
            with self._lock:
                self._idle += 1


class _Loop:
    """The process's one loop for every loopback server, on a daemon thread, and the pool of
    threads their blocking answers and streams run on. One loop for all: a bench's 21
    simulators, each on a loop of its own, woke a thread per request where one loop takes
    the requests of all of them that are ready at one wake-up. Made again in a forked child
    (the thread does not cross a fork)."""

    _lock = threading.Lock()
    _current: _Loop | None = None

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.pool = _Pool("loopback-http-pool")
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="loopback-http", daemon=True
        )
        self.thread.start()

    @classmethod
    def get(cls) -> _Loop:
        with cls._lock:
            if cls._current is None or cls._current.pid != os.getpid():
                cls._current = cls()
            return cls._current

    def run(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` run on the loop; what it returns."""
        if threading.get_ident() == self.thread.ident:
            return fn()
        done: Future = Future()

        def call() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:  # handed to the caller
                done.set_exception(exc)

        self.loop.call_soon_threadsafe(call)
        return done.result(timeout=10)


class LoopbackServer:
    """``app`` served over HTTP/1.1 on ``host:port`` (port 0 = an ephemeral port) by the
    process's ``asyncio`` loop (``_Loop``, on a daemon thread); ``start()`` binds, ``stop()``
    shuts down.

    The loop reads every connection's requests and writes the answers; the app runs on a
    thread of the loop's pool (it may block), or, with ``on_loop``, on the loop itself: it
    must then never block, and answers ``After`` for a wait and ``OffLoop`` for work that
    blocks. A simulator that answers every request after its latency holds no thread for
    it: a thread per connection, each woken once for the request and once for the latency,
    cost the simulators about twice the CPU per request (docs/performance.md).

    Streamed answers are written from a pool thread as the stream gives them: they end when
    the connection closes, as many providers send them, or with ``chunked_streams`` go in
    chunks over a connection that stays open."""

    def __init__(
        self,
        app: App,
        *,
        host: str,
        port: int,
        name: str,
        software: str | None = None,
        idle_timeout: float | None = None,
        chunked_streams: bool = False,
        on_loop: bool = False,
    ) -> None:
        self.app, self._bind, self.name = app, (host, port), name
        self.software, self.idle_timeout = software, idle_timeout
        self.chunked_streams, self.on_loop = chunked_streams, on_loop
        self._shared: _Loop | None = None
        self._listener: asyncio.Server | None = None
        self._connections: set[_Connection] = set()

    @property
    def running(self) -> bool:
        return self._listener is not None

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:
        assert self._shared is not None, f"{self.name} is not running"
        return self._shared.loop

    def start(self) -> LoopbackServer:
        self._shared = shared = _Loop.get()
        # Connections the kernel queues for the loop, as Go's net.Listen asks (the system's
        # maximum): a queue of 5 made the kernel drop the connects beyond them while the loop
        # waited for the GIL, and each dropped client waited a second before trying again.
        listening = shared.loop.create_server(
            lambda: _Connection(self), *self._bind, backlog=socket.SOMAXCONN, reuse_address=True
        )
        self._listener = asyncio.run_coroutine_threadsafe(listening, shared.loop).result(10)
        return self

    def stop(self) -> None:
        """Stop listening, answer the requests waiting for their time at once (as a stopping
        simulator wakes its waits), hang up every connection."""
        listener, self._listener = self._listener, None
        if listener is None or self._shared is None:
            return

        def shut_down() -> None:
            listener.close()
            for connection in list(self._connections):
                connection._waited()
            for connection in list(self._connections):
                connection._close()

        self._shared.run(shut_down)

    def in_loop(self) -> bool:
        """Whether this thread is the loop the server runs on."""
        return self._shared is not None and threading.get_ident() == self._shared.thread.ident

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``."""
        if self._listener is None:
            raise RuntimeError(f"{self.name} is not running")
        host, port = self._listener.sockets[0].getsockname()[:2]
        return str(host), int(port)

    # --- for the connections ------------------------------------------------------------------

    def _pool_submit(self, fn: Callable[..., None], *args: Any) -> None:
        if self._shared is not None:
            self._shared.pool.submit(fn, *args)
