"""The reuse preflight's facts: our accounts of one provider + upstream key on the item's host,
each with the state ``decide_reuse`` weighs (the host's view plus our last verdict on it)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Exists, Q, QuerySet, Subquery
from django.utils import timezone

from batch_import.leases import this_process
from batch_import.models import ImportRun, ImportRunItem, ImportRunItemEvent
from batch_import.reuse import ExistingAccount
from hosts.resources import HostResources, TrackedAccount
from relay_project.compiled_reads import CompiledRead, CompiledValues, Slot

AccountState = ImportRunItem.MatchedAccountState
Access = ImportRunItem.AccessStatus


def existing_accounts(
    item: ImportRunItem, resources: HostResources, *, read_only: bool = False
) -> list[ExistingAccount]:
    """Unless ``read_only`` (a preview writes nothing): first take in an account a lost create
    left untracked, and mark the records of accounts the host no longer has."""
    if not read_only and provisioned_before(item):
        resources.adopt_untracked_accounts(
            item.api_key_fingerprint, item.api_key_digest, item.canonical_model_families
        )
    tracked = resources.tracked_accounts(item.api_key_digest, mark_gone=not read_only)
    verdicts = last_verdicts(item, [t.account.id for t in tracked])
    return [
        ExistingAccount(
            account_id=t.account.id,
            provider_id=t.record.provider_id,
            state=account_state(t, verdicts.get(t.account.id)),
            families=frozenset(t.record.families),
        )
        for t in tracked
    ]


def provisioned_before(item: ImportRunItem) -> bool:
    """Whether the item's account (its name: provider + key) may have been created on its
    host before without being recorded: only a provisioning stage creates one, so only when
    another item of the same provider + key on the host has got that far (another run's, a
    duplicate), or this item started provisioning before (an earlier attempt, a worker that
    died in it: each start is an event). A key new to the host, nearly every key of a large
    import, costs this read instead of a search of the host's accounts. Each half is one
    index range of a key's items or of the item's events, whatever the run's size."""
    [(others, own_starts)] = EARLIER_PROVISIONING.rows(
        item=item.pk, provider=item.provider_id, digest=item.api_key_digest, host=item.run.host_id
    )
    return others or (own_starts or 0) > 1


def _earlier_provisioning() -> QuerySet[ImportRunItem]:
    field = ImportRunItem._meta.get_field
    # Each half names the item by the parameter, not by the outer row: correlated with the
    # outer row, the count of its starts read more events the longer the run on PostgreSQL
    # (tests/integration/test_rows_per_item.py), though its plan for one run read four.
    item = Slot("item", field("item_id"))
    others = (
        ImportRunItem.objects.filter(
            provider_id=Slot("provider", field("provider_id")),
            api_key_digest=Slot("digest", field("api_key_digest")),
            run__host_id=Slot("host", ImportRun._meta.get_field("host").target_field),
            run__is_preview=False,
        )
        .exclude(pk=item)
        .exclude(current_stage=ImportRunItem.Stage.PROBE)
    )
    own_starts = (
        ImportRunItemEvent.objects.filter(
            item_id=item,
            event_type=ImportRunItemEvent.EventType.STAGE_STARTED,
            stage=ImportRunItem.Stage.PROVISION,
        )
        .order_by()
        .values("item_id")
        .annotate(starts=Count("pk"))
        .values("starts")
    )
    return ImportRunItem.objects.filter(pk=item).values_list(Exists(others), Subquery(own_starts))


# ``provisioned_before``'s read (every item provisioning asks), compiled once per process. Not
# a fixed plan: it reads the item's events, which a run writes as it goes, and a plan made
# once while there were few of them scanned them all at every run after
# (``tests/integration/test_rows_per_item.py``).
EARLIER_PROVISIONING = CompiledValues(ImportRunItem, _earlier_provisioning)


def last_verdicts(item: ImportRunItem, account_ids: list[int]) -> dict[int, str]:
    """Account id → the last verdict (active / degraded / broken) of an item of the same
    provider + key on the same host that used it: items are the one record of verdicts."""
    if not account_ids:
        return {}
    rows = (
        ImportRunItem.objects.filter(
            provider_id=item.provider_id,
            api_key_digest=item.api_key_digest,
            run__host_id=item.run.host_id,
            run__is_preview=False,
            account_id__in=account_ids,
        )
        .exclude(access_status=Access.UNKNOWN)
        .order_by("account_id", "-updated_at")
        .values_list("account_id", "access_status")
    )
    verdicts: dict[int, str] = {}
    for account_id, access in rows:
        verdicts.setdefault(account_id, access)
    return verdicts


