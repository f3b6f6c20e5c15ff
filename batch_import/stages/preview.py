"""Preview (dry run) of the provision stage: what it would create, reuse, change or run into,
computed with read-only host calls (GET only: nothing on the host changes, not even a login).

The plan uses the same policy functions as provisioning (``decide_reuse``,
``model_mapping_delta``, the naming rules), so a real run started right after decides the same.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_noop

from batch_import.channel_evolution import model_mapping_delta
from batch_import.failures import host_failure
from batch_import.models import ImportRun, ImportRunItem
from batch_import.packs import channel_prices
from batch_import.reuse import IncomingProvider, decide_reuse
from batch_import.reuse_preflight import existing_accounts
from batch_import.stages import StageContext
from batch_import.stages.common import (
    fail_item,
    handle_host_error,
    host_error_message,
    item_resources,
    record_start,
)
from batch_import.stages.provision import Provisioner
from batch_import.transitions import EventType, transition_item
from hosts.models import ManagedResource
from hosts.sub2api import HostError, shared_client_for_host
from hosts.sub2api.naming import managed_account_name, managed_group_name
from hosts.subscribers import plan_access
from relay_project.messages import Msg

Stage = ImportRunItem.Stage
Resource = ManagedResource.ResourceType


def run_preview(item: ImportRunItem, ctx: StageContext) -> None:
    record_start(item)
    run = item.run
    client = shared_client_for_host(run.host, transport=ctx.host_transport)
    try:
        plan = Planner(item, item_resources(item, client)).plan()
    except HostError as exc:
        if exc.transient:
            handle_host_error(item, run, exc, ctx)
        else:
            fail_item(item, error=host_error_message(exc), failure_class=host_failure(exc), ctx=ctx)
        return
    transition_item(
        item_id=item.item_id,
        stage=Stage.DONE,
        event_type=EventType.PREVIEWED,
        message=Msg(
            gettext_noop("preview: account %(action)s; nothing was written to the host"),
            action=Msg.word("reuse action", plan["decision"]["action"]),
        ),
        fields={
            "preview_plan": plan,
            "matched_account_state": plan["decision"]["matched_account_state"],
            "account_resolution": plan["decision"]["account_resolution"],
            "provision_reused": plan["decision"]["provision_reused"],
            "reused_from_account_id": plan["decision"]["reused_from_account_id"],
            "next_retry_at": None,
        },
        payload={"plan": plan},
    )


class Planner(Provisioner):
    """The provisioner's reads without its writes."""

    def plan(self) -> dict[str, Any]:
        existing = existing_accounts(self.item, self.resources, read_only=True)
        decision = decide_reuse(
            existing, IncomingProvider(provider_id=self.item.provider_id, families=self.families)
        )
        group, group_id = self.plan_group()
        access = self.plan_access(group_id)
        conflicts = [f"group: {group['conflict']}"] if group.get("conflict") else []
        conflicts += [f"user {a['email']}: {a['conflict']}" for a in access if a.get("conflict")]
        return {
            "decision": {
                "action": str(decision.action),
                **decision.item_fields(),
                "missing_families": sorted(decision.missing_families),
            },
            "group": group,
            "channel": self.plan_channel(group_id),
            "account": self.plan_account(decision),
            "access": access,
            "duplicate_entries": self.duplicate_entries(),
            "conflicts": conflicts,
        }

    def duplicate_entries(self) -> list[int]:
        """Request entries that repeat this provider and key (merged into this item)."""
        payloads = self.item.events.filter(event_type=EventType.DUPLICATE).values_list(
            "payload", flat=True
        )
        return sorted(p["entry_index"] for p in payloads if "entry_index" in p)

    @property
    def host(self):
        return self.resources.host

    @property
    def client(self):
        return self.resources.client

    @property
    def has_channels(self) -> bool:
        return "channels" not in (self.host.missing_capabilities or [])

    def plan_group(self) -> tuple[dict[str, Any], int | None]:
        if self.run.access_mode == ImportRun.AccessMode.SELF_SERVICE:
            group_id = self.client.groups.group_of_key(self.run.probe_api_key)
            entry = {"name": None, "id": group_id, "action": "use_probe_key_group"}
            if group_id is None:
                entry["conflict"] = "probe_api_key is not bound to any group on this host"
            return entry, group_id
        name = managed_group_name(self.item.provider_id)
        group = self.client.groups.find_by_name(name)
        if group is None:
            return {"name": name, "id": None, "action": "create"}, None
        managed = ManagedResource.objects.filter(
            host=self.host, resource_type=Resource.GROUP, host_resource_id=str(group.id)
        ).exists()
        entry = {"name": name, "id": group.id, "action": "reuse"}
        if not managed:
            entry["note"] = "exists on the host but was not created by relay-manager"
        return entry, group.id

    def plan_channel(self, group_id: int | None) -> dict[str, Any]:
        if not self.has_channels:
            return {"action": "unsupported"}
        name = managed_group_name(self.item.provider_id)
        channel = self.client.channels.find_by_name(name)
        existing = dict(channel.model_mapping.get("openai", {})) if channel else {}
        contract = model_mapping_delta(existing, self.aliases, channel_prices(self.pack))
        priced = [e["models"][0] for e in contract.model_pricing if "input_price" in e]
        if channel is None:
            action = "create"
        elif contract.changed or (group_id is not None and group_id not in channel.group_ids):
            action = "patch"
        else:
            action = "unchanged"
        return {
            "name": name,
            "id": channel.id if channel else None,
            "action": action,
            "mapping_added": contract.added if channel else contract.model_mapping,
            "priced_models": priced,
        }

    def plan_account(self, decision) -> dict[str, Any]:
        if decision.action in ("create", "replace"):
            return {
                "name": managed_account_name(self.item.provider_id, self.item.api_key_fingerprint),
                "action": "create",
                "retires": decision.reused_from_account_id,
            }
        return {"id": decision.reused_from_account_id, "action": str(decision.action)}

    def plan_access(self, group_id: int | None) -> list[dict[str, Any]]:
        if self.run.access_mode != ImportRun.AccessMode.SUBSCRIPTION:
            return []
        return plan_access(self.resources, self.run.subscription_users, group_id=group_id)
