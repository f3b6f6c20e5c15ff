"""The cluster's processes (``providers.cluster``), started as deployments start them:
``manage.py run_workers`` and ``manage.py qcluster`` on SQLite and the ORM broker."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MANAGE = [sys.executable, str(ROOT / "manage.py")]
pytestmark = pytest.mark.integration


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the name (state, parent, group…); None once
    it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields


def _children(pid: int) -> list[int]:
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) and int(fields[1]) == pid
    ]


def _wait_for(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


@pytest.fixture
def cluster_env(tmp_path):
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'q.sqlite3'}",
        "RELAY_Q_LOG_LEVEL": "INFO",
        "RELAY_CONCURRENCY": "2",
    }
    env.pop("PYTEST_CURRENT_TEST", None)
    # The cluster on the ORM broker needs django_q's tables only.
    subprocess.run([*MANAGE, "migrate", "django_q", "-v0"], env=env, check=True, timeout=120)
    return env


def _start(env: dict, log: Path, *command: str) -> subprocess.Popen:
    with log.open("w") as out:
        cluster = subprocess.Popen(
            [*MANAGE, *command],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a group of its own, as the demo and systemd start it
        )
    _wait_for(lambda: "running" in log.read_text() or cluster.poll() is not None, "start")
    assert cluster.poll() is None, log.read_text()
    return cluster


def _sleep_in_a_worker(env: dict, log: Path) -> int:
    """Queue a task that sleeps a minute; the pid of the worker that took it."""
    enqueue = "from django_q.tasks import async_task; async_task('time.sleep', 60)"
    subprocess.run([*MANAGE, "shell", "-c", enqueue], env=env, check=True, timeout=60)
    _wait_for(lambda: "processing" in log.read_text(), "the task taken", timeout=30)
    text = log.read_text()
    (busy,) = re.findall(r"(Process-\w+) processing", text)
    (pid,) = re.findall(rf"{busy} ready for work at (\d+)", text)
    return int(pid)


@pytest.fixture
def started(cluster_env, tmp_path):
    """Start a command's cluster; kill whatever is left of it afterwards."""
    processes: list[int] = []

    def start(*command: str) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / "cluster.log"
        cluster = _start(cluster_env, log, *command)
        processes.extend([cluster.pid, *_children(cluster.pid)])
        return cluster, log

    yield start
    for pid in processes:  # each leads a group of its own
        if _stat(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


@pytest.mark.parametrize("command", [["run_workers"], ["qcluster"]])
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_the_command_is_the_sentinel_and_a_signal_to_its_group_stops_the_cluster(
    started, command, stop_signal
):
    """No process only waits: the command's children are the two workers, the monitor and
    the pusher, each in a group of its own, and they start nothing. A signal to the
    command's whole group (the demo, ``kill -- -PGID``, a terminal's Ctrl-C) reaches the
    sentinel alone, which stops them in order."""
    cluster, log = started(*command)
    children = _children(cluster.pid)
    assert len(children) == 4, log.read_text()
    # Each takes a group of its own as it starts (its first step after the fork).
    _wait_for(lambda: all(int(_stat(child)[2]) == child for child in children), "own groups", 10)
    assert [_children(child) for child in children] == [[]] * 4
    os.killpg(cluster.pid, stop_signal)
    assert cluster.wait(timeout=30) == 0, log.read_text()
    text = log.read_text()
    assert "stopped doing work" in text
    assert "stopped monitoring results" in text
    assert "has stopped" in text
    assert [pid for pid in children if _stat(pid)] == []


def test_a_worker_ended_by_sigterm_in_a_task_is_replaced_and_the_cluster_runs_on(
    started, cluster_env
):
    """The sentinel ends a worker past its task's timeout with SIGTERM: the worker must die of
    it (not take it for the cluster's stop), and the sentinel starts another."""
    cluster, log = started("run_workers")
    victim = _sleep_in_a_worker(cluster_env, log)
    os.kill(victim, signal.SIGTERM)
    _wait_for(lambda: "reincarnated worker" in log.read_text(), "a new worker", timeout=30)
    children = _children(cluster.pid)
    assert victim not in children
    assert len(children) == 4
    assert cluster.poll() is None
    assert "stopping cluster processes" not in log.read_text()
    cluster.send_signal(signal.SIGTERM)
    assert cluster.wait(timeout=30) == 0, log.read_text()


def test_a_cluster_still_stopping_after_the_grace_period_is_killed(started, cluster_env):
    cluster, log = started("run_workers", "--grace", "2")
    busy = _sleep_in_a_worker(cluster_env, log)
    children = _children(cluster.pid)
    began = time.monotonic()
    cluster.send_signal(signal.SIGTERM)
    assert cluster.wait(timeout=30) == 1, log.read_text()
    assert 2 <= time.monotonic() - began < 20
    assert "did not stop within 2s: killed" in log.read_text()
    _wait_for(lambda: not [pid for pid in children if _stat(pid)], "the children gone", 10)
    assert _stat(busy) is None


def test_the_children_die_with_a_sentinel_killed_outright(started):
    cluster, _log = started("run_workers")
    children = _children(cluster.pid)
    assert len(children) == 4
    cluster.kill()
    cluster.wait(timeout=10)
    _wait_for(lambda: not [pid for pid in children if _stat(pid)], "the children gone", 10)
