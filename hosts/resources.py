"""The host resources relay-manager makes: created, found, changed and deleted through the
adapter, and each recorded in ``ManagedResource`` right after the call that made it, so a failure
(or a killed worker) never leaves an untracked resource behind.

Every query is scoped to one host; relations are columns (``host_group_id``, ``user_record``),
never parsed out of names. No database lock is held across an HTTP call.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from hosts.models import Host, ManagedResource
from hosts.sub2api import Account, Channel, HostError, OpenAICredentials, Sub2ApiClient
from hosts.sub2api.naming import managed_account_name, managed_group_name
from hosts.sub2api.subscriptions import SubscriptionAssignment
from hosts.sub2api.types import (
    UNASKED,
    ApiKey,
    PricingEntry,
    Subscription,
    User,
    UserSession,
)
from relay_project.compiled_reads import CompiledInsert, CompiledRead, Slot
from relay_project.crypto import Secret

Resource = ManagedResource.ResourceType
State = ManagedResource.State

ACCOUNT_CONCURRENCY = 3
ACCOUNT_PRIORITY = 50
USER_BALANCE = 100.0
# A user whose create has not answered yet: the record holds the password before the POST, so
# any worker that finds the user on the host afterwards can log in as it.
PENDING_USER_PREFIX = "pending:"
# A record of what was made on the host (an account per item): its INSERT compiled once per
# process.
NEW_RECORD = CompiledInsert(ManagedResource)


@dataclass(frozen=True)
class Owner:
    """Who asks for a resource: the run and item recorded as its creator."""

    run_id: str
    item_id: str
    provider_id: str


@dataclass(frozen=True)
class TrackedAccount:
    """A managed account as the host sees it now, beside our record of it."""

    record: ManagedResource
    account: Account


class HostResources:
    """One item's view of the managed resources on one host.

    ``on_recorded`` is told of each resource recorded as created (the pipeline turns it into an
    item event); this module knows nothing of runs and items beyond their ids.
    """

    def __init__(
        self,
        host: Host,
        client: Sub2ApiClient,
        owner: Owner,
        *,
        on_recorded: Callable[[ManagedResource], None] | None = None,
    ) -> None:
        self.host, self.client, self.owner = host, client, owner
        self.on_recorded = on_recorded or (lambda record: None)

    def holding(self) -> tuple[HostResources, list[ManagedResource]]:
        """The same service, except that what it records is kept in the returned list instead
        of told (``announce`` tells it later): steps that run at once are told in the order
        they would have run one after another."""
        held: list[ManagedResource] = []
        return HostResources(self.host, self.client, self.owner, on_recorded=held.append), held

    def announce(self, held: list[ManagedResource]) -> None:
        for record in held:
            self.on_recorded(record)
        held.clear()

    # --- bookkeeping -------------------------------------------------------------------------
    def records(self, resource_type: str) -> QuerySet[ManagedResource]:
        return ManagedResource.objects.filter(host=self.host, resource_type=resource_type)

    def record(self, resource_type: str, host_resource_id: int | str, logical_key: str, **fields):
        identity = {
            "host": self.host,
            "resource_type": resource_type,
            "host_resource_id": str(host_resource_id),
        }
        values = {
            "logical_key": logical_key,
            "provider_id": self.owner.provider_id,
            "created_by_run_id": self.owner.run_id,
            "created_by_item_id": self.owner.item_id,
            "state": State.PRESENT,
            **fields,
        }
        try:
            # Nearly always a new resource: one INSERT (in a savepoint inside a transaction,
            # so a duplicate leaves the caller's transaction usable).
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                record = NEW_RECORD.create(**identity, **values)
        except IntegrityError:
            # Recorded already (adopted, or a create replayed after a lost answer).
            record, _ = ManagedResource.objects.update_or_create(**identity, defaults=values)
        self.on_recorded(record)
        return record

    def made_by_this_run(self, resource_type: str, logical_key: str) -> ManagedResource | None:
        """What this run made and recorded under ``logical_key`` (the provider's group, a
        managed user, its key for the group): the same for every item of the provider, so
        the others take it from the record instead of asking the host again."""
        return (
            self.records(resource_type)
            .filter(
                logical_key=logical_key, created_by_run_id=self.owner.run_id, state=State.PRESENT
            )
            .exclude(host_resource_id__startswith=PENDING_USER_PREFIX)
            .order_by("-id")
            .first()
        )

    def is_managed(self, resource_type: str, host_resource_id: int) -> bool:
        return self.records(resource_type).filter(host_resource_id=str(host_resource_id)).exists()

    # --- groups and channels -----------------------------------------------------------------
    def ensure_group(self) -> int:
        """The provider's subscription group, created (and recorded) when missing."""
        name = managed_group_name(self.owner.provider_id)
        if made := self.made_by_this_run(Resource.GROUP, name):
            return int(made.host_resource_id)
        group, created = self.client.groups.ensure(
            name=name,
            platform="openai",
            subscription_type="subscription",
            rate_multiplier=1.0,
            description=f"relay-manager: provider {self.owner.provider_id}",
        )
        if created:
            self.record(Resource.GROUP, group.id, name)
        return group.id

    def group_of_key(self, api_key: Secret) -> int:
        """The group a host user key is bound to (self-service: the operator's probe key)."""
        group_id = self.client.groups.group_of_key(api_key)
        if group_id is None:
            raise HostError(
                status=400,
                reason="PROBE_KEY_GROUP_UNKNOWN",
                message="probe_api_key is not bound to any group on this host",
                transient=False,
            )
        return group_id

    def find_channel(self, *, serving_group: int | None = None) -> Channel | None:
        """The provider's own channel; else, when asked, the channel already bound to
        ``serving_group`` (a host group belongs to at most one channel)."""
        channel = self.client.channels.find_by_name(managed_group_name(self.owner.provider_id))
        if channel is None and serving_group is not None:
            channel = self.client.channels.bound_to_group(serving_group)
        return channel

    def create_channel(
        self,
        *,
        group_id: int,
        model_mapping: dict,
        model_pricing: Sequence[PricingEntry],
        restrict_models: bool,
        billing_model_source: str,
        found: Channel | None = UNASKED,
    ) -> tuple[Channel, bool]:
        """The provider's channel, made unless it exists (``found``: the caller has just
        looked it up by name with ``find_channel``)."""
        name = managed_group_name(self.owner.provider_id)
        channel, created = self.client.channels.ensure(
            name=name,
            found=found,
            group_ids=[group_id],
            model_mapping=model_mapping,
            model_pricing=model_pricing,
            restrict_models=restrict_models,
            billing_model_source=billing_model_source,
        )
        if created:
            self.record(Resource.CHANNEL, channel.id, name)
        return channel, created

    # --- accounts ----------------------------------------------------------------------------
    def tracked_accounts(self, key_digest: str, *, mark_gone: bool = True) -> list[TrackedAccount]:
        """Our accounts of this provider + upstream key, as the host sees them now; the record
        of one the host no longer has is marked deleted (``mark_gone``)."""
        found: list[TrackedAccount] = []
        records = ACCOUNT_RECORDS.rows(
            host=self.host.pk, provider=self.owner.provider_id, digest=key_digest
        )
        for record in records:
            try:
                account = self.client.accounts.get(int(record.host_resource_id))
            except HostError as exc:
                if exc.status != 404:
                    raise
                if mark_gone:
                    record.state = State.DELETED
                    record.save(update_fields=["state", "updated_at"])
                continue
            found.append(TrackedAccount(record, account))
        return found

    def account_records(self, key_digest: str) -> QuerySet[ManagedResource]:
        """Our live account records of this provider + upstream key (an index range)."""
        return _account_records(self.host, self.owner.provider_id, key_digest)

    def adopt_untracked_accounts(
        self, key_fingerprint: str, key_digest: str, families: Iterable[str]
    ) -> None:
        """An account with our deterministic name but no record means a worker died between
        creating it and recording it (or the create's answer was lost): adopt it instead of
        creating a twin."""
        name = managed_account_name(self.owner.provider_id, key_fingerprint)
        for account in self.client.accounts.search(name, platform="openai"):
            if not self.is_managed(Resource.ACCOUNT, account.id):
                self.record(
                    Resource.ACCOUNT,
                    account.id,
                    name,
                    api_key_digest=key_digest,
                    families=sorted(families),
                    adopted=True,
                )

    def create_account(
        self,
        *,
        key_fingerprint: str,
        key_digest: str,
        credentials: OpenAICredentials,
        responses_supported: bool | None,
        extra: dict,
        group_id: int,
        families: Iterable[str],
        idempotency_key: str,
    ) -> int:
        name = managed_account_name(self.owner.provider_id, key_fingerprint)
        account = self.client.accounts.create_openai_apikey(
            name=name,
            credentials=credentials,
            responses_supported=responses_supported,
            extra=extra,
            group_ids=[group_id],
            concurrency=ACCOUNT_CONCURRENCY,
            priority=ACCOUNT_PRIORITY,
            idempotency_key=idempotency_key,
        )
        self.record(
            Resource.ACCOUNT,
            account.id,
            name,
            api_key_digest=key_digest,
            families=sorted(families),
        )
        return account.id

    def reactivate_account(self, account_id: int, families: Iterable[str]) -> None:
        self.client.accounts.update(account_id, status="active")
        self.client.accounts.set_schedulable(account_id, True)
        self.records(Resource.ACCOUNT).filter(host_resource_id=str(account_id)).update(
            families=sorted(families), deprecated=False
        )

    def retire_account(self, account_id: int) -> None:
        """A replaced account stops taking traffic and is remembered as deprecated."""
        self.client.accounts.set_schedulable(account_id, False)
        self.records(Resource.ACCOUNT).filter(host_resource_id=str(account_id)).update(
            deprecated=True
        )

    def extend_account(
        self,
        account_id: int,
        *,
        credentials: OpenAICredentials,
        extra: dict,
        group_ids: list[int],
        families: Iterable[str],
    ) -> None:
        """A reused account gains models, settings and a group; its record the families."""
        self.client.accounts.update(
            account_id, credentials=credentials, extra=extra, group_ids=group_ids
        )
        for record in self.records(Resource.ACCOUNT).filter(host_resource_id=str(account_id)):
            record.families = sorted(set(record.families) | set(families))
            record.save(update_fields=["families", "updated_at"])

    # --- users, subscriptions and user keys --------------------------------------------------
    def managed_user(
        self, email: str, *, found: User | None | object = UNASKED
    ) -> tuple[int, Secret]:
        """Find or create the managed host user ``email`` → ``(host user id, password)``
        (``found``: the host's user of that email, when the caller has just looked it up).

        Workers of many items race for the same email: the password is stored (encrypted) in
        the user's record *before* the create, and there is one live record per email (a
        unique constraint), so every racer holds the same password; a loser's create answers
        EMAIL_EXISTS and it reads the winner's user. No lock is held across the HTTP calls.
        """
        user = self.client.users.find_by_email(email) if found is UNASKED else found
        record = self._user_record(email)
        if user is not None:
            if record is None or record.secret is None:
                raise HostError(
                    status=409,
                    reason="USER_NOT_MANAGED",
                    message=f"host user {email} exists but was not created by relay-manager",
                    transient=False,
                )
            self._settle_user(record, user.id)
            return user.id, record.secret
        if record is None:
            record = self._claim_user(email)
        try:
            user = self.client.users.create(
                email=email, password=record.secret, balance=USER_BALANCE
            )
        except HostError as exc:
            if exc.reason != "EMAIL_EXISTS":
                raise
            user = self.client.users.find_by_email(email)
            if user is None:
                raise
        self._settle_user(record, user.id)
        return user.id, record.secret

    def holds_password(self, email: str) -> bool:
        """relay-manager made (or is making) host user ``email`` and can log in as it."""
        record = self._user_record(email)
        return record is not None and record.secret is not None

    def _user_record(self, email: str) -> ManagedResource | None:
        return (
            self.records(Resource.USER)
            .filter(logical_key=email)
            .exclude(state=State.DELETED)
            .order_by("-id")
            .first()
        )

    def _claim_user(self, email: str) -> ManagedResource:
        try:
            with transaction.atomic():
                record = ManagedResource.objects.create(
                    host=self.host,
                    resource_type=Resource.USER,
                    host_resource_id=PENDING_USER_PREFIX
                    + hashlib.sha256(email.lower().encode()).hexdigest()[:40],
                    logical_key=email,
                    provider_id=self.owner.provider_id,
                    created_by_run_id=self.owner.run_id,
                    created_by_item_id=self.owner.item_id,
                    secret=Secret(secrets.token_urlsafe(18)),
                )
        except IntegrityError:
            # Another worker claimed it first: use its password.
            return self._user_record(email)
        return record

    def _settle_user(self, record: ManagedResource, user_id: int) -> None:
        """The record takes the host's id: once after a claim, again if the user was made
        anew; a claim that gets its id is announced as created."""
        if record.host_resource_id == str(user_id):
            return
        claimed_here = record.host_resource_id.startswith(PENDING_USER_PREFIX)
        settled = ManagedResource.objects.filter(
            pk=record.pk, host_resource_id=record.host_resource_id
        ).update(host_resource_id=str(user_id), state=State.PRESENT, updated_at=timezone.now())
        record.host_resource_id, record.state = str(user_id), State.PRESENT
        if settled and claimed_here:  # once, by whichever racer settles it
            self.on_recorded(record)

    def assign_subscription(
        self,
        *,
        email: str,
        user_id: int,
        group_id: int,
        validity_days: int,
        before: Subscription | None | object = UNASKED,
    ) -> tuple[SubscriptionAssignment, bool]:
        """``(assignment, managed)``: the user's subscription to ``group_id`` covering
        ``validity_days`` (``before``: the host's subscription, when the caller has just
        looked it up). A subscription is recorded once, by the run that assigned it first, so
        a rollback can revoke it; one that was on the host before us is never ours."""
        assignment = self.client.subscriptions.assign_covering(
            user_id=user_id, group_id=group_id, validity_days=validity_days, before=before
        )
        subscription = assignment.subscription
        ours = self.is_managed(Resource.SUBSCRIPTION, subscription.id)
        if assignment.created and not ours:
            self.record(
                Resource.SUBSCRIPTION,
                subscription.id,
                f"{email}|{group_id}",
                host_group_id=group_id,
                user_record=self._user_record(email),
            )
            return assignment, True
        return assignment, ours

    def look_up_user_key(self, email: str, password: Secret) -> tuple[UserSession, ApiKey | None]:
        """The managed user's session and its key for the provider's group, if it has one
        (what ``ensure_user_key`` starts with; it needs neither the group nor a subscription)."""
        session = self.client.login(email, password)
        name = managed_group_name(self.owner.provider_id)
        return session, self.client.keys.find_by_name(session, name)

    def ensure_user_key(
        self,
        email: str,
        password: Secret,
        group_id: int,
        *,
        looked_up: tuple[UserSession, ApiKey | None] | None = None,
    ) -> None:
        """The managed user's key for the provider's group (the validation key);
        ``looked_up``: what ``look_up_user_key`` found moments ago."""
        session, found = looked_up or self.look_up_user_key(email, password)
        key, _ = self.client.keys.ensure(
            session, name=managed_group_name(self.owner.provider_id), group_id=group_id, found=found
        )
        if not self.is_managed(Resource.API_KEY, key.id):
            self.record(
                Resource.API_KEY,
                key.id,
                user_key_name(email, group_id),
                secret=key.key,
                host_group_id=group_id,
                user_record=self._user_record(email),
            )


