"""Provision stage: reuse preflight, then group, channel, account and access on the host, then
the legacy batch link (ARCHITECTURE §4). The host resources themselves, their names and their
records live in ``hosts.resources``; this module decides and orchestrates."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext_noop, pgettext_lazy

from batch_import.account_shape import (
    account_mapping,
    chat_only_extra,
    credentials,
    responses_flag,
)
from batch_import.models import ImportRun, ImportRunItem, LegacyImportBatch
from batch_import.packs import apply_pack_aliases, pack_profile
from batch_import.provider_channel import ensure_channel
from batch_import.reuse import IncomingProvider, ReuseAction, ReuseDecision, decide_reuse
from batch_import.reuse_preflight import existing_accounts
from batch_import.stages import StageContext
from batch_import.stages.access import access_advisories, ensure_subscription_access
from batch_import.stages.common import add_advisories, handle_host_error, item_resources
from batch_import.transitions import EventType, record_event, transition_item
from hosts.resources import HostResources
from hosts.sub2api import HostError, client_for_host
from probe.aliases import build_alias_table, canonical_model_id
from relay_project.messages import Msg

Stage = ImportRunItem.Stage

# What the events call each decision, marked for the catalog (``Msg.word("reuse action", …)``).
REUSE_ACTION_WORDS = (
    pgettext_lazy("reuse action", "create"),
    pgettext_lazy("reuse action", "reuse"),
    pgettext_lazy("reuse action", "patch"),
    pgettext_lazy("reuse action", "reactivate"),
    pgettext_lazy("reuse action", "replace"),
)
FINISH_EVENT = {
    ReuseAction.CREATE: EventType.STAGE_COMPLETED,
    ReuseAction.REUSE: EventType.REUSED,
    ReuseAction.PATCH: EventType.PATCHED,
    ReuseAction.REACTIVATE: EventType.REACTIVATED,
    ReuseAction.REPLACE: EventType.REPLACED,
}


def run_provision(item: ImportRunItem, ctx: StageContext) -> None:
    run = item.run
    if run.is_preview:
        from batch_import.stages.preview import run_preview  # it builds on this module

        run_preview(item, ctx)
        return
    record_event(
        item=item,
        event_type=EventType.STAGE_STARTED,
        message=Msg(gettext_noop("provisioning on host")),
    )
    client = client_for_host(run.host, transport=ctx.host_transport)
    try:
        Provisioner(item, item_resources(item, client)).provision()
    except HostError as exc:
        handle_host_error(item, run, exc, ctx)
    finally:
        client.close()


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
        settled = self.settled_sibling()
        group_id = settled.group_id if settled else self.ensure_group()
        channel_id = self.ensure_channel(group_id, settled)
        account_id = self.apply_decision(decision, group_id)
        access: list[dict] = []
        if self.run.access_mode == ImportRun.AccessMode.SUBSCRIPTION:
            # A settled sibling set up the same users' access: its list holds for this item.
            access = (
                settled.subscription_access
                if settled
                else ensure_subscription_access(self.item, self.resources, group_id)
            )
            self.advisories.extend(access_advisories(access))
        self.finish(decision, group_id, channel_id, account_id, access)

    def settled_sibling(self) -> ImportRunItem | None:
        """An item of this run that already set up what this one needs: the same group (the
        provider's own; in self-service, the operator key's) and, in subscription mode, the
        same users' access to it. Its group id is set only once all of that is done, so the
        host need not be asked again (a run of many keys of one provider asks once)."""
        siblings = self.run.items.filter(group_id__isnull=False, rolled_back_at__isnull=True)
        if self.run.access_mode != ImportRun.AccessMode.SELF_SERVICE:
            siblings = siblings.filter(provider_id=self.item.provider_id)
        return (
            siblings.exclude(pk=self.item.pk)
            .only("item_id", "group_id", "channel_id", "raw_models", "subscription_access")
            .first()
        )

    def ensure_group(self) -> int:
        if self.run.access_mode == ImportRun.AccessMode.SELF_SERVICE:
            return self.resources.group_of_key(self.run.probe_api_key)
        return self.resources.ensure_group()

    def ensure_channel(self, group_id: int, settled: ImportRunItem | None) -> int | None:
        if "channels" in (self.run.host.missing_capabilities or []):
            self.advisories.append("channels_unsupported")
            return None
        if settled and settled.channel_id and settled.raw_models == self.item.raw_models:
            return settled.channel_id  # the same models: the channel already maps them
        return ensure_channel(
            self.item,
            self.resources,
            group_id=group_id,
            aliases=self.aliases,
            pack=self.pack,
            share_group_channel=self.run.access_mode == ImportRun.AccessMode.SELF_SERVICE,
        )

    def apply_decision(self, decision: ReuseDecision, group_id: int) -> int:
        action, resources = decision.action, self.resources
        if action in (ReuseAction.CREATE, ReuseAction.REPLACE):
            account_id = resources.create_account(
                key_fingerprint=self.item.api_key_fingerprint,
                key_digest=self.item.api_key_digest,
                credentials=credentials(self.item, account_mapping(self.aliases)),
                responses_supported=responses_flag(self.item),
                extra=chat_only_extra(self.item),
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
        missing = {k: v for k, v in account_mapping(self.aliases).items() if k not in mapping}
        if missing or group_id not in account.group_ids:
            mapping.update(missing)
            resources.client.accounts.update(
                account_id,
                credentials=credentials(self.item, mapping),
                extra={**account.extra, **chat_only_extra(self.item)},
                group_ids=sorted(set(account.group_ids) | {group_id}),
            )
            resources.add_families(account_id, self.families)
        return account_id

    def finish(
        self, decision: ReuseDecision, group_id: int, channel_id, account_id: int, access: list
    ) -> None:
        with transaction.atomic():
            batch = LegacyImportBatch.objects.select_for_update().get(run_id=self.run.run_id)
            if self.item.provider_id not in batch.provider_ids:
                batch.provider_ids = [*batch.provider_ids, self.item.provider_id]
                batch.save(update_fields=["provider_ids", "updated_at"])
            transition_item(
                item_id=self.item.item_id,
                stage=Stage.CONFIRM,
                event_type=FINISH_EVENT[decision.action],
                message=Msg(
                    gettext_noop("account %(account)s: %(action)s"),
                    account=account_id,
                    action=Msg.word("reuse action", decision.action),
                ),
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
                    "subscription_access": access,
                },
                payload={
                    "action": str(decision.action),
                    "missing_families": sorted(decision.missing_families),
                    "gateway_model": canonical_model_id(self.item.resolved_smoke_model or ""),
                },
            )
