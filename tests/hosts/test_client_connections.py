"""Keep-alive pools toward a real loopback server: the host client's, and the host
simulator's toward its upstreams (as the real host keeps them)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hosts.simulator.server import HostSimulator
from hosts.sub2api import Sub2ApiClient

ADMIN_KEY = "admin-" + "ab" * 32
BODY = json.dumps({"code": 0, "message": "success", "data": {"items": []}}).encode()


class Host(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    connections: set[tuple[str, int]]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def do_GET(self) -> None:
        self.server.connections.add(self.client_address)
        time.sleep(0.05)  # the calls overlap
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def host() -> Iterator[Host]:
    server = Host(("127.0.0.1", 0), Handler)
    server.connections = set()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_client_keeps_a_connection_for_each_call_it_may_run_at_once(host: Host) -> None:
    """Items calling the host at once, twice: the second time every call finds a kept
    connection (httpx keeps 20 by default: the calls past them connected again)."""
    client = Sub2ApiClient(address(host), admin_api_key=ADMIN_KEY, max_concurrency=CALLS)
    twice_at_once(lambda: client.http.admin("GET", "/groups"))
    assert len(host.connections) <= CALLS


def test_the_host_simulator_keeps_its_connections_to_upstreams(host: Host) -> None:
    """The real host keeps up to 120 idle connections per upstream, 240 in all
    (backend/internal/repository/http_upstream.go)."""
    simulator = HostSimulator()
    url = address(host) + "/v1/models"
    twice_at_once(lambda: simulator.upstream.get(url).raise_for_status())
    assert len(host.connections) <= CALLS


CALLS = 30


def address(host: Host) -> str:
    return "http://{}:{}".format(*host.server_address)


def twice_at_once(call) -> None:
    """``call`` from CALLS threads at once, twice."""
    with ThreadPoolExecutor(CALLS) as pool:
        for _ in range(2):
            list(pool.map(lambda _: call(), range(CALLS)))


def test_the_host_client_goes_through_a_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a proxy the client uses the pooled transport; with one httpx's own
    transport, which goes through it, as it always did."""
    import httpx

    from relay_project.pooled_http import PooledTransport

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    direct = Sub2ApiClient("https://host.example.com", admin_api_key=ADMIN_KEY)
    assert isinstance(direct.http._client._transport, PooledTransport)

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.com:3128")
    proxied = Sub2ApiClient("https://host.example.com", admin_api_key=ADMIN_KEY)
    assert isinstance(proxied.http._client._transport, httpx.HTTPTransport)
    mounted = proxied.http._client._transport_for_url(httpx.URL("https://host.example.com/"))
    assert mounted is not proxied.http._client._transport  # the proxy's


def test_calls_go_straight_to_our_transport_and_through_the_client_to_a_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The client's own layers do nothing for the host's calls (``send_plainly``), except
    where httpx's transport goes through a proxy: its mounts are the client's."""
    import httpx

    through_client: list[str] = []

    def client_send(self, request, **kwargs):
        through_client.append(str(request.url))
        return httpx.Response(200, content=BODY, request=request)

    monkeypatch.setattr(httpx.Client, "send", client_send)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    answered: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        answered.append(request.headers["x-api-key"])
        return httpx.Response(200, content=BODY)

    given = Sub2ApiClient(
        "https://host.example.com", admin_api_key=ADMIN_KEY, transport=httpx.MockTransport(handler)
    )
    assert given.http.admin("GET", "/groups") == {"items": []}
    assert (answered, through_client) == ([ADMIN_KEY], [])

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.com:3128")
    proxied = Sub2ApiClient("https://host.example.com", admin_api_key=ADMIN_KEY)
    assert proxied.http.admin("GET", "/groups") == {"items": []}
    assert through_client == ["https://host.example.com/api/v1/admin/groups"]