def user_key_name(email: str, group_id: int) -> str:
    """The logical key of a managed user's key for a group."""
    return f"{email}|{group_id}"


def _account_records(host, provider_id, key_digest) -> QuerySet[ManagedResource]:
    """``HostResources.account_records``, of values or ``Slot``s."""
    return ManagedResource.objects.filter(
        host=host,
        resource_type=Resource.ACCOUNT,
        provider_id=provider_id,
        api_key_digest=key_digest,
    ).exclude(state=State.DELETED)


def _account_records_of_slots() -> QuerySet[ManagedResource]:
    field = ManagedResource._meta.get_field
    return _account_records(
        Slot("host", field("host").target_field),
        Slot("provider", field("provider_id")),
        Slot("digest", field("api_key_digest")),
    )


# ``tracked_accounts``'s read (every item provisioning asks), compiled once per process. Not
# a fixed plan: a run records an account per item as it goes, and a plan made once while
# there were few records could scan them all at every run after.
ACCOUNT_RECORDS = CompiledRead(ManagedResource, _account_records_of_slots)


def user_key(host: Host, email: str, group_id: int) -> Secret | None:
    """The stored key of managed user ``email`` for ``group_id`` on ``host``."""
    record = USER_KEY.first(host=host.pk, group=group_id, email=email)
    return record.secret if record else None


