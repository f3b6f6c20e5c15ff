"""``manage.py qcluster`` loads what its processes run and freezes it before they are forked
(the cluster's processes: ``test_cluster.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import get_commands

from batch_import.management.commands.setup_schedules import schedules
from providers.cluster import task_modules

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
        "from providers import cluster\n"
        "seen = {}\n"
        "class Sentinel:\n"
        "    pid = 0\n"
        "    def __init__(self, *args, **kwargs):\n"
        "        pass\n"
        "    def start(self):\n"
        "        seen['frozen'] = gc.get_freeze_count()\n"
        "        seen['loaded'] = sorted(m for m in ('batch_import.tasks', 'providers.tasks',"
        " 'batch_import.stages.provision', 'batch_import.stages.upstream_probe')"
        " if m in sys.modules)\n"
        "        unused = ('tldextract', 'requests', 'rest_framework.views',"
        " 'drf_spectacular.openapi')\n"
        "        seen['unused'] = sorted(m for m in unused if m in sys.modules)\n"
        "cluster.Sentinel = Sentinel\n"
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
    # The stage modules too (the task module loads them), not each worker at its first items.
    assert seen["loaded"] == [
        "batch_import.stages.provision",
        "batch_import.stages.upstream_probe",
        "batch_import.tasks",
        "providers.tasks",
    ]
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


def test_children_are_bound_to_their_sentinel_only_where_the_kernel_can(monkeypatch):
    """``PR_SET_PDEATHSIG`` is Linux's; elsewhere (a developer's Mac) the child just runs."""
    from providers import cluster

    monkeypatch.setattr(cluster.sys, "platform", "darwin")
    monkeypatch.setattr(cluster.ctypes, "CDLL", None)  # would fail if it were reached
    cluster._die_with_parent(parent=-1)  # neither binds nor exits
