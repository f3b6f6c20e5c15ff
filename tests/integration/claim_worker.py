"""A worker process for the lease race test: claim every due item it can, print the ids it
won, and mark each one done so it is never due again. Run as
``python -m tests.integration.claim_worker WORKER_ID READY_DIR WORKERS`` with DATABASE_URL set:
each worker, once set up, marks itself ready in READY_DIR and starts claiming when all WORKERS
are (a worker that started first would otherwise claim everything while the others load)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import django


def wait_for_all(worker_id: str, ready: Path, workers: int) -> None:
    (ready / worker_id).touch()
    deadline = time.monotonic() + 60
    while len(list(ready.iterdir())) < workers and time.monotonic() < deadline:
        time.sleep(0.01)


def main(worker_id: str, ready: Path, workers: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relay_project.settings")
    django.setup()
    from django.utils import timezone

    from batch_import import leases
    from batch_import.models import ImportRunItem

    wait_for_all(worker_id, ready, workers)
    while True:
        candidates = list(leases.claimable_items(timezone.now()).values_list("pk", flat=True)[:20])
        if not candidates:
            return
        for item_id in candidates:
            if leases.claim(item_id, worker_id=worker_id):
                ImportRunItem.objects.filter(pk=item_id, lease_owner=worker_id).update(
                    current_stage="done", lease_owner=None, lease_until=None
                )
                sys.stdout.write(f"{item_id}\n")
                sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]))
