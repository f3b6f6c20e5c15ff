from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from batch_import.models import ImportRunItem
from batch_import.tasks import advance_item
from tests.integration.pipeline import entry, register, start
from tests.integration.shared_db import shared_database_url

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration]


def worker_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": shared_database_url(),
        "DEBUG": "1",
        "RELAY_ALLOW_INSECURE_UPSTREAMS": "1",
        "RELAY_RETRY_BASE_DELAY": "0.05",
        "RELAY_RETRY_MAX_DELAY": "0.4",
        "RELAY_HTTP_RETRIES": "1",
        "RELAY_PROBE_MAX_MODELS": "1",
        **extra,
    }


def spawn(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.pipeline_worker", *args],
        cwd=ROOT,
        env=worker_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def shared_db():
    shared_database_url()  # skips when the processes cannot share the test database


@pytest.mark.django_db(transaction=True)
def test_sigkilled_worker_is_resumed_after_its_lease_expires_and_the_item_ends_once(
    shared_db, host_simulator, upstream_factory, settings
):
    upstream = upstream_factory(models=("kimi-k2.6",))
    run = start(register(host_simulator), [entry(upstream)])
    item = run.items.get()
    # The account test (account 1 on a fresh simulator) hangs, so the worker is killed
    # mid-confirm, after provisioning.
    hanging_test = host_simulator.fail_next(
        "POST", "/api/v1/admin/accounts/1/test", status=None, delay=30
    )
    doomed = spawn(
        "doomed",
        item.item_id,
        RELAY_LEASE_TTL="8",
        RELAY_TASK_TIMEOUT="6",
        RELAY_INLINE_RETRY_MAX_DELAY="2",
        RELAY_HTTP_TIMEOUT="60",
    )
    deadline = time.monotonic() + 30
    while not item.events.filter(event_type="stage_started", stage="confirm").exists():
        if doomed.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the worker never reached the account test: {doomed.stdout.read()}")
        time.sleep(0.05)
    while hanging_test.remaining:  # taken when the request arrives, before the delay
        if doomed.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the worker never sent the account test: {doomed.stdout.read()}")
        time.sleep(0.05)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)

    item.refresh_from_db()
    assert (item.current_stage, item.lease_owner) == ("confirm", "doomed")
    assert advance_item(item.item_id, worker_id="heir") == "not_claimed"  # lease still held
    ImportRunItem.objects.filter(pk=item.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1)  # time passes: the lease expires
    )
    assert advance_item(item.item_id, worker_id="heir") == "done"
    item.refresh_from_db()
    assert (item.access_status, item.lease_owner) == ("active", None)
    assert item.events.filter(event_type="validated").count() == 1
    assert len(host_simulator.state.accounts) == 1
    assert len(host_simulator.state.groups) == 1


@pytest.mark.django_db(transaction=True)
def test_four_worker_processes_over_many_items_make_no_duplicate_account(
    shared_db, host_simulator, upstream_factory
):
    upstream = upstream_factory(models=("kimi-k2.6",), api_key=None)
    count = int(os.environ.get("RELAY_TEST_WORKER_ITEMS", "200"))
    run = start(register(host_simulator), [entry(upstream, f"sk-{n:04d}") for n in range(count)])
    workers = [spawn(f"w{n}") for n in range(4)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    run.refresh_from_db()
    warnings = list(
        ImportRunItem.objects.filter(run=run)
        .exclude(access_status="active")
        .values_list("last_error_stage", "last_error")[:5]
    )
    summary = (run.state, run.active_items, run.broken_items, run.degraded_items, run.warning_items)
    assert summary == ("completed", count, 0, 0, 0), (summary, warnings)
    accounts = host_simulator.state.accounts.values()
    assert len(accounts) == count
    assert len({a.credentials["api_key"] for a in accounts}) == count
    validated = ImportRunItem.objects.filter(run=run, events__event_type="validated").count()
    assert validated == count  # every item ended exactly once