def _user_keys() -> QuerySet[ManagedResource]:
    field = ManagedResource._meta.get_field
    host = Slot("host", field("host").target_field)
    return (
        ManagedResource.objects.filter(
            host=host,
            resource_type=Resource.API_KEY,
            host_group_id=Slot("group", field("host_group_id")),
            user_record__logical_key=Slot("email", field("logical_key")),
            user_record__host=host,  # the email's record of this host, not of every host
            state=State.PRESENT,
        )
        .exclude(secret=None)
        .order_by("-id")
    )


# ``user_key``'s read (every item validating in subscription mode asks), compiled once per
# process. Not a fixed plan: the records' table grows by an account per item as a run goes,
# and a plan made once while it held few rows could scan it all at every run after.
USER_KEY = CompiledRead(ManagedResource, _user_keys, first=True)


def delete_resource(client: Sub2ApiClient, record: ManagedResource) -> None:
    """Delete one managed resource on its host (not the record: the caller says what
    happened). A user key is deleted as its user: the admin API has no key DELETE."""
    resource_id = record.host_id_int
    if resource_id is None:
        return  # a user whose create never answered: nothing known to delete
    resource_type = record.resource_type
    if resource_type == Resource.SUBSCRIPTION:
        client.subscriptions.revoke(resource_id)
    elif resource_type == Resource.API_KEY:
        _delete_user_key(client, record, resource_id)
    elif resource_type == Resource.ACCOUNT:
        client.accounts.delete(resource_id)
    elif resource_type == Resource.CHANNEL:
        client.channels.delete(resource_id)
    elif resource_type == Resource.GROUP:
        client.groups.delete(resource_id)
    elif resource_type == Resource.USER:
        client.users.delete(resource_id)


def _delete_user_key(client: Sub2ApiClient, record: ManagedResource, key_id: int) -> None:
    user = record.user_record
    if user is None or user.secret is None or user.state == State.DELETED:
        return  # its user is gone, and the host dropped the user's keys with it
    session = client.login(user.logical_key, user.secret)
    client.keys.delete(session, key_id)
