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

import contextlib
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


App = Callable[[Request], Response]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; without this, Nagle + delayed ACK add ~40 ms
    # to every answer.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        self.timeout = self.server.idle_timeout  # read by StreamRequestHandler.setup
        if self.server.software:
            self.server_version = self.server.software  # the Server header's first word
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s: " + format, self.server.name, *args)

    # The Date header's text for the current second (as Go's net/http keeps it), shared by
    # every answer of the process: formatting it took ~3 % of the simulators' CPU.
    _date: tuple[int, str] = (0, "")

    def date_time_string(self, timestamp: float | None = None) -> str:
        if timestamp is not None:
            return super().date_time_string(timestamp)
        now = int(time.time())
        second, text = _Handler._date
        if second != now:
            text = super().date_time_string(now)
            _Handler._date = (now, text)
        return text

    def parse_request(self) -> bool:
        """The stdlib's for a plain ``METHOD TARGET HTTP/1.x`` line, with the header fields
        read into ``Headers`` rather than through the ``email`` parser; any other request line
        goes to the stdlib as it is (its errors and HTTP/0.9 handling)."""
        words = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n").split()
        if len(words) != 3 or words[2] not in ("HTTP/1.1", "HTTP/1.0"):
            return super().parse_request()
        self.requestline = " ".join(words)
        self.command, self.path, self.request_version = words
        self.close_connection = words[2] != "HTTP/1.1"
        if self.path.startswith("//"):  # as the stdlib does (gh-87389): no open redirect
            self.path = "/" + self.path.lstrip("/")
        fields: list[tuple[str, str]] = []
        while True:
            line = self.rfile.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            if len(fields) >= _MAX_HEADERS:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
                return False
            text = line.decode("iso-8859-1")
            if text[0] in " \t" and fields:  # a folded continuation of the field before
                name, value = fields[-1]
                fields[-1] = (name, value + text.rstrip("\r\n"))
                continue
            name, colon, value = text.partition(":")
            if colon:
                fields.append((name, value.lstrip(" \t").rstrip("\r\n")))
        self.headers = Headers(fields)  # type: ignore[assignment]
        connection = (self.headers.get("Connection") or "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        expect = (self.headers.get("Expect") or "").lower()
        if expect == "100-continue" and self.request_version == "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def do_GET(self) -> None:
        target = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=target.path,
            query=dict(parse_qsl(target.query, keep_blank_values=True)),
            headers=self.headers,
            body=self.rfile.read(length) if length > 0 else b"",
        )
        try:
            response = self.server.app(request)
        except Abort as abort:
            response = abort.response
        self._write(response)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _write(self, response: Response) -> None:
        sent = 0
        try:
            if response.close:
                self.close_connection = True
            if response.silent:
                return
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if response.stream is None:
                self.send_header("Content-Length", str(len(response.body)))
                # Head and body in one write (one system call, one segment), where
                # end_headers() and a write of the body took two.
                self._headers_buffer.append(b"\r\n" + response.body)
                self.flush_headers()
                sent = response.status
                return
            if self.server.chunked_streams and self.request_version == "HTTP/1.1":
                self._write_chunked(response.stream)
                sent = response.status
                return
            # No length and no chunking: the stream ends when the connection closes, as many
            # providers do; HTTP/1.1 clients read until EOF.
            self.send_header("Connection", "close")
            self.close_connection = True
            self.end_headers()
            sent = response.status
            for chunk in response.stream:
                self.wfile.write(chunk)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout fired)
            self.close_connection = True
        finally:
            if response.on_sent is not None:
                response.on_sent(sent)

    def _write_chunked(self, stream: Iterator[bytes]) -> None:
        """A stream in chunks, as Go's net/http sends one (the sub2api host): the connection
        stays open for the next request. A stream that fails midway ends without the last
        chunk, so the client sees the answer cut short."""
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in stream:
                if chunk:  # an empty chunk would end the answer
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except BaseException:
            self.close_connection = True
            raise
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Connections the kernel queues for the accept loop, as Go's net.Listen asks (the system's
    # maximum): socketserver's 5 made the kernel drop the connects beyond them while the loop
    # waited for the GIL, and each dropped client waited a second before trying again.
    request_queue_size = socket.SOMAXCONN
    app: App
    name: str
    software: str | None
    idle_timeout: float | None
    chunked_streams: bool

    def handle_error(self, request, client_address) -> None:
        """A client that went away (a killed worker resets the connections it kept open) is
        dropped quietly, as Go's net/http drops it; anything else is printed as before."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    """``app`` served by a ``ThreadingHTTPServer`` (one thread per connection) on a daemon
    thread; ``start()`` binds (port 0 = an ephemeral port), ``stop()`` shuts down.

    Streamed answers end when the connection closes, as many providers send them, or with
    ``chunked_streams`` go in chunks over a connection that stays open."""

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
    ) -> None:
        self._app, self._bind, self.name = app, (host, port), name
        self._software, self._idle_timeout = software, idle_timeout
        self._chunked_streams = chunked_streams
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> LoopbackServer:
        server = _Server(self._bind, _Handler)
        server.app, server.name = self._app, self.name
        server.software, server.idle_timeout = self._software, self._idle_timeout
        server.chunked_streams = self._chunked_streams
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            # Each wake-up is Python work: a bench runs 21 servers at once. stop() wakes the
            # loop itself, so this only bounds a stop whose wake-up connection failed.
            kwargs={"poll_interval": 0.5},
            name=self.name,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        # shutdown() waits for the serving loop to see its flag, which it checks only when its
        # select() returns: a connection makes it return now rather than at the poll interval.
        stopping = threading.Thread(target=server.shutdown, name=f"{self.name}-stop")
        stopping.start()
        while stopping.is_alive():
            _wake(server.server_address[:2])
            stopping.join(0.05)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``."""
        if self._server is None:
            raise RuntimeError(f"{self.name} is not running")
        host, port = self._server.server_address[:2]
        return str(host), int(port)


def _wake(address: tuple[str, int]) -> None:
    """Connect to a listening server and hang up (its handler reads EOF and ends)."""
    with contextlib.suppress(OSError):
        socket.create_connection(address, timeout=0.2).close()
