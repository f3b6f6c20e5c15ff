"""The pooled httpx transport against real loopback servers (plain and TLS): what
it sends, what it keeps open and for how long, how it streams, how it fails."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from relay_project.pooled_http import PooledTransport, send_plainly


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.connections: set[tuple[str, int]] = set()
        self.seen: list[dict] = []
        self.release = threading.Event()
        # Ten calls at once (``/together``): each answer waits for all ten to have arrived.
        self.together = threading.Barrier(10)

    @property
    def url(self) -> str:
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        host = "localhost" if scheme == "https" else "127.0.0.1"
        return f"{scheme}://{host}:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless an answer says otherwise

    def do_GET(self) -> None:
        self.server.connections.add(self.client_address)
        if self.headers.get("Transfer-Encoding") == "chunked":
            body = b""
            while size := int(self.rfile.readline().strip(), 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
        self.server.seen.append(
            {"path": self.path, "method": self.command, "headers": dict(self.headers), "body": body}
        )
        route = getattr(self, "route_" + self.path.split("?")[0].strip("/").replace("-", "_"))
        route()

    do_POST = do_GET
    do_HEAD = do_GET

    def answer(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def route_echo(self) -> None:
        seen = self.server.seen[-1]
        body = json.dumps({"path": self.path, "body": seen["body"].decode()}).encode()
        self.answer(201, body, Content_Type="application/json", X_Latin="caf\xe9")

    def route_slow(self) -> None:
        time.sleep(0.05)  # calls overlap
        self.answer(200, b"{}")

    def route_together(self) -> None:
        self.server.together.wait(timeout=10)  # all ten in flight, however loaded the machine
        self.answer(200, b"{}")

    def route_closing(self) -> None:
        self.answer(200, b"{}", Connection="close")
        self.close_connection = True

    def route_hang_up(self) -> None:
        self.close_connection = True  # no answer at all

    def route_short(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        self.wfile.write(b"only ten..")
        self.close_connection = True

    def route_sleepy(self) -> None:
        time.sleep(0.5)
        self.answer(200, b"{}")

    def route_events(self) -> None:
        """Server-sent events in chunks; the second only after the client has read the first."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in (b"data: one\n\n", b"data: two\n\n"):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
            self.server.release.wait(5)
        self.wfile.write(b"0\r\n\r\n")

    def route_unframed(self) -> None:
        """A body with neither a length nor chunks: it ends where the connection does."""
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"until the end")
        self.close_connection = True

    def route_nothing(self) -> None:
        if self.command == "HEAD":
            self.send_response(200)
            self.send_header("Content-Length", "5")  # what a GET would have
            self.end_headers()
        else:
            self.send_response(204)
            self.end_headers()

    def route_extra(self) -> None:
        # In one write, so that it arrives with the answer: nobody asked for a second one.
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n")

    def route_interim(self) -> None:
        self.wfile.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n")
        self.answer(200, b"final", X_Final="yes")

    def route_garbled(self) -> None:
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: nine\r\n\r\n")
        self.close_connection = True

    def route_big(self) -> None:
        self.answer(200, b"x" * 300_000)

    def log_message(self, *args) -> None:
        pass


