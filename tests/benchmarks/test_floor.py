"""The floor of the bench (``benchmarks.floor``): the pipeline's I/O with no framework, run
for real over an upstream simulator, and its line in the table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from benchmarks.floor import CALLS, Calls
from tests.benchmarks.test_pg_settings import _rows

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _database_url(tmp_path: Path) -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        return url  # its tables are floor_*, dropped at the end
    return f"sqlite:///{tmp_path / 'floor.sqlite3'}"


def test_every_item_makes_its_calls_and_statements_in_the_processes_asked(
    upstream_factory, tmp_path
) -> None:
    upstreams = [upstream_factory(api_key=None) for _ in range(2)]
    command = [sys.executable, "-m", "benchmarks.floor", "--database-url", _database_url(tmp_path)]
    command += ["--items", "12", "--processes", "2", "--threads", "3"]
    for upstream in upstreams:
        command += ["--upstream", upstream.base_url]
    answer = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)

    figures = json.loads(answer.stdout)
    assert figures["items"] == 12
    assert (figures["processes"], figures["threads"]) == (2, 3)
    assert figures["statements_per_item"] == 23
    assert figures["calls_per_item"] == CALLS
    assert sum(len(upstream.requests) for upstream in upstreams) == 12 * CALLS
    assert {len(upstream.requests) for upstream in upstreams} == {6 * CALLS}
    assert figures["cpu_ms_per_item"] > figures["kernel_ms_per_item"] > 0
    assert figures["wall_s"] > 0


def test_a_refused_call_fails_the_floor_instead_of_counting_it(upstream_factory, tmp_path) -> None:
    refusing = upstream_factory(api_key="sk-only-this")
    command = [sys.executable, "-m", "benchmarks.floor", "--database-url", _database_url(tmp_path)]
    command += ["--items", "2", "--processes", "1", "--threads", "1"]
    command += ["--upstream", refusing.base_url]
    answer = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert answer.returncode != 0
    assert "HTTP 401" in answer.stderr


class _ClosesAfterEachAnswer(BaseHTTPRequestHandler):
    """Answers, then closes the connection without saying so (as a server does with a
    connection it kept idle too long)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


def test_a_kept_connection_the_server_closed_is_replaced() -> None:
    """With many upstreams per thread a kept connection idles past the simulator's timeout:
    the next call goes out again on a new one instead of failing the floor."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ClosesAfterEachAnswer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        calls = Calls()
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/models"
        assert [calls.call(url) for _ in range(3)] == [{"ok": True}] * 3
    finally:
        server.shutdown()
        server.server_close()


def test_the_table_puts_the_floor_beside_the_scenario() -> None:
    floor = {
        "items": 1000,
        "wall_s": 6.7,
        "ratio_to_target_floor": 0.84,
        "cpu_ms_per_item": 3.0,
        "kernel_ms_per_item": 0.9,
        "calls_per_item": 8,
        "statements_per_item": 23.0,
    }
    rows = dict(_rows({"floor": floor, "ours_over_floor_cpu": 6.7}))
    assert rows["  same I/O, no framework (1,000 items, benchmarks/floor.py)"] == (
        "6.7 s, wall/floor = 0.84; CPU 3.0 ms per item (0.9 kernel) for 8 calls and "
        "23 statements; ours / floor = 6.7"
    )


def test_a_result_without_the_floor_has_no_line_of_it() -> None:
    assert not [label for label, _ in _rows({}) if "no framework" in label]
