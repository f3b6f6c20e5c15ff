"""A cluster signalled as a whole process group stops, with every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
        (cluster,) = [pid for pid, parent, _group in _processes() if parent == wrapper.pid]
        assert len(_group_alive(cluster)) >= 3  # cluster, sentinel, workers, monitor, pusher
        os.killpg(wrapper.pid, signal.SIGTERM)  # the whole group, as systemd and the demo do
        assert wrapper.wait(timeout=30) == 0, log.read_text()
        assert "has stopped" in log.read_text()
        assert _group_alive(wrapper.pid) == []
        assert _group_alive(cluster) == []
    finally:
        if wrapper.poll() is None:
            os.killpg(wrapper.pid, signal.SIGKILL)
