"""Provision stage: reuse preflight, then group, channel, account and access on the host, then
the legacy batch link (ARCHITECTURE §4). The host resources themselves, their names and their
records live in ``hosts.resources``; this module decides and orchestrates."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from batch_import.failures import host_failure
from batch_import.models import ImportRun, ImportRunItem, LegacyImportBatch
from batch_import.packs import apply_pack_aliases, pack_profile
from batch_import.provider_channel import ensure_channel
from batch_import.reuse import IncomingProvider, ReuseAction, ReuseDecision, decide_reuse
from batch_import.reuse_preflight import existing_accounts
from batch_import.stages import StageContext
from batch_import.stages.access import ensure_subscription_access
from batch_import.stages.common import add_advisories, fail_item, schedule_retry, stage_retries
from batch_import.transitions import EventType, record_event, transition_item
from hosts.models import ManagedResource
from hosts.resources import HostResources, Owner
from hosts.sub2api import HostError, OpenAICredentials, client_for_host
from probe.aliases import build_alias_table, canonical_model_id
from probe.capability import CapabilityProfile, responses_supported

Stage = ImportRunItem.Stage

FINISH_EVENT = {
    ReuseAction.CREATE: EventType.STAGE_COMPLETED,
    ReuseAction.REUSE: EventType.REUSED,
    ReuseAction.PATCH: EventType.PATCHED,
    ReuseAction.REACTIVATE: EventType.REACTIVATED,
    ReuseAction.REPLACE: EventType.REPLACED,
}


def upstream_root(base_url: str) -> str:
    """The host appends /v1/... itself ([OLD] literally), so it gets the root without /v1."""
    parts = urlsplit(base_url.strip())
    path = parts.path.rstrip("/")
    if path.lower().endswith("/v1"):
        path = path[:-3]
    return f"{parts.scheme}://{parts.netloc}{path}"


def run_provision(item: ImportRunItem, ctx: StageContext) -> None:
    run = item.run
    if run.is_preview:
        from batch_import.stages.preview import run_preview  # it builds on this module

        run_preview(item, ctx)
        return
    record_event(item=item, event_type=EventType.STAGE_STARTED, message="provisioning on host")
    client = client_for_host(run.host, transport=ctx.host_transport)
    try:
        Provisioner(item, item_resources(item, client)).provision()
    except HostError as exc:
        handle_host_error(item, run, exc, ctx)
    finally:
        client.close()


def item_resources(item: ImportRunItem, client) -> HostResources:
    """The host resource service acting for ``item``; each resource it records is an event."""

    def recorded(record: ManagedResource) -> None:
        record_event(
            item=item,
            event_type=EventType.RESOURCE_CREATED,
            message=f"created {record.resource_type} {record.host_resource_id} "
            f"({record.logical_key})",
            payload={
                "resource_type": record.resource_type,
                "host_resource_id": record.host_resource_id,
            },
        )

    owner = Owner(run_id=item.run_id, item_id=item.item_id, provider_id=item.provider_id)
    return HostResources(item.run.host, client, owner, on_recorded=recorded)


def handle_host_error(item: ImportRunItem, run: ImportRun, exc: HostError, ctx) -> None:
    attempt = stage_retries(item) + 1
    if exc.transient and attempt <= settings.RELAY_HTTP_RETRIES + 1:
        schedule_retry(
            item, attempt=attempt, reason=f"host: {exc}", payload=host_error_payload(exc)
        )
        return
    fail_item(
        item,
        error=f"host: {exc}",
        failure_class=host_failure(exc),
        transient=exc.transient,
        payload=host_error_payload(exc),
        ctx=ctx,
    )


class Provisioner:
    """One item's provisioning: each step of ARCHITECTURE §4 is one method."""

    def __init__(self, item: ImportRunItem, resources: HostResources) -> None:
        self.item, self.run, self.resources = item, item.run, resources
        self.pack = pack_profile(item)
        self.aliases = apply_pack_aliases(build_alias_table(item.raw_models), self.pack)
        self.families = frozenset(item.canonical_model_families)
        self.advisories: list[str] = []

    def provision(self) -> None:
        incoming = IncomingProvider(provider_id=self.item.provider_id, families=self.families)
        decision = decide_reuse(existing_accounts(self.item, self.resources), incoming)
        group_id = self.ensure_group()
        channel_id = self.ensure_channel(group_id)
        account_id = self.apply_decision(decision, group_id)
        if self.run.access_mode == ImportRun.AccessMode.SUBSCRIPTION:
            ensure_subscription_access(self.item, self.resources, group_id)
        self.finish(decision, group_id, channel_id, account_id)

    def ensure_group(self) -> int:
        if self.run.access_mode == ImportRun.AccessMode.SELF_SERVICE:
            return self.resources.group_of_key(self.run.probe_api_key)
        return self.resources.ensure_group()

    def ensure_channel(self, group_id: int) -> int | None:
        if "channels" in (self.run.host.missing_capabilities or []):
            self.advisories.append("channels_unsupported")
            return None
        return ensure_channel(
            self.resources,
            group_id=group_id,
            aliases=self.aliases,
            pack=self.pack,
            share_group_channel=self.run.access_mode == ImportRun.AccessMode.SELF_SERVICE,
            on_joined=self.channel_joined,
            on_patched=self.channel_patched,
        )

    def channel_joined(self, channel_id: int, name: str) -> None:
        record_event(
            item=self.item,
            event_type=EventType.REUSED,
            message=f"channel {channel_id} ({name}) already serves the operator key's group: "
            "this provider's aliases join it",
            payload={"channel_id": channel_id},
        )

    def channel_patched(self, channel_id: int, added: dict, repriced: bool) -> None:
        record_event(
            item=self.item,
            event_type=EventType.PATCHED,
            message=f"channel {channel_id}: added {len(added)} alias mappings",
            payload={"channel_id": channel_id, "added": added, "repriced": repriced},
        )

    def account_mapping(self) -> dict[str, str]:
        """canonical → raw: clients ask for the canonical id, the upstream gets its own name."""
        mapping: dict[str, str] = {}
        for alias in self.aliases.values():
            mapping.setdefault(alias.canonical, alias.raw)
        return mapping

    def responses_supported(self) -> bool | None:
        """False only when our probe settled that /v1/responses is missing upstream; an
        inconclusive probe leaves the host to find out (its own probe, §4.10)."""
        verdict = responses_supported(CapabilityProfile.from_dict(self.item.capability_profile))
        return False if verdict is False else None

    def chat_only_extra(self) -> dict:
        """For a chat-only upstream, also pin the manual override: the host's own Responses
        probe rewrites ``openai_responses_supported`` (a 403 reads as "supported" on some
        builds), but never ``openai_responses_mode``."""
        if self.responses_supported() is False:
            return {
                "openai_responses_supported": False,
                "openai_responses_mode": "force_chat_completions",
            }
        return {}

    def credentials(self, mapping: dict[str, str]) -> OpenAICredentials:
        # Sent whole every time: [OLD] hosts replace the credentials map on update.
        return OpenAICredentials(
            api_key=self.item.api_key,
            base_url=upstream_root(self.item.base_url),
            model_mapping=mapping,
        )

    def apply_decision(self, decision: ReuseDecision, group_id: int) -> int:
        action, resources = decision.action, self.resources
        if action in (ReuseAction.CREATE, ReuseAction.REPLACE):
            account_id = resources.create_account(
                key_fingerprint=self.item.api_key_fingerprint,
                key_digest=self.item.api_key_digest,
                credentials=self.credentials(self.account_mapping()),
                responses_supported=self.responses_supported(),
                extra=self.chat_only_extra(),
                group_id=group_id,
                families=self.families,
                # One key per item and attempt: a retry after a lost answer replays the first
                # create instead of making a twin ([OLD] hosts: adopt_untracked_accounts).
                idempotency_key=f"relay-manager-{self.item.item_id}-{self.item.attempt}",
            )
            if action == ReuseAction.REPLACE and decision.reused_from_account_id is not None:
                resources.retire_account(decision.reused_from_account_id)
            return account_id
        account_id = decision.reused_from_account_id
        if action == ReuseAction.REACTIVATE:
            resources.reactivate_account(account_id, self.families)
        account = resources.client.accounts.get(account_id)
        mapping = dict(account.model_mapping)
        missing = {k: v for k, v in self.account_mapping().items() if k not in mapping}
        if missing or group_id not in account.group_ids:
            mapping.update(missing)
            resources.client.accounts.update(
                account_id,
                credentials=self.credentials(mapping),
                extra={**account.extra, **self.chat_only_extra()},
                group_ids=sorted(set(account.group_ids) | {group_id}),
            )
            resources.add_families(account_id, self.families)
        return account_id

    def finish(self, decision: ReuseDecision, group_id: int, channel_id, account_id: int) -> None:
        with transaction.atomic():
            batch = LegacyImportBatch.objects.select_for_update().get(run_id=self.run.run_id)
            if self.item.provider_id not in batch.provider_ids:
                batch.provider_ids = [*batch.provider_ids, self.item.provider_id]
                batch.save(update_fields=["provider_ids", "updated_at"])
            transition_item(
                item_id=self.item.item_id,
                stage=Stage.CONFIRM,
                event_type=FINISH_EVENT[decision.action],
                message=f"account {account_id}: {decision.action}",
                fields={
                    "group_id": group_id,
                    "channel_id": channel_id,
                    "account_id": account_id,
                    "matched_account_state": decision.matched_account_state,
                    "account_resolution": decision.account_resolution,
                    "provision_reused": decision.provision_reused,
                    "reused_from_provider_id": decision.reused_from_provider_id,
                    "reused_from_account_id": decision.reused_from_account_id,
                    "legacy_batch": batch,
                    "legacy_provider_id": self.item.provider_id,
                    "advisory_messages": add_advisories(self.item, *self.advisories),
                    "confirmation_attempts": 0,
                },
                payload={
                    "action": str(decision.action),
                    "missing_families": sorted(decision.missing_families),
                    "gateway_model": canonical_model_id(self.item.resolved_smoke_model or ""),
                },
            )


def host_error_payload(exc: HostError) -> dict:
    return {"status": exc.status, "reason": exc.reason, "transient": exc.transient}
