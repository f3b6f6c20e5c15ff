"""The simulators' shared HTTP framework: routing, answers, streams and hang-ups on a real
loopback server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from relay_project.loopback_http import (
    Abort,
    LoopbackServer,
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
