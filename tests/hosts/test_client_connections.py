"""The host client's keep-alive pool, against a real loopback server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

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
    """30 items calling the host at once, twice: the second time every call finds a kept
    connection (httpx keeps 20 by default: 10 calls connected again each time)."""
    calls = 30
    address = "http://{}:{}".format(*host.server_address)
    client = Sub2ApiClient(address, admin_api_key=ADMIN_KEY, max_concurrency=calls)
    with ThreadPoolExecutor(calls) as pool:
        for _ in range(2):
            list(pool.map(lambda _: client.http.admin("GET", "/groups"), range(calls)))
    assert len(host.connections) <= calls
