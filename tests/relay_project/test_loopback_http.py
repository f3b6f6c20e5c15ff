"""The simulators' shared HTTP framework: routing, answers, streams and hang-ups on a real
loopback server."""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate

import httpx
import pytest

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

router: Router[Request] = Router()


@router.route("GET", "/items/{item_id}", auth="user")
def one_item(req: Request) -> Response:
    return Response(body=req.path.encode(), content_type="text/plain")


@router.route("GET", "/files/{name:path}")
def one_file(req: Request) -> Response:
    return Response(body=req.path.encode(), content_type="text/plain")


def test_router_placeholders_match_one_segment_or_the_rest_of_the_path() -> None:
    route, params = match(router.routes, "GET", "/items/7")
    assert (route.handler, params, route.options) == (one_item, {"item_id": "7"}, {"auth": "user"})
    assert match(router.routes, "GET", "/items/7/more") is None
    assert match(router.routes, "POST", "/items/7") is None
    assert match(router.routes, "GET", "/files/a/b.txt")[1] == {"name": "a/b.txt"}


def test_router_accept_skips_routes_the_caller_refuses() -> None:
    refuse_user_routes = lambda route: route.options.get("auth") != "user"  # noqa: E731
    assert match(router.routes, "GET", "/items/7", accept=refuse_user_routes) is None


SENT: list[int] = []  # what on_sent heard


def app(req: Request) -> Response:
    if req.path == "/abort":
        raise Abort(Response(status=418, body=b'{"no": 1}'))
    if req.path == "/hang-up":
        response = Response.hang_up()
        response.on_sent = SENT.append
        return response
    if req.path == "/stream":
        frames: Iterator[bytes] = iter([b"data: 1\n\n", b"data: 2\n\n"])
        return Response(content_type="text/event-stream", stream=frames)
    if req.path == "/headers":
        seen = {"first": req.headers.get("x-twice"), "missing": req.headers.get("x-none", "-")}
        return Response(body=json.dumps({**seen, "items": req.headers.items()}).encode())
    return Response(body=req.body + req.query.get("q", "").encode(), headers={"X-A": "b"})


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    SENT.clear()
    server = LoopbackServer(app, host="127.0.0.1", port=0, name="t", software="t-sim/1.0")
    yield server.start()
    server.stop()


def test_server_answers_with_the_apps_response(server: LoopbackServer) -> None:
    host, port = server.address
    response = httpx.post(f"http://{host}:{port}/echo?q=!", content=b"hi")
    assert (response.status_code, response.text, response.headers["x-a"]) == (200, "hi!", "b")
    assert response.headers["server"].startswith("t-sim/1.0 ")


def test_server_dates_every_answer_with_the_second_it_leaves_in(server: LoopbackServer) -> None:
    """What the stdlib's Date header always said (the old code met this too)."""
    host, port = server.address
    with httpx.Client(base_url=f"http://{host}:{port}") as client:
        for pause in (0.0, 0.0, 1.0 - time.time() % 1 + 0.05, 0.0):  # the third, a second on
            time.sleep(pause)
            before = int(time.time())
            date = client.get("/echo").headers["date"]
            seconds = range(before, int(time.time()) + 1)
            assert date in [formatdate(second, usegmt=True) for second in seconds]


def test_server_answers_an_abort_and_streams_close_delimited(server: LoopbackServer) -> None:
    host, port = server.address
    aborted = httpx.get(f"http://{host}:{port}/abort")
    assert (aborted.status_code, aborted.json()) == (418, {"no": 1})
    streamed = httpx.get(f"http://{host}:{port}/stream")
    assert streamed.text == "data: 1\n\ndata: 2\n\n"
    assert (streamed.headers["connection"], "content-length" in streamed.headers) == (
        "close",
        False,
    )