def serving(server: Server) -> Iterator[Server]:
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    yield from serving(Server())


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 (its own CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[Server]:
    server = Server()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    yield from serving(server)


def client(**options) -> httpx.Client:
    return httpx.Client(transport=PooledTransport(**options), timeout=5)


def test_a_call_sends_what_httpx_built_and_reads_the_answer(server: Server) -> None:
    with client() as http:
        response = http.post(
            server.url + "/echo?page=2&q=a%20b",
            json={"k": "v"},
            headers={"Authorization": "Bearer sk"},
        )
    assert response.status_code == 201
    assert response.reason_phrase == "Created"
    assert response.http_version == "HTTP/1.1"
    assert response.json() == {"path": "/echo?page=2&q=a%20b", "body": '{"k":"v"}'}
    assert response.headers["x-latin"] == "caf\xe9"
    headers = server.seen[0]["headers"]
    assert headers["Authorization"] == "Bearer sk"
    assert headers["Host"] == server.url.split("//")[1]
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept-Encoding"] != "identity"  # httpx's own


def test_a_streamed_body_is_sent_in_chunks(server: Server) -> None:
    def parts():
        yield b'{"k":'
        yield b'"v"}'

    transport = PooledTransport()
    with httpx.Client(transport=transport) as http:
        assert http.post(server.url + "/echo", content=parts()).json()["body"] == '{"k":"v"}'
        assert http.post(server.url + "/echo", content=iter([])).json()["body"] == ""
        http.get(server.url + "/slow").raise_for_status()  # the connection stayed in step
    assert transport.connections_opened == 1


def test_a_plain_call_sends_what_the_client_sends_and_reads_the_answer(server: Server) -> None:
    transport = PooledTransport()
    http = httpx.Client(transport=transport, timeout=5, headers={"User-Agent": "ours"})
    url = httpx.URL(server.url + "/echo?q=a%20b")
    by_client = http.post(url, json={"k": "v"}, headers={"Authorization": "Bearer sk"})
    plain = send_plainly(
        http, transport, "POST", url, json={"k": "v"}, headers={"Authorization": "Bearer sk"}
    )

    assert [seen["headers"] for seen in server.seen] == [server.seen[0]["headers"]] * 2
    assert server.seen[1]["headers"]["User-Agent"] == "ours"
    assert [seen["body"] for seen in server.seen] == [b'{"k":"v"}'] * 2
    assert (plain.status_code, plain.json(), plain.headers["x-latin"]) == (
        by_client.status_code,
        by_client.json(),
        "caf\xe9",
    )
    assert plain.request.url == url and plain.is_closed
    assert transport.connections_opened == 1  # read to its end: the connection kept


def test_a_plain_call_goes_past_the_clients_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's send (auth flow, redirects, hooks) is not run: a 3xx is the answer."""

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("the client's send ran")

    transport = httpx.MockTransport(lambda request: httpx.Response(302, headers={"Location": "/"}))
    http = httpx.Client(transport=transport, timeout=httpx.Timeout(3, read=7))
    monkeypatch.setattr(httpx.Client, "send", refused)
    answer = send_plainly(http, transport, "GET", httpx.URL("https://example.com/a"))

    assert answer.status_code == 302
    assert answer.request.extensions["timeout"] == {
        "connect": 3,
        "read": 7,
        "write": 3,
        "pool": 3,
    }


def test_calls_one_after_another_share_one_connection(server: Server) -> None:
    transport = PooledTransport()
    with httpx.Client(transport=transport) as http:
        for _ in range(5):
            http.get(server.url + "/slow").raise_for_status()
    assert len(server.connections) == 1
    assert transport.connections_opened == 1


def test_calls_at_once_keep_a_connection_each_up_to_the_bound(server: Server) -> None:
    transport = PooledTransport(max_keepalive=10)
    together = server.url + "/together"
    with httpx.Client(transport=transport) as http, ThreadPoolExecutor(10) as pool:
        for _ in range(2):
            list(pool.map(lambda _: http.get(together).raise_for_status(), range(10)))
    assert len(server.connections) == 10  # the second burst found the first one's ten
    assert transport.connections_opened == 10

    small = PooledTransport(max_keepalive=2)
    with httpx.Client(transport=small) as http, ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda _: http.get(together).raise_for_status(), range(10)))
        assert sum(len(kept) for kept in small._idle.values()) == 2


def test_a_connection_the_answer_closes_is_not_kept(server: Server) -> None:
    with client() as http:
        http.get(server.url + "/closing").raise_for_status()
        http.get(server.url + "/closing").raise_for_status()
    assert len(server.connections) == 2


def test_a_kept_connection_the_server_closed_is_replaced_without_an_error(server: Server) -> None:
    transport = PooledTransport()
    with httpx.Client(transport=transport) as http:
        http.get(server.url + "/slow").raise_for_status()
        (kept,) = transport._idle.values()
        kept[0][0].shutdown(socket.SHUT_RD)  # as if the server had hung up while idle
        http.get(server.url + "/slow").raise_for_status()
    assert transport.connections_opened == 2


def test_an_idle_connection_expires(server: Server) -> None:
    with client(keepalive_expiry=0.05) as http:
        http.get(server.url + "/slow").raise_for_status()
        time.sleep(0.1)
        http.get(server.url + "/slow").raise_for_status()
    assert len(server.connections) == 2


def test_an_event_stream_is_read_as_it_arrives(server: Server) -> None:
    transport = PooledTransport()
    with httpx.Client(transport=transport) as http:
        with http.stream("GET", server.url + "/events") as response:
            lines = response.iter_lines()
            assert next(lines) == "data: one"  # the server waits for this before the rest
            server.release.set()
            assert [line for line in lines if line] == ["data: two"]
        http.get(server.url + "/slow").raise_for_status()
    assert len(server.connections) == 1  # read to its end, the connection was kept


def test_a_body_without_a_length_ends_where_the_connection_does(server: Server) -> None:
    transport = PooledTransport()
    with httpx.Client(transport=transport) as http:
        assert http.get(server.url + "/unframed").content == b"until the end"
        assert transport._idle == {}
        http.get(server.url + "/slow").raise_for_status()
    assert transport.connections_opened == 2


