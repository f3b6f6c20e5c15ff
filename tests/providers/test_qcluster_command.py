"""``manage.py qcluster`` loads what its processes run and freezes it before they are forked."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import get_commands

from batch_import.management.commands.setup_schedules import schedules
from providers.management.commands.qcluster import task_modules

ROOT = Path(__file__).resolve().parents[2]


def test_qcluster_is_ours():
    assert get_commands()["qcluster"] == "providers"


def test_every_scheduled_task_module_is_preloaded():
    scheduled = {func.rpartition(".")[0] for func, _minutes in schedules().values()}
    assert scheduled <= task_modules()
    assert {"batch_import.tasks", "providers.tasks"} <= task_modules()


def test_no_after_run_task_is_nothing_to_load(settings):
    settings.RELAY_AFTER_RUN_TASK = ""
    assert "" not in task_modules()


def test_the_cluster_starts_with_its_task_modules_loaded_and_frozen(monkeypatch):
    """In a process of its own (freezing is for the life of the process), started from the
    command line as deployments start it (``call_command`` skips the system checks)."""
    script = (
        "import gc, json, sys, django\n"
        "django.setup()\n"
        "from providers.management.commands import qcluster as ours\n"
        "seen = {}\n"
        "def run_sentinel(**options):\n"
        "    seen['frozen'] = gc.get_freeze_count()\n"
        "    seen['loaded'] = sorted(m for m in ('batch_import.tasks', 'providers.tasks')"
        " if m in sys.modules)\n"
        "    unused = ('tldextract', 'requests', 'rest_framework.views',"
        " 'drf_spectacular.openapi')\n"
        "    seen['unused'] = sorted(m for m in unused if m in sys.modules)\n"
        "ours.run_sentinel = run_sentinel\n"
        "from django.core.management import execute_from_command_line\n"
        "execute_from_command_line(['manage.py', 'qcluster'])\n"
        "print(json.dumps(seen))\n"
    )
    env = {**os.environ, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "relay_project.settings"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["frozen"] > 10_000
    assert seen["loaded"] == ["batch_import.tasks", "providers.tasks"]
    # Only run creation names providers, only the web side serves views: the workers never
    # load what those take.
    assert seen["unused"] == []


def _task_package(name: str, *, success: bool) -> dict:
    from django.utils import timezone

    now = timezone.now()
    return {
        "id": name.replace("-", "") + "0" * 8,
        "name": name,
        "func": "batch_import.tasks.advance_items",
        "args": (),
        "kwargs": {},
        "started": now,
        "stopped": now,
        "result": None if success else "boom",
        "success": success,
        "group": "batch_import",
        "sync": True,  # else it closes the test's connection
    }


@pytest.mark.django_db
def test_the_monitor_keeps_failed_tasks_only():
    """A run's items and events say what each task did; a failure is kept for the admin."""
    from django_q.brokers import get_broker
    from django_q.models import Task
    from django_q.monitor import save_task

    broker = get_broker()
    save_task(_task_package("went-well", success=True), broker)
    save_task(_task_package("went-wrong", success=False), broker)
    assert list(Task.objects.values_list("name", "success")) == [("went-wrong", False)]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


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
    manage = [sys.executable, str(ROOT / "manage.py")]
    # The cluster on the ORM broker needs django_q's tables only (no task runs here).
    subprocess.run([*manage, "migrate", "django_q", "-v0"], env=env, check=True, timeout=120)
    return env


def _start_cluster(env: dict, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        cluster = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "qcluster"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _wait_for(lambda: "running" in log.read_text() or cluster.poll() is not None, "start")
    assert cluster.poll() is None, log.read_text()
    return cluster


@pytest.mark.integration
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_the_command_is_the_sentinel_and_stops_its_cluster_on_a_signal(
    cluster_env, tmp_path, stop_signal
):
    """No process only waits for the sentinel: the command's children are the two workers,
    the monitor and the pusher, and they start nothing of their own. A signal to the whole
    group (a terminal's Ctrl-C, ``kill -- -PGID``) stops them in order."""
    log = tmp_path / "cluster.log"
    cluster = _start_cluster(cluster_env, log)
    try:
        children = _children(cluster.pid)
        assert len(children) == 4, log.read_text()  # 2 workers, monitor, pusher
        assert [_children(child) for child in children] == [[]] * 4
        os.killpg(cluster.pid, stop_signal)
        assert cluster.wait(timeout=30) == 0, log.read_text()
        text = log.read_text()
        assert "stopping cluster processes" in text
        assert "has stopped" in text
        assert _children(cluster.pid) == []
    finally:
        if cluster.poll() is None:
            os.killpg(cluster.pid, signal.SIGKILL)


@pytest.mark.integration
def test_a_child_ended_by_sigterm_is_replaced_and_the_cluster_runs_on(cluster_env, tmp_path):
    """The sentinel ends a worker past its task's timeout with SIGTERM: its children must die
    of it (not take it for the cluster's stop), and the sentinel starts another. (The pusher
    here: an idle worker killed while it holds the task queue's lock leaves the others unable
    to read their stop, in django-q2 as in any cluster of it.)"""
    log = tmp_path / "cluster.log"
    cluster = _start_cluster(cluster_env, log)
    try:
        (pusher,) = re.findall(r"pushing tasks at (\d+)", log.read_text())
        os.kill(int(pusher), signal.SIGTERM)
        _wait_for(lambda: "reincarnated pusher" in log.read_text(), "a new pusher", timeout=30)
        children = _children(cluster.pid)
        assert int(pusher) not in children
        assert len(children) == 4
        assert cluster.poll() is None
        assert "stopping cluster processes" not in log.read_text()
        cluster.send_signal(signal.SIGTERM)
        assert cluster.wait(timeout=30) == 0, log.read_text()
    finally:
        if cluster.poll() is None:
            os.killpg(cluster.pid, signal.SIGKILL)
