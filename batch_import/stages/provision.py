"""Provision stage: reuse preflight, then group, channel, account and access on the host, then
the legacy batch link (ARCHITECTURE §4). The host resources themselves, their names and their
records live in ``hosts.resources``; this module decides and orchestrates."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_noop

from batch_import.account_shape import new_account, patch_for_reuse
from batch_import.errors import InvalidTransition
from batch_import.legacy_batch import link_legacy_batch
from batch_import.models import ImportRun, ImportRunItem
from batch_import.packs import apply_pack_aliases, pack_profile
from batch_import.provider_channel import ensure_channel
from batch_import.reuse import IncomingProvider, ReuseAction, ReuseDecision, decide_reuse
from batch_import.reuse_preflight import (
    existing_accounts,
    provisioning_elsewhere,
    settled_sibling,
    sibling_key,
)
from batch_import.stages import StageContext
from batch_import.stages.access import (
    access_advisories,
    grant_subscription_access,
    item_access,
    needs_access,
    note_access,
)
from batch_import.stages.common import (
    add_advisories,
    handle_host_error,
    item_resources,
    record_start,
    start_message,
)
from batch_import.transitions import EventType, transition_item
from hosts.resources import HostResources
from hosts.sub2api import Channel, HostError, shared_client_for_host
from probe.aliases import build_alias_table, canonical_model_id
from relay_project.branches import Later, Ready, together, waiting
from relay_project.messages import Msg
from relay_project.single_flight import SingleFlight, Turn

Stage = ImportRunItem.Stage
# The items of this process provisioning with no settled sibling, by sibling key.
UNSETTLED = SingleFlight()
# How often one looks whether a sibling in another process is still provisioning (s): doubled
# from the first to the last, so a wait of a second or two costs a handful of queries.
ELSEWHERE_POLL = (0.05, 0.25)

FINISH_EVENT = {
    ReuseAction.CREATE: EventType.STAGE_COMPLETED,
    ReuseAction.REUSE: EventType.REUSED,
    ReuseAction.PATCH: EventType.PATCHED,
    ReuseAction.REACTIVATE: EventType.REACTIVATED,
    ReuseAction.REPLACE: EventType.REPLACED,
}


def run_provision(item: ImportRunItem, ctx: StageContext) -> ImportRunItem | None:
    run = item.run
    record_start(item)
    client = shared_client_for_host(run.host, transport=ctx.host_transport)
    provisioner = Provisioner(item, item_resources(item, client))
    provisioner.provision(on_host_error=lambda exc: handle_host_error(item, run, exc, ctx))
    return provisioner.finished


def settled_elsewhere(item: ImportRunItem, deadline: float, key) -> ImportRunItem | None:
    """The settled sibling, once the siblings of other worker processes that entered
    provisioning before every item of ``key`` in this process (the leader and those waiting
    for it: so no two processes wait for each other) have ended it; None at once when there is
    none, or when they ended unsettled or the deadline passed first. Polls the items' rows;
    sleeps holding nothing."""
    pause, waited = ELSEWHERE_POLL[0], False
    while provisioning_elsewhere(item, UNSETTLED.first_rank(key)):
        if time.monotonic() + pause > deadline:
            break
        with waiting():
            time.sleep(pause)
        pause, waited = min(pause * 2, ELSEWHERE_POLL[1]), True
    if not waited:
        return None
    still_provisioning(item)
    return settled_sibling(item)


def still_provisioning(item: ImportRunItem) -> None:
    """After a wait for a sibling: the item must still be ours to provision. A strict run that
    another item failed stops the others (a cancel too), and one that waited must not make
    anything on the host for it then (``advance_item`` ends it as superseded)."""
    ours = ImportRunItem.objects.filter(
        pk=item.pk, current_stage=Stage.PROVISION, lease_owner=item.lease_owner
    )
    if not ours.exists():
        raise InvalidTransition("the item was moved while it waited for a sibling")


class Provisioner:
    """One item's provisioning: each step of ARCHITECTURE §4 is one method."""

    def __init__(self, item: ImportRunItem, resources: HostResources) -> None:
        self.item, self.run, self.resources = item, item.run, resources
        self.pack = pack_profile(item)
        self.aliases = apply_pack_aliases(build_alias_table(item.raw_models), self.pack)
        self.families = frozenset(item.canonical_model_families)
        self.advisories: list[str] = []
        self.finished: ImportRunItem | None = None  # the item as ``finish`` left it

    def provision(self, on_host_error: Callable[[HostError], None]) -> None:
        """With no settled sibling yet but one of this process provisioning now (the items of
        a provider run side by side), wait for it and take its set-up rather than ask the host
        for the same group, channel and users again and collide with it there. The wait is
        bounded by one outbound call's timeout; a sibling that failed hands the set-up on to
        one waiter once its failure is told. The one of this process that leads waits the
        same way, by polling, for an earlier sibling provisioning in another process
        (``settled_elsewhere``)."""
        settled = settled_sibling(self.item)
        if settled is not None:
            self.attempt(settled, on_host_error)
            return
        wait, key = settings.RELAY_HTTP_TIMEOUT, sibling_key(self.item)
        entered = (self.item.updated_at, self.item.item_id)  # when it entered provisioning
        with UNSETTLED.turn(key, timeout=wait, rank=entered) as place:
            if place.waited:
                still_provisioning(self.item)
            if place.turn is Turn.FOLLOW:
                settled = settled_sibling(self.item)
            elif place.turn is Turn.LEAD:
                settled = settled_elsewhere(self.item, time.monotonic() + wait, key)
            if self.attempt(settled, on_host_error):
                place.succeeded()

    def attempt(
        self, settled: ImportRunItem | None, on_host_error: Callable[[HostError], None]
    ) -> bool:
        """``provision_with``; a failed host call is told (a retry or the item's end; in a
        strict run, the rollback) before the item's turn is over, so a sibling waiting for it
        takes over only then. Whether the item settled."""
        try:
            self.provision_with(settled)
        except HostError as exc:
            on_host_error(exc)
            return False
        return True

    def provision_with(self, settled: ImportRunItem | None) -> None:
        """The steps at once where the host allows it: the group, the provider's channel, the
        reuse preflight and the users' access (which needs the group only from the
        subscription on) start together; the channel's create or update and the account
        follow the group. What each step records is told in the
        order of ARCHITECTURE §4 (preflight, group, channel, account, access)."""
        incoming = IncomingProvider(provider_id=self.item.provider_id, families=self.families)
        group_by, group_held = self.resources.holding()
        access_by, access_held = self.resources.holding()
        try:
            with together() as start:
                group = Ready(settled.group_id) if settled else start(self.ensure_group, group_by)
                own_channel = (
                    start(self.resources.find_channel)
                    if self.channel_to_ensure(settled)
                    else Ready(None)
                )
                granting = (
                    start(grant_subscription_access, self.item, access_by, group)
                    if needs_access(self.item, settled)
                    else None
                )
                decision = decide_reuse(existing_accounts(self.item, self.resources), incoming)
                group_id = group.result()
                self.resources.announce(group_held)
                channel_id = self.ensure_channel(group_id, settled, own_channel)
                account_id = self.apply_decision(decision, group_id)
                granted = granting.result() if granting else None
        finally:  # what was recorded is told, even when a step failed
            self.resources.announce(group_held)
            self.resources.announce(access_held)
        access = note_access(self.item, granted) if granting else item_access(self.item, settled)
        self.advisories.extend(access_advisories(access))
        self.finish(decision, group_id, channel_id, account_id, access, settled=settled)

    def ensure_group(self, resources: HostResources) -> int:
        if self.run.access_mode == ImportRun.AccessMode.SELF_SERVICE:
            return resources.group_of_key(self.run.probe_api_key)
        return resources.ensure_group()

    def channel_to_ensure(self, settled: ImportRunItem | None) -> bool:
        """Whether the host is asked for the provider's channel: not when the host has no
        channels, nor when a settled sibling's channel maps the same models already."""
        if "channels" in (self.run.host.missing_capabilities or []):
            return False
        return not (settled and settled.channel_id and settled.raw_models == self.item.raw_models)

    def ensure_channel(
        self, group_id: int, settled: ImportRunItem | None, own: Later[Channel | None]
    ) -> int | None:
        """``own``: the provider's channel, looked up by name while the group was settled."""
        if "channels" in (self.run.host.missing_capabilities or []):
            self.advisories.append("channels_unsupported")
            return None
        if not self.channel_to_ensure(settled):
            return settled.channel_id  # the same models: the channel already maps them
        return ensure_channel(
            self.item,
            self.resources,
            group_id=group_id,
            aliases=self.aliases,
            pack=self.pack,
            share_group_channel=self.run.access_mode == ImportRun.AccessMode.SELF_SERVICE,
            own=own.result(),
        )

    def apply_decision(self, decision: ReuseDecision, group_id: int) -> int:
        action, resources = decision.action, self.resources
        if action in (ReuseAction.CREATE, ReuseAction.REPLACE):
            account_id = resources.create_account(
                **vars(new_account(self.item, self.aliases)),
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
        if patch := patch_for_reuse(self.item, account, self.aliases, group_id):
            resources.extend_account(account_id, **vars(patch), families=self.families)
        return account_id

    def finish(
        self,
        decision: ReuseDecision,
        group_id: int,
        channel_id,
        account_id: int,
        access: list,
        *,
        settled: ImportRunItem | None = None,
    ) -> None:
        """``settled``: a sibling of the same provider settled before lists the provider in the
        run's V1 batch already (providers are never taken off it), so the batch is not read."""
        provider_id = self.item.provider_id
        listed = settled is not None and settled.legacy_provider_id == provider_id
        # The batch link and the move stand or fall together; with nothing to link, the move
        # is a write of its own (on PostgreSQL one statement, no transaction around it).
        with nullcontext() if listed else transaction.atomic():
            if listed:
                batch_id = settled.legacy_batch_id
            else:
                batch_id = link_legacy_batch(self.run.run_id, provider_id).pk
            self.finished = transition_item(
                item_id=self.item.item_id,
                held=self.item,
                stage=Stage.CONFIRM,
                starting=start_message,
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
                    **decision.item_fields(),
                    "legacy_batch_id": batch_id,
                    "legacy_provider_id": provider_id,
                    "advisory_messages": add_advisories(self.item, *self.advisories),
                    "confirmation_attempts": 0,
                    "subscription_access": access,
                },
                payload={
                    "action": str(decision.action),
                    "missing_families": sorted(decision.missing_families),
                    "gateway_model": canonical_model_id(self.item.resolved_smoke_model or ""),
                },
                savepoint=False,  # the batch link and the move stand or fall together
            )
