from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.factories import ImportRunFactory, ImportRunItemFactory
from tests.integration.shared_db import shared_database_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db(transaction=True)
def test_four_worker_processes_claim_each_of_200_items_exactly_once(tmp_path: Path):
    run = ImportRunFactory()
    due = timezone.now() - timedelta(seconds=1)
    items = ImportRunItemFactory.create_batch(
        200, run=run, next_retry_at=due, current_stage="confirm"
    )
    env = {**os.environ, "DATABASE_URL": shared_database_url(), "DEBUG": "1"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.integration.claim_worker", f"w{n}", tmp_path, "4"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    assert all(worker.returncode == 0 for worker in workers)
    claims = Counter(line for out in outputs for line in out.split())
    assert set(claims) == {item.pk for item in items}
    assert max(claims.values()) == 1
    assert sum(1 for out in outputs if out.strip()) >= 2  # the work really was shared