def test_server_streams_in_chunks_over_a_kept_connection_when_asked() -> None:
    server = LoopbackServer(app, host="127.0.0.1", port=0, name="t", chunked_streams=True)
    host, port = server.start().address
    answers, ports = [], set()
    try:
        with httpx.Client(base_url=f"http://{host}:{port}") as client:
            for method, path in [("GET", "/stream"), ("GET", "/stream"), ("POST", "/echo")]:
                answers.append(client.request(method, path, content=b"after"))
                ports.add(answers[-1].extensions["network_stream"].get_extra_info("client_addr"))
    finally:
        server.stop()
    assert [a.text for a in answers] == ["data: 1\n\ndata: 2\n\n"] * 2 + ["after"]
    assert answers[0].headers["transfer-encoding"] == "chunked"
    assert "connection" not in answers[0].headers
    assert len(ports) == 1  # one connection for the three answers


def test_server_hangs_up_without_an_answer(server: LoopbackServer) -> None:
    host, port = server.address
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"http://{host}:{port}/hang-up")
    assert SENT == [0]  # told before the connection closed


def test_a_stopped_server_has_no_address(server: LoopbackServer) -> None:
    server.stop()
    assert not server.running
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.address


def test_server_reads_header_fields_like_the_email_parser_without_it(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Case folded, the first of repeated fields, every field listed as sent."""
    monkeypatch.setattr(http.client, "parse_headers", None)  # the stdlib's way is not taken
    with socket.create_connection(server.address) as raw:
        raw.sendall(
            b"GET /headers HTTP/1.1\r\nHost: t\r\nX-Twice: one \r\nx-twice:two\r\n"
            b"Connection: close\r\n\r\n"
        )
        answer = b"".join(iter(lambda: raw.recv(65536), b""))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert json.loads(body) == {
        "first": "one ",
        "missing": "-",
        "items": [["Host", "t"], ["X-Twice", "one "], ["x-twice", "two"], ["Connection", "close"]],
    }


def test_server_sends_head_and_body_in_one_write(
    server: LoopbackServer, socket_writes: list[bytes]
) -> None:
    writes = socket_writes
    host, port = server.address
    with httpx.Client() as client:  # one kept-alive connection for both
        first = client.post(f"http://{host}:{port}/echo", content=b"one")
        second = client.post(f"http://{host}:{port}/echo", content=b"two")
    assert (first.text, second.text) == ("one", "two")
    assert len(writes) == 2 and writes[1].endswith(b"\r\n\r\ntwo")


def test_a_client_that_resets_its_kept_connection_leaves_no_traceback(
    server: LoopbackServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """A worker killed between two requests resets its connections: the server drops them
    quietly, as Go's net/http does, instead of printing a traceback per connection."""
    host, port = server.address
    with socket.create_connection((host, port)) as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
    assert httpx.get(f"http://{host}:{port}/echo?q=after").text == "after"  # still serving
    time.sleep(0.2)
    assert "Traceback" not in capfd.readouterr().err


def test_connections_wait_in_the_listen_queue_while_the_loop_is_busy() -> None:
    """Many clients connecting at once while the server's loop cannot accept them (here its
    app holds it): the kernel queues them, as it does for the real host (Go listens with the
    system's maximum), where a queue of 5 dropped the rest for a second."""

    def holding(req: Request) -> Response:
        time.sleep(1.0)  # on the loop: nothing is accepted meanwhile
        return Response(body=b"held")

    server = LoopbackServer(holding, host="127.0.0.1", port=0, name="t", on_loop=True).start()
    first = socket.create_connection(server.address)
    clients = []
    try:
        first.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.1)  # the loop is in the app now
        for _ in range(64):
            clients.append(socket.create_connection(server.address, timeout=0.5))
        assert first.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        for client in [first, *clients]:
            client.close()
        server.stop()
    assert len(clients) == 64


def _on_loop(app, **options) -> LoopbackServer:
    return LoopbackServer(app, host="127.0.0.1", port=0, name="t", on_loop=True, **options)