def test_answers_without_a_body_end_with_their_head(server: Server) -> None:
    transport = PooledTransport()
    with httpx.Client(transport=transport) as http:
        empty = http.get(server.url + "/nothing")
        head = http.head(server.url + "/nothing")
        http.get(server.url + "/slow").raise_for_status()
    assert (empty.status_code, empty.content) == (204, b"")
    assert (head.status_code, head.headers["content-length"], head.content) == (200, "5", b"")
    assert transport.connections_opened == 1


def test_an_interim_answer_is_passed_over(server: Server) -> None:
    with client() as http:
        response = http.get(server.url + "/interim")
    assert (response.status_code, response.content) == (200, b"final")
    assert "link" not in response.headers and response.headers["x-final"] == "yes"


def test_bytes_after_an_answer_close_its_connection(server: Server) -> None:
    transport = PooledTransport()
    with httpx.Client(transport=transport) as http:
        assert http.get(server.url + "/extra").json() == {}
        http.get(server.url + "/slow").raise_for_status()
    assert transport.connections_opened == 2


def test_a_header_that_would_break_the_request_is_refused_unsent(server: Server) -> None:
    transport = PooledTransport()
    with httpx.Client(transport=transport) as http:
        for headers in ({"Authorization": "Bearer sk\r\nX-Injected: 1"}, {"X Bad": "v"}):
            with pytest.raises(httpx.LocalProtocolError):
                http.get(server.url + "/slow", headers=headers)
    assert transport.connections_opened == 0 and server.seen == []


def test_a_stream_left_early_closes_its_connection(server: Server) -> None:
    server.release.set()
    transport = PooledTransport()
    with httpx.Client(transport=transport) as http:
        with http.stream("GET", server.url + "/big") as response:
            next(response.iter_raw())
        assert transport._idle.get(("http", "127.0.0.1", server.server_address[1])) is None
        assert len(http.get(server.url + "/big").content) == 300_000
    assert len(server.connections) == 2


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/hang-up", httpx.RemoteProtocolError),
        ("/short", httpx.RemoteProtocolError),
        ("/sleepy", httpx.ReadTimeout),
        ("/garbled", httpx.RemoteProtocolError),
    ],
)
def test_failures_are_httpx_errors(server: Server, path: str, error: type[Exception]) -> None:
    with httpx.Client(transport=PooledTransport(), timeout=0.2) as http, pytest.raises(error):
        http.get(server.url + path).read()


def test_nobody_listening_is_a_connect_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with client() as http, pytest.raises(httpx.ConnectError):
        http.get(f"http://127.0.0.1:{port}/")


def test_the_connector_opens_every_connection(server: Server) -> None:
    opened = []

    def connector(address, timeout=None, source_address=None):
        opened.append((address, timeout))
        return socket.create_connection(address, timeout, source_address)

    with client(connector=connector, keepalive_expiry=0) as http:
        http.get(server.url + "/slow")
        http.get(server.url + "/slow")
    assert opened == [(("127.0.0.1", server.server_address[1]), 5)] * 2


def test_tls_verifies_the_server_and_keeps_the_connection(
    tls_server: Server, certificate: tuple[Path, Path]
) -> None:
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    transport = PooledTransport(ssl_context=trusting)
    with httpx.Client(transport=transport) as http:
        assert http.post(tls_server.url + "/echo", content=b"x").json()["body"] == "x"
        http.get(tls_server.url + "/slow").raise_for_status()
    assert transport.connections_opened == 1

    with client() as strict, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        strict.get(tls_server.url + "/slow")


def test_only_http_and_https(server: Server) -> None:
    with client() as http, pytest.raises(httpx.UnsupportedProtocol):
        http.get("ftp://127.0.0.1/file")


def test_an_answer_read_to_its_end_is_freed_without_the_collector(server: Server) -> None:
    """Its parser holds it (the callbacks): a cycle the collector, which the workers run
    rarely, would have had to break, and each answer's read buffer with it."""
    import gc
    import weakref

    from relay_project import pooled_http

    answers = []
    made = pooled_http._Answer

    class Watched(made):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            answers.append(weakref.ref(self))

    transport = PooledTransport()
    gc.disable()
    try:
        with httpx.Client(transport=transport) as http:
            pooled_http._Answer = Watched
            try:
                assert http.get(server.url + "/slow").json() == {}
                with pytest.raises(httpx.RemoteProtocolError):
                    http.get(server.url + "/hang-up")
            finally:
                pooled_http._Answer = made
        assert len(answers) == 2 and [ref() for ref in answers] == [None, None]
    finally:
        gc.enable()
