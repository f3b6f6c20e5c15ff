"""A pipeline worker process for restart and concurrency tests.

``python -m tests.integration.pipeline_worker WORKER_ID [ITEM_ID]``: with an item id, advance
just that item; without, keep advancing due items until every item is done. DATABASE_URL
points at the test database of the parent test."""

from __future__ import annotations

import os
import sys
import time

import django


def main(worker_id: str, item_id: str | None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relay_project.settings")
    django.setup()
    from django.utils import timezone

    from batch_import import leases
    from batch_import.models import ImportRunItem
    from batch_import.tasks import advance_item

    if item_id:
        advance_item(item_id, worker_id=worker_id)
        return
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        due = list(leases.claimable_items(timezone.now()).values_list("pk", flat=True)[:10])
        for pk in due:
            advance_item(pk, worker_id=worker_id)
        if not due:
            if not ImportRunItem.objects.exclude(current_stage="done").exists():
                return
            time.sleep(0.05)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
