"""A django-q2 worker process hands the GIL over less often than Python's default: with tens of
items in flight per process the hand-overs cost CPU (``make bench``: ≈18 % of the worker's)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django_q.signals import post_spawn


@pytest.fixture
def switch_interval():
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


def test_a_worker_process_takes_the_switch_interval_of_the_settings(settings, switch_interval):
    settings.RELAY_WORKER_SWITCH_INTERVAL = 0.03
    post_spawn.send(sender="django_q", proc_name="Process-1")  # as django-q2's worker sends it
    assert sys.getswitchinterval() == pytest.approx(0.03)


def test_processes_that_are_no_worker_keep_pythons_default():
    """The web side and the management commands set Django up and send nothing: unchanged."""
    code = "import django, sys; django.setup(); print(sys.getswitchinterval())"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "relay_project.settings", "DEBUG": "1"}
    shown = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert float(shown.stdout) == pytest.approx(0.005)
