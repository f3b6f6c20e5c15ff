"""A worker process for the lease race test: claim every due item it can, print the ids it
won, and mark each one done so it is never due again. Run as
``python -m tests.integration.claim_worker WORKER_ID`` with DATABASE_URL set."""

from __future__ import annotations

import os
import sys

import django


def main(worker_id: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relay_project.settings")
    django.setup()
    from django.utils import timezone

    from batch_import import leases
    from batch_import.models import ImportRunItem

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
    main(sys.argv[1])
