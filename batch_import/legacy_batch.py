"""The run's V1 import batch (seed 002 §4.2, deprecated): the providers it lists."""

from __future__ import annotations

from django.utils import timezone

from batch_import.models import LegacyImportBatch


def link_legacy_batch(run_id: str, provider_id: str) -> LegacyImportBatch:
    """The run's batch, with ``provider_id`` among its providers. No row lock: the list is
    replaced only when nobody changed it since it was read (compare and swap), so the items
    of a run never queue on the batch row; most find their provider listed already."""
    while True:
        batch = LegacyImportBatch.objects.get(run_id=run_id)
        if provider_id in batch.provider_ids:
            return batch
        listed = [*batch.provider_ids, provider_id]
        swapped = LegacyImportBatch.objects.filter(
            pk=batch.pk, provider_ids=batch.provider_ids
        ).update(provider_ids=listed, updated_at=timezone.now())
        if swapped:
            batch.provider_ids = listed
            return batch
