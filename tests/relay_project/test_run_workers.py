"""A cluster signalled as a whole process group stops, with every process it started."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from relay_project.supervise import supervise

ROOT = Path(__file__).resolve().parents[2]


def _processes() -> list[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every live process."""
    rows = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                rows.append((int(entry.name), int(fields[1]), int(fields[2])))
    return rows


def _group_alive(pgid: int) -> list[int]:
    return [pid for pid, _parent, group in _processes() if group == pgid]


@pytest.mark.integration
def test_sigterm_to_the_process_group_stops_the_cluster(tmp_path):
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'q.sqlite3'}",
        "RELAY_Q_LOG_LEVEL": "INFO",
        "RELAY_TASK_TIMEOUT": "5",
        "RELAY_INLINE_RETRY_MAX_DELAY": "2",
    }
    env.pop("PYTEST_CURRENT_TEST", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    # The cluster on the ORM broker needs django_q's tables only (no task runs here).
    subprocess.run([*manage, "migrate", "django_q", "-v0"], env=env, check=True, timeout=120)
    log = tmp_path / "workers.log"
    with log.open("w") as out:
        wrapper = subprocess.Popen(
            [*manage, "run_workers", "--grace", "20"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while "running" not in log.read_text() and time.monotonic() < deadline:
            assert wrapper.poll() is None, log.read_text()
            time.sleep(0.2)
        assert "running" in log.read_text(), log.read_text()
        # The command became the supervisor (no Django in a process that only waits)…
        command_line = Path(f"/proc/{wrapper.pid}/cmdline").read_bytes().split(b"\0")
        assert command_line[1:3] == [b"-P", str(ROOT / "relay_project" / "supervise.py").encode()]
        # …of the cluster in a group of its own: the sentinel, workers, monitor and pusher.
        (cluster,) = [pid for pid, parent, _group in _processes() if parent == wrapper.pid]
        assert len(_group_alive(cluster)) >= 3
        os.killpg(wrapper.pid, signal.SIGTERM)  # the whole group, as systemd and the demo do
        assert wrapper.wait(timeout=30) == 0, log.read_text()
        assert "has stopped" in log.read_text()
        assert _group_alive(wrapper.pid) == []
        assert _group_alive(cluster) == []
    finally:
        if wrapper.poll() is None:
            os.killpg(wrapper.pid, signal.SIGKILL)


def test_the_supervisor_kills_a_cluster_that_outlives_its_grace(capfd, tmp_path):
    ready = tmp_path / "ready"
    ignores_sigterm = (
        "import pathlib, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"
    )
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)

    def stop_once_supervising() -> None:  # as systemd would, once the handler is in place
        while signal.getsignal(signal.SIGTERM) == previous[0] or not ready.exists():
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    started = time.monotonic()
    threading.Thread(target=stop_once_supervising, daemon=True).start()
    try:
        code = supervise(
            [sys.executable, "-c", ignores_sigterm], grace=0.5, timeout_message="killed it"
        )
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
    assert code == 1
    assert time.monotonic() - started < 10
    assert "killed it" in capfd.readouterr().err


def test_a_command_that_ends_on_its_own_gives_its_code():
    assert (
        supervise([sys.executable, "-c", "raise SystemExit(3)"], grace=1, timeout_message="") == 3
    )
    assert supervise([sys.executable, "-c", "pass"], grace=1, timeout_message="") == 0


def test_the_supervisor_imports_the_standard_library_only():
    """It runs as a script beside Django's modules, for the life of the cluster."""
    tree = ast.parse((ROOT / "relay_project" / "supervise.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported - {"__future__"} <= set(sys.stdlib_module_names)
