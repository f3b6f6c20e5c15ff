"""Provision stage: reuse preflight, then group, channel, account and access on the host.

Every host resource is recorded in ManagedResource right after the call that created it, so a
failure (or a killed worker) never leaves an untracked resource behind; names are deterministic
(``rm-<provider_id>``), so a resumed item finds what it made instead of making it twice.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from batch_import.channel_evolution import model_mapping_delta
from batch_import.failures import host_failure
from batch_import.models import ImportRun, ImportRunItem, LegacyImportBatch
from batch_import.packs import apply_pack_aliases, channel_prices, pack_profile
from batch_import.reuse import ExistingAccount, IncomingProvider, ReuseAction, decide_reuse
from batch_import.stages import StageContext
from batch_import.stages.common import add_advisories, fail_item, schedule_retry, stage_retries
from batch_import.transitions import EventType, record_event, transition_item
from hosts.models import Host, ManagedResource
from hosts.sub2api import HostError, OpenAICredentials, PricingEntry, Sub2ApiClient, client_for_host
from hosts.sub2api.subscriptions import SubscriptionAssignment
from probe.aliases import build_alias_table, canonical_model_id
from probe.capability import CapabilityProfile, responses_supported
from relay_project.crypto import Secret

Stage = ImportRunItem.Stage
Resource = ManagedResource.ResourceType
AccountState = ImportRunItem.MatchedAccountState

ACCOUNT_CONCURRENCY = 3
ACCOUNT_PRIORITY = 50
USER_BALANCE = 100.0


@dataclass
class Provisioned:
    group_id: int
    channel_id: int | None
    account_id: int


def group_name(provider_id: str) -> str:
    return f"rm-{provider_id}"


def account_name(item: ImportRunItem) -> str:
    return f"rm-{item.provider_id}-{item.api_key_fingerprint.removeprefix('sha256:')}"


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
    host = run.host
    client = client_for_host(host, transport=ctx.host_transport)
    try:
        provisioner = Provisioner(item=item, run=run, host=host, client=client)
        provisioner.provision()
    except HostError as exc:
        handle_host_error(item, run, exc, ctx)
    finally:
        client.close()


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
    """One item's provisioning: a small object so each step reads as one method."""

    def __init__(
        self, *, item: ImportRunItem, run: ImportRun, host: Host, client: Sub2ApiClient
    ) -> None:
        self.item, self.run, self.host, self.client = item, run, host, client
        self.pack = pack_profile(item)
        self.aliases = apply_pack_aliases(build_alias_table(item.raw_models), self.pack)
        self.families = frozenset(item.canonical_model_families)
        self.advisories: list[str] = []

    # --- bookkeeping -------------------------------------------------------------------------
    def record(self, resource_type: str, host_resource_id, logical_key: str, **extra):
        resource, _ = ManagedResource.objects.update_or_create(
            host=self.host,
            resource_type=resource_type,
            host_resource_id=str(host_resource_id),
            defaults={
                "logical_key": logical_key,
                "provider_id": self.item.provider_id,
                "created_by_run_id": self.run.run_id,
                "created_by_item_id": self.item.item_id,
                "state": ManagedResource.State.PRESENT,
                **extra,
            },
        )
        record_event(
            item=self.item,
            event_type=EventType.RESOURCE_CREATED,
            message=f"created {resource_type} {host_resource_id} ({logical_key})",
            payload={"resource_type": resource_type, "host_resource_id": str(host_resource_id)},
        )
        return resource

    @property
    def has_channels(self) -> bool:
        return "channels" not in (self.host.missing_capabilities or [])

    # --- the steps ---------------------------------------------------------------------------
    def provision(self) -> None:
        existing = self.existing_accounts()
        decision = decide_reuse(
            existing, IncomingProvider(provider_id=self.item.provider_id, families=self.families)
        )
        group_id = self.ensure_group()
        channel_id = self.ensure_channel(group_id)
        account_id = self.apply_decision(decision, group_id)
        self.ensure_access(group_id)
        self.finish(decision, Provisioned(group_id, channel_id, account_id))

    def existing_accounts(self) -> list[ExistingAccount]:
        """Managed accounts of this provider + key, as the host sees them now."""
        self.adopt_untracked_account()
        found: list[ExistingAccount] = []
        records = ManagedResource.objects.filter(
            host=self.host,
            resource_type=Resource.ACCOUNT,
            provider_id=self.item.provider_id,
            api_key_digest=self.item.api_key_digest,
        ).exclude(state=ManagedResource.State.DELETED)
        for record in records:
            try:
                account = self.client.accounts.get(int(record.host_resource_id))
            except HostError as exc:
                if exc.status == 404:
                    record.state = ManagedResource.State.DELETED
                    record.save(update_fields=["state", "updated_at"])
                    continue
                raise
            found.append(
                ExistingAccount(
                    account_id=account.id,
                    provider_id=record.provider_id,
                    state=account_state(account, record),
                    families=frozenset(record.metadata.get("families", [])),
                )
            )
        return found

    def adopt_untracked_account(self) -> None:
        """An account with our deterministic name but no record means a worker died between
        creating it and recording it: adopt it instead of creating a twin."""
        name = account_name(self.item)
        for account in self.client.accounts.search(name, platform="openai"):
            if not ManagedResource.objects.filter(
                host=self.host, resource_type=Resource.ACCOUNT, host_resource_id=str(account.id)
            ).exists():
                self.record(
                    Resource.ACCOUNT,
                    account.id,
                    name,
                    api_key_digest=self.item.api_key_digest,
                    metadata={"families": sorted(self.families), "adopted": True},
                )

    def ensure_group(self) -> int:
        if self.run.access_mode == ImportRun.AccessMode.SELF_SERVICE:
            return self.probe_key_group()
        name = group_name(self.item.provider_id)
        group, created = self.client.groups.ensure(
            name=name,
            platform="openai",
            subscription_type="subscription",
            rate_multiplier=1.0,
            description=f"relay-manager: provider {self.item.provider_id}",
        )
        if created:
            self.record(Resource.GROUP, group.id, name)
        return group.id

    def probe_key_group(self) -> int:
        group_id = self.client.groups.group_of_key(self.run.probe_api_key)
        if group_id is None:
            raise HostError(
                status=400,
                reason="PROBE_KEY_GROUP_UNKNOWN",
                message="probe_api_key is not bound to any group on this host",
                transient=False,
            )
        return group_id

    def ensure_channel(self, group_id: int) -> int | None:
        if not self.has_channels:
            self.advisories.append("channels_unsupported")
            return None
        name = group_name(self.item.provider_id)
        channel = self.client.channels.find_by_name(name)
        if channel is None and self.run.access_mode == ImportRun.AccessMode.SELF_SERVICE:
            # The probe key's group is shared by every provider of the run (and of other
            # runs): it already has its channel, which takes this provider's aliases too.
            channel = self.client.channels.bound_to_group(group_id)
            if channel is not None:
                record_event(
                    item=self.item,
                    event_type=EventType.REUSED,
                    message=f"channel {channel.id} ({channel.name}) already serves group "
                    f"{group_id}: this provider's aliases join it",
                    payload={"channel_id": channel.id, "group_id": group_id},
                )
        existing = dict(channel.model_mapping.get("openai", {})) if channel else {}
        served = {m for entry in channel.model_pricing for m in entry.models} if channel else set()
        contract = model_mapping_delta(
            existing, self.aliases, channel_prices(self.pack), served=served
        )
        pricing = [
            PricingEntry(**{**entry, "models": tuple(entry["models"])})
            for entry in contract.model_pricing
        ]
        if channel is None:
            channel, created = self.client.channels.ensure(
                name=name,
                group_ids=[group_id],
                model_mapping=contract.host_model_mapping(),
                model_pricing=pricing,
                restrict_models=contract.restrict_models,
                billing_model_source=contract.billing_model_source,
            )
            if created:
                self.record(Resource.CHANNEL, channel.id, name)
                return channel.id
        group_ids = sorted(set(channel.group_ids) | {group_id})
        # A pack installed (or upgraded) after the channel was made brings its prices along.
        repriced = bool(self.pack and self.pack.prices) and set(pricing) != set(
            channel.model_pricing
        )
        priced = {m for entry in contract.model_pricing for m in entry["models"]}
        if (
            contract.changed
            or repriced
            or priced != served
            or group_ids != sorted(channel.group_ids)
        ):
            self.client.channels.update(
                channel.id,
                group_ids=group_ids,
                model_mapping=contract.host_model_mapping(),
                model_pricing=pricing,
                restrict_models=contract.restrict_models,
                billing_model_source=contract.billing_model_source,
            )
            record_event(
                item=self.item,
                event_type=EventType.PATCHED,
                message=f"channel {channel.id}: added {len(contract.added)} alias mappings",
                payload={"channel_id": channel.id, "added": contract.added, "repriced": repriced},
            )
        return channel.id

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

    def apply_decision(self, decision, group_id: int) -> int:
        action = decision.action
        if action in (ReuseAction.CREATE, ReuseAction.REPLACE):
            account_id = self.create_account(group_id)
            if action == ReuseAction.REPLACE:
                self.retire_account(decision.reused_from_account_id)
            return account_id
        account_id = decision.reused_from_account_id
        if action == ReuseAction.REACTIVATE:
            self.client.accounts.update(account_id, status="active")
            self.client.accounts.set_schedulable(account_id, True)
            ManagedResource.objects.filter(
                host=self.host, resource_type=Resource.ACCOUNT, host_resource_id=str(account_id)
            ).update(metadata={"families": sorted(self.families)})
        account = self.client.accounts.get(account_id)
        mapping = dict(account.model_mapping)
        missing = {k: v for k, v in self.account_mapping().items() if k not in mapping}
        if missing or group_id not in account.group_ids:
            mapping.update(missing)
            extra = dict(account.extra)
            extra.update(self.chat_only_extra())
            self.client.accounts.update(
                account_id,
                credentials=self.credentials(mapping),
                extra=extra,
                group_ids=sorted(set(account.group_ids) | {group_id}),
            )
            self.remember_families(account_id)
        return account_id

    def create_account(self, group_id: int) -> int:
        name = account_name(self.item)
        account = self.client.accounts.create_openai_apikey(
            name=name,
            credentials=self.credentials(self.account_mapping()),
            responses_supported=self.responses_supported(),
            extra=self.chat_only_extra(),
            group_ids=[group_id],
            concurrency=ACCOUNT_CONCURRENCY,
            priority=ACCOUNT_PRIORITY,
            # One key per item and attempt: a retry after a lost answer replays the first
            # create instead of making a twin ([OLD] hosts: adopt_untracked_account).
            idempotency_key=f"relay-manager-{self.item.item_id}-{self.item.attempt}",
        )
        self.record(
            Resource.ACCOUNT,
            account.id,
            name,
            api_key_digest=self.item.api_key_digest,
            metadata={"families": sorted(self.families)},
        )
        return account.id

    def retire_account(self, account_id: int | None) -> None:
        """The replaced account stops taking traffic and is remembered as deprecated."""
        if account_id is None:
            return
        self.client.accounts.set_schedulable(account_id, False)
        for record in ManagedResource.objects.filter(
            host=self.host, resource_type=Resource.ACCOUNT, host_resource_id=str(account_id)
        ):
            record.metadata = {**record.metadata, "deprecated": True, "access_status": None}
            record.save(update_fields=["metadata", "updated_at"])

    def remember_families(self, account_id: int) -> None:
        for record in ManagedResource.objects.filter(
            host=self.host, resource_type=Resource.ACCOUNT, host_resource_id=str(account_id)
        ):
            families = sorted(set(record.metadata.get("families", [])) | self.families)
            record.metadata = {**record.metadata, "families": families}
            record.save(update_fields=["metadata", "updated_at"])

    def ensure_access(self, group_id: int) -> None:
        if self.run.access_mode != ImportRun.AccessMode.SUBSCRIPTION:
            return
        for email in self.run.subscription_users:
            user_id, password = self.managed_user(email)
            assignment = self.client.subscriptions.assign_covering(
                user_id=user_id, group_id=group_id, validity_days=self.run.subscription_days
            )
            subscription = assignment.subscription
            ours = ManagedResource.objects.filter(
                host=self.host,
                resource_type=Resource.SUBSCRIPTION,
                host_resource_id=str(subscription.id),
            ).exists()
            # Recorded once, by the run that assigned it first, so a rollback can revoke it;
            # one that was on the host before us is never ours to revoke.
            if assignment.created and not ours:
                self.record(Resource.SUBSCRIPTION, subscription.id, f"{email}|{group_id}")
            else:
                self.note_subscription_reused(email, assignment, ours=ours)
            self.user_key(email, password, group_id)

    def note_subscription_reused(
        self, email: str, assignment: SubscriptionAssignment, *, ours: bool
    ) -> None:
        """Say what happened to a subscription that already existed: kept as it was, or
        extended to cover the run's days (never a failure, whatever its terms were)."""
        subscription = assignment.subscription
        until = f"{subscription.expires_at:%Y-%m-%d}" if subscription.expires_at else "?"
        whose = "" if ours else " (it was on the host already; a rollback keeps it)"
        if assignment.extended_by_days:
            message = (
                f"subscription {subscription.id} of {email} extended by "
                f"{assignment.extended_by_days} days (until {until}) to cover "
                f"{self.run.subscription_days} days{whose}"
            )
        else:
            message = (
                f"subscription {subscription.id} of {email} reused (valid until {until}){whose}"
            )
        record_event(
            item=self.item,
            event_type=EventType.REUSED,
            message=message,
            payload={
                "subscription_id": subscription.id,
                "extended_by_days": assignment.extended_by_days,
                "conflict_reason": assignment.conflict_reason,
                "managed": ours,
            },
        )

    def managed_user(self, email: str) -> tuple[int, Secret]:
        """Find or create the managed host user. Workers of many items race for the same
        email, so the host row is locked while one of them looks and creates."""
        with transaction.atomic():
            Host.objects.select_for_update().filter(pk=self.host.pk).first()
            return self._managed_user(email)

    def _managed_user(self, email: str) -> tuple[int, Secret]:
        record = ManagedResource.objects.filter(
            host=self.host, resource_type=Resource.USER, logical_key=email
        ).first()
        user = self.client.users.find_by_email(email)
        if user is not None:
            if record is None or record.secret is None:
                raise HostError(
                    status=409,
                    reason="USER_NOT_MANAGED",
                    message=f"host user {email} exists but was not created by relay-manager",
                    transient=False,
                )
            return user.id, record.secret
        password = Secret(secrets.token_urlsafe(18))
        user = self.client.users.create(email=email, password=password, balance=USER_BALANCE)
        ManagedResource.objects.filter(
            host=self.host, resource_type=Resource.USER, logical_key=email
        ).delete()
        self.record(Resource.USER, user.id, email, secret=password)
        return user.id, password

    def user_key(self, email: str, password: Secret, group_id: int) -> None:
        session = self.client.login(email, password)
        key, _ = self.client.keys.ensure(
            session, name=group_name(self.item.provider_id), group_id=group_id
        )
        logical = f"{email}|{group_id}"
        if not ManagedResource.objects.filter(
            host=self.host, resource_type=Resource.API_KEY, host_resource_id=str(key.id)
        ).exists():
            self.record(Resource.API_KEY, key.id, logical, secret=key.key)

    def finish(self, decision, provisioned: Provisioned) -> None:
        with transaction.atomic():
            batch = LegacyImportBatch.objects.select_for_update().get(run_id=self.run.run_id)
            if self.item.provider_id not in batch.provider_ids:
                batch.provider_ids = [*batch.provider_ids, self.item.provider_id]
                batch.save(update_fields=["provider_ids", "updated_at"])
            event_type = {
                ReuseAction.CREATE: EventType.STAGE_COMPLETED,
                ReuseAction.REUSE: EventType.REUSED,
                ReuseAction.PATCH: EventType.PATCHED,
                ReuseAction.REACTIVATE: EventType.REACTIVATED,
                ReuseAction.REPLACE: EventType.REPLACED,
            }[decision.action]
            transition_item(
                item_id=self.item.item_id,
                stage=Stage.CONFIRM,
                event_type=event_type,
                message=f"account {provisioned.account_id}: {decision.action}",
                fields={
                    "group_id": provisioned.group_id,
                    "channel_id": provisioned.channel_id,
                    "account_id": provisioned.account_id,
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


def account_state(account, record: ManagedResource) -> str:
    """The host's view plus ours: error → broken; our own replaced account → deprecated;
    switched off → disabled; a last validation verdict of broken → broken."""
    if account.status == "error":
        return AccountState.BROKEN
    if record.metadata.get("access_status") == "broken":
        return AccountState.BROKEN
    if record.metadata.get("deprecated"):
        return AccountState.DEPRECATED
    if account.status != "active" or not account.schedulable:
        return AccountState.DISABLED
    return AccountState.ACTIVE


def host_error_payload(exc: HostError) -> dict:
    return {"status": exc.status, "reason": exc.reason, "transient": exc.transient}
