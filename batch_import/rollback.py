"""Strict-mode rollback: undo what a run created on the host, and nothing else (ARCH §9)."""

from __future__ import annotations

import logging

from django.db.models import Q

from batch_import.models import ImportRunItem
from batch_import.transitions import EventType, record_event, transition_item
from hosts.models import ManagedResource
from hosts.sub2api import HostError, client_for_host

logger = logging.getLogger(__name__)
Resource = ManagedResource.ResourceType
Stage = ImportRunItem.Stage

# Reverse dependency order; deleting a group cascades its keys and subscriptions on the host.
# Users are kept: other runs may rely on the same managed users.
ROLLBACK_ORDER = [Resource.ACCOUNT, Resource.CHANNEL, Resource.GROUP]
ITEM_REFERENCE = {
    Resource.ACCOUNT: "account_id",
    Resource.CHANNEL: "channel_id",
    Resource.GROUP: "group_id",
}


def rollback_run_strict(*, run_id: str, failed_item_id: str, ctx=None) -> list[str]:
    """Delete the run's own resources that no item of another run reuses, stop its other
    unfinished items, and record every step as an event. Returns what could not be deleted."""
    failed_item = ImportRunItem.objects.select_related("run", "run__host").get(pk=failed_item_id)
    host = failed_item.run.host
    leftovers: list[str] = []
    client = client_for_host(host, transport=getattr(ctx, "host_transport", None))
    try:
        for resource_type in ROLLBACK_ORDER:
            records = ManagedResource.objects.filter(
                host=host,
                resource_type=resource_type,
                created_by_run_id=run_id,
                state=ManagedResource.State.PRESENT,
            ).order_by("-id")
            for record in records:
                if _reused_elsewhere(record, run_id):
                    continue
                try:
                    _delete(client, record)
                except HostError as exc:
                    if exc.status != 404:
                        leftovers.append(f"{record.resource_type} {record.host_resource_id}")
                        logger.warning("rollback of %s failed: %s", record, exc)
                        continue
                record.state = ManagedResource.State.DELETED
                record.save(update_fields=["state", "updated_at"])
                record_event(
                    item=failed_item,
                    event_type=EventType.ROLLED_BACK,
                    message=f"deleted {record.resource_type} {record.host_resource_id}",
                    payload={
                        "resource_type": record.resource_type,
                        "host_resource_id": record.host_resource_id,
                    },
                )
    finally:
        client.close()
    _stop_other_items(run_id, failed_item_id)
    if leftovers:
        record_event(
            item=failed_item,
            event_type=EventType.ERROR,
            message="rollback left resources behind: " + ", ".join(leftovers),
            payload={"leftovers": leftovers},
        )
    return leftovers


def _reused_elsewhere(record: ManagedResource, run_id: str) -> bool:
    field = ITEM_REFERENCE[record.resource_type]
    return (
        ImportRunItem.objects.filter(**{field: int(record.host_resource_id)})
        .filter(~Q(run_id=run_id))
        .exists()
    )


def _delete(client, record: ManagedResource) -> None:
    resource_id = int(record.host_resource_id)
    if record.resource_type == Resource.ACCOUNT:
        client.accounts.delete(resource_id)
    elif record.resource_type == Resource.CHANNEL:
        client.channels.delete(resource_id)
    elif record.resource_type == Resource.GROUP:
        client.groups.delete(resource_id)
        ManagedResource.objects.filter(
            host=record.host,
            resource_type=Resource.API_KEY,
            logical_key__endswith=f"|{resource_id}",
        ).update(state=ManagedResource.State.DELETED)


def _stop_other_items(run_id: str, failed_item_id: str) -> None:
    others = ImportRunItem.objects.filter(run_id=run_id).exclude(pk=failed_item_id)
    for item_id in others.exclude(current_stage=Stage.DONE).values_list("pk", flat=True):
        transition_item(
            item_id=item_id,
            stage=Stage.DONE,
            event_type=EventType.ROLLED_BACK,
            message="strict mode: the run was rolled back after another item failed",
            fields={
                "last_error_stage": ImportRunItem.objects.get(pk=item_id).current_stage,
                "last_error": "rolled back (strict mode)",
                "next_retry_at": None,
            },
        )