def test_an_app_on_the_loop_waits_without_holding_a_thread() -> None:
    """A simulator's latency: every request waits on the loop (``After``), none on a thread."""
    server = _on_loop(lambda req: After(0.3, lambda: Response(body=req.path.encode()))).start()
    host, port = server.address
    threads_before = threading.active_count()
    answers: list[str] = []

    def ask(n: int) -> None:
        answers.append(httpx.get(f"http://{host}:{port}/{n}").text)

    askers = [threading.Thread(target=ask, args=(n,)) for n in range(16)]
    try:
        for asker in askers:
            asker.start()
        time.sleep(0.15)  # every request is waiting now
        waiting_threads = threading.active_count() - threads_before - len(askers)
        for asker in askers:
            asker.join()
    finally:
        server.stop()
    assert sorted(answers) == sorted(f"/{n}" for n in range(16))
    assert waiting_threads <= 1  # the loop's own thread, when it started for this server


def test_work_off_the_loop_may_block_while_the_loop_answers_others() -> None:
    def app(req: Request) -> Answer:
        if req.path == "/slow":
            return OffLoop(lambda: time.sleep(0.6) or Response(body=b"slow"))
        return Response(body=b"quick")

    server = _on_loop(app).start()
    url = "http://{}:{}".format(*server.address)
    slow: list[str] = []
    try:
        asker = threading.Thread(target=lambda: slow.append(httpx.get(url + "/slow").text))
        asker.start()
        time.sleep(0.1)
        started = time.monotonic()
        assert httpx.get(url + "/quick").text == "quick"
        quick_took = time.monotonic() - started
        asker.join()
    finally:
        server.stop()
    assert slow == ["slow"] and quick_took < 0.4


def test_stop_answers_the_requests_still_waiting_at_once() -> None:
    """As a stopping simulator wakes its waits: the answer goes out now, not in 30 s."""
    server = _on_loop(lambda req: After(30, lambda: Response(body=b"woken"))).start()
    answers: list[bytes] = []
    with socket.create_connection(server.address, timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.1)
        started = time.monotonic()
        server.stop()
        answers.append(b"".join(iter(lambda: raw.recv(65536), b"")))
        took = time.monotonic() - started
    assert answers[0].startswith(b"HTTP/1.1 200 ") and answers[0].endswith(b"woken")
    assert took < 2


def test_a_request_line_that_is_not_http_is_refused_and_hung_up(server: LoopbackServer) -> None:
    with socket.create_connection(server.address, timeout=5) as raw:
        raw.sendall(b"HELLO THERE\r\n\r\n")
        answer = b"".join(iter(lambda: raw.recv(65536), b""))
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close" in answer


def test_a_kept_connection_left_idle_is_closed_after_the_idle_timeout() -> None:
    server = LoopbackServer(app, host="127.0.0.1", port=0, name="t", idle_timeout=0.2).start()
    try:
        with socket.create_connection(server.address, timeout=5) as raw:
            raw.sendall(b"GET /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
            assert raw.recv(65536).startswith(b"HTTP/1.1 200 ")
            started = time.monotonic()
            assert raw.recv(65536) == b""  # the server hung up
            idle = time.monotonic() - started
    finally:
        server.stop()
    assert 0.1 < idle < 2


@pytest.mark.parametrize("on_loop", [True, False], ids=["on-loop", "off-loop"])
def test_an_app_that_fails_hangs_up_and_the_server_goes_on(on_loop: bool) -> None:
    def failing(req: Request) -> Response:
        if req.path == "/bug":
            raise RuntimeError("a simulator bug")
        return Response(body=b"fine")

    server = LoopbackServer(failing, host="127.0.0.1", port=0, name="t", on_loop=on_loop)
    url = "http://{}:{}".format(*server.start().address)
    try:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(url + "/bug")
        assert httpx.get(url + "/after").text == "fine"
    finally:
        server.stop()