def account_state(tracked: TrackedAccount, last_verdict: str | None) -> str:
    """The host's view plus ours: error → broken; our own replaced account → deprecated;
    a last validation verdict of broken → broken; switched off → disabled."""
    account, record = tracked.account, tracked.record
    if account.status == "error":
        return AccountState.BROKEN
    if record.deprecated:
        return AccountState.DEPRECATED
    if last_verdict == Access.BROKEN:
        return AccountState.BROKEN
    if account.status != "active" or not account.schedulable:
        return AccountState.DISABLED
    return AccountState.ACTIVE


def sibling_key(item: ImportRunItem) -> tuple[str, str | None]:
    """Whose settled item can stand for this one's set-up: the same run and provider (in
    self-service, the whole run: the operator key's group is every provider's)."""
    if item.run.access_mode == ImportRun.AccessMode.SELF_SERVICE:
        return (item.run_id, None)
    return (item.run_id, item.provider_id)


def settled_sibling(item: ImportRunItem) -> ImportRunItem | None:
    """An item of the same run that already set up what this one needs: the same group (the
    provider's own; in self-service, the operator key's) and, in subscription mode, the same
    users' access to it. Its group id is set only once all of that is done, so the host need
    not be asked again (a run of many keys of one provider asks once)."""
    if item.run.access_mode == ImportRun.AccessMode.SELF_SERVICE:
        sibling = SETTLED_IN_RUN.first(run=item.run_id, item=item.pk)
    else:
        sibling = SETTLED_OF_PROVIDER.first(
            run=item.run_id, item=item.pk, provider=item.provider_id
        )
    if sibling is not None:
        sibling.run = item.run  # as the run's item manager sets it
    return sibling


def _settled_siblings(*, of_provider: bool) -> QuerySet[ImportRunItem]:
    field = ImportRunItem._meta.get_field
    siblings = ImportRunItem.objects.filter(
        run_id=Slot("run", field("run").target_field),
        group_id__isnull=False,
        rolled_back_at__isnull=True,
    )
    if of_provider:
        siblings = siblings.filter(provider_id=Slot("provider", field("provider_id")))
    return siblings.exclude(pk=Slot("item", field("item_id"))).only(
        "item_id",
        "run_id",
        "group_id",
        "channel_id",
        "raw_models",
        "subscription_access",
        "legacy_batch_id",
        "legacy_provider_id",
    )


# ``settled_sibling``'s reads (every item provisioning asks), compiled once per process; a
# fixed plan: the run's (and provider's) settled items by ``item_run_settled_idx``.
SETTLED_IN_RUN = CompiledRead(
    ImportRunItem, lambda: _settled_siblings(of_provider=False), first=True, fixed_plan=True
)
SETTLED_OF_PROVIDER = CompiledRead(
    ImportRunItem, lambda: _settled_siblings(of_provider=True), first=True, fixed_plan=True
)


def provisioning_elsewhere(item: ImportRunItem, before: tuple[datetime, str]) -> bool:
    """Whether a sibling is provisioning in another worker process now (unsettled, under a
    live lease, not waiting for a retry) that entered the provision stage (its last
    transition: ``updated_at``, then ``item_id``) before ``before``. Waiting only ever for an
    earlier one, no two wait for each other."""
    at, item_id = before
    values = {
        "run": item.run_id,
        "now": timezone.now(),
        "at": at,
        "item": item_id,
        "process": this_process(),  # how the lease owners of this process start
    }
    if item.run.access_mode == ImportRun.AccessMode.SELF_SERVICE:
        return bool(PROVISIONING_IN_RUN.rows(**values))
    return bool(PROVISIONING_OF_PROVIDER.rows(**values, provider=item.provider_id))


def _provisioning_siblings(*, of_provider: bool) -> QuerySet:
    field = ImportRunItem._meta.get_field
    now, at = Slot("now", field("lease_until")), Slot("at", field("updated_at"))
    siblings = ImportRunItem.objects.filter(
        run_id=Slot("run", field("run").target_field),
        current_stage=ImportRunItem.Stage.PROVISION,
        group_id__isnull=True,
        lease_until__gt=now,
    )
    if of_provider:
        siblings = siblings.filter(provider_id=Slot("provider", field("provider_id")))
    earlier = Q(updated_at__lt=at) | Q(updated_at=at, item_id__lt=Slot("item", field("item_id")))
    due = Q(next_retry_at__isnull=True) | Q(next_retry_at__lte=now)
    ours = Q(lease_owner__startswith=Slot("process", field("lease_owner")))
    return siblings.filter(earlier, due).exclude(ours).order_by().values_list("pk")[:1]


# ``provisioning_elsewhere``'s reads (a leader asks, then polls while it waits), compiled once
# per process: the query built anew at every poll cost more than the read.
PROVISIONING_IN_RUN = CompiledValues(
    ImportRunItem, lambda: _provisioning_siblings(of_provider=False)
)
PROVISIONING_OF_PROVIDER = CompiledValues(
    ImportRunItem, lambda: _provisioning_siblings(of_provider=True)
)
