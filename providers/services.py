"""Writes of the provider inventory: absorb import outcomes, refresh derived state, the
operator's enable/disable, and starting reconciles (which ``providers.reconcile`` performs)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django_q.tasks import async_task

from batch_import.models import ImportRun, ImportRunItem
from hosts.models import Host, ManagedResource
from hosts.sub2api import Account, client_for_host
from providers.errors import InvalidProviderTransition
from providers.models import (
    Provider,
    ProviderAccount,
    ProviderCheck,
    ReconcileRun,
    ResourceBaseline,
)
from providers.selectors import latest_access_checks
from providers.state import AccountHealth, access_closure, derive_state
from providers.transitions import EventType, provider_event, provider_move, provider_set_access
from relay_project.messages import Msg

Access = ImportRunItem.AccessStatus
AccountStatus = ProviderAccount.Status
RECONCILE_TASK = "providers.tasks.run_reconcile"

# Statuses the evidence may overwrite; the others are decisions (ours or the host's).
SETTLED_BY_EVIDENCE = frozenset({AccountStatus.ACTIVE, AccountStatus.FAILING})


def provider_absorb_run(*, run_id: str) -> list[Provider]:
    """Fold a finished import run's items into the inventory (idempotent: each item's gateway
    verdict is one check, keyed by the item). Previews make no providers."""
    run = ImportRun.objects.select_related("host").get(pk=run_id)
    if run.is_preview:
        return []
    touched: dict[int, Provider] = {}
    for item in run.items.filter(current_stage=ImportRunItem.Stage.DONE).order_by("position"):
        provider = _absorb_item(run, item)
        touched[provider.pk] = provider
    return [
        provider_refresh(provider_pk=pk, actor=f"import run {run_id}") for pk in sorted(touched)
    ]


def _absorb_item(run: ImportRun, item: ImportRunItem) -> Provider:
    provider, _ = Provider.objects.get_or_create(
        host=run.host, provider_id=item.provider_id, defaults={"base_url": item.base_url}
    )
    families = sorted(set(provider.families) | set(item.canonical_model_families))
    updates = {"base_url": item.base_url, "families": families, "last_import_run_id": run.run_id}
    if item.raw_models:
        updates["upstream_models"] = list(item.raw_models)
    Provider.objects.filter(pk=provider.pk).update(**updates, updated_at=timezone.now())
    provider.refresh_from_db()
    if item.account_id is None:
        return provider
    ok = item.access_status == Access.ACTIVE
    account, _ = ProviderAccount.objects.get_or_create(
        provider=provider,
        host_account_id=item.account_id,
        defaults={
            "key_fingerprint": item.api_key_fingerprint,
            "api_key_digest": item.api_key_digest,
        },
    )
    if item.rolled_back_at is not None:
        account.status = AccountStatus.REMOVED
    elif account.status in SETTLED_BY_EVIDENCE or account.status == AccountStatus.REMOVED:
        account.status = AccountStatus.ACTIVE if ok else AccountStatus.FAILING
    evidence = item.validation_evidence or {}
    account.key_fingerprint = item.api_key_fingerprint
    account.api_key_digest = item.api_key_digest
    if item.access_status != Access.UNKNOWN:
        account.last_test_ok = ok
        account.last_test_at = item.updated_at
        account.last_latency_ms = evidence.get("latency_ms")
        account.last_error = "" if ok else (item.last_error or "")[:2000]
        account.last_failure_transient = item.access_status == Access.DEGRADED
        if ok:
            account.consecutive_failures = 0
    account.save()
    if item.last_error_stage in (None, ImportRunItem.Stage.VALIDATE) and item.access_status in (
        Access.ACTIVE,
        Access.DEGRADED,
        Access.BROKEN,
    ):
        ProviderCheck.objects.update_or_create(
            import_item_id=item.item_id,
            defaults={
                "provider": provider,
                "account": account,
                "kind": ProviderCheck.Kind.GATEWAY,
                "access_mode": run.access_mode,
                "ok": ok,
                "transient": item.access_status == Access.DEGRADED,
                "latency_ms": evidence.get("latency_ms"),
                "message": "" if ok else (item.last_error or "")[:2000],
                "created_at": item.updated_at,
            },
        )
    return provider


def provider_refresh(*, provider_pk: int, actor: str = "") -> Provider:
    """Move the provider to the state and access closure its evidence supports. A disabled
    provider keeps its state (only ``provider_enable`` leaves it)."""
    provider = Provider.objects.get(pk=provider_pk)
    forget_deleted_accounts(provider)
    closure = access_closure(latest_gateway_checks(provider))
    provider = provider_set_access(provider_pk=provider.pk, access_status=closure, actor=actor)
    if provider.is_disabled:
        return provider
    target, reason = evidence_state(provider)
    return provider_move(provider_pk=provider.pk, to_state=target, reason=reason, actor=actor)


def forget_deleted_accounts(provider: Provider) -> int:
    """Accounts relay-manager itself deleted (rollback, replace) are removed, not missing."""
    # The records of the provider's own accounts (by resource id): reading every deleted
    # account of the host, once per provider, grew with the host.
    accounts = provider.accounts.exclude(status=AccountStatus.REMOVED).order_by("host_account_id")
    ids = [str(i) for i in accounts.values_list("host_account_id", flat=True)]
    deleted = ManagedResource.objects.filter(
        host_id=provider.host_id,
        resource_type=ManagedResource.ResourceType.ACCOUNT,
        host_resource_id__in=ids,
        state=ManagedResource.State.DELETED,
    ).values_list("host_resource_id", flat=True)
    return accounts.filter(host_account_id__in=[int(i) for i in deleted]).update(
        status=AccountStatus.REMOVED
    )


def evidence_state(provider: Provider) -> tuple[str, Msg]:
    accounts = [
        AccountHealth(status=a.status, last_ok=a.last_test_ok, transient=a.last_failure_transient)
        # One provider's accounts in their order, without joining the provider and its host
        # for every account (the default order goes through both).
        for a in provider.accounts.order_by("host_account_id")
    ]
    return derive_state(accounts, drifted=bool(provider.open_drift), probed=bool(provider.families))


def latest_gateway_checks(provider: Provider) -> dict[str, bool]:
    """``{access_mode: ok}`` of the provider's latest gateway check in each mode."""
    return {mode: check.ok for mode, check in latest_access_checks(provider).items()}


def provider_disable(*, provider_pk: int, actor: str = "") -> Provider:
    """Stop scheduling reconciles and health actions for this provider (its host resources
    stay as they are)."""
    return provider_move(
        provider_pk=provider_pk,
        to_state=Provider.State.DISABLED,
        reason=Msg(gettext_noop("disabled by an operator")),
        actor=actor,
    )


def provider_enable(*, provider_pk: int, actor: str = "") -> Provider:
    """Back from disabled to whatever the evidence supports."""
    provider = Provider.objects.get(pk=provider_pk)
    if not provider.is_disabled:
        return provider
    target, reason = evidence_state(provider)
    return provider_move(
        provider_pk=provider_pk,
        to_state=target,
        reason=Msg(gettext_noop("enabled: %(reason)s"), reason=reason),
        actor=actor,
    )


def provider_accept_drift(*, provider_pk: int, actor: str = "") -> Provider:
    """The operator keeps what the host has now: the next reconcile takes it as the baseline."""
    provider = Provider.objects.get(pk=provider_pk)
    ids = [finding.get("managed_resource_id") for finding in provider.open_drift]
    ResourceBaseline.objects.filter(resource_id__in=[i for i in ids if i]).delete()
    provider_event(
        provider=provider,
        event_type=EventType.DRIFT_FOUND,
        message=Msg(gettext_noop("drift accepted: the host's current shape becomes the baseline")),
        actor=actor,
        payload={"accepted": provider.open_drift},
    )
    Provider.objects.filter(pk=provider_pk).update(open_drift=[], updated_at=timezone.now())
    return provider_refresh(provider_pk=provider_pk, actor=actor)


def reconcile_start(
    *,
    host: Host,
    provider_pks: Iterable[int] | None = None,
    trigger: str = ReconcileRun.Trigger.MANUAL,
    requested_by: str = "",
    test_accounts: bool = True,
    sync_models: bool = True,
    enqueue: bool = True,
) -> ReconcileRun:
    """Record a reconcile of the host's providers (or of the given ones; disabled providers
    are skipped) and hand it to a worker (unless the caller performs it itself)."""
    scope = Provider.objects.filter(host=host).exclude(state=Provider.State.DISABLED)
    if provider_pks is not None:
        scope = scope.filter(pk__in=list(provider_pks))
    ids = sorted(scope.values_list("pk", flat=True))
    run = ReconcileRun.objects.create(
        host=host,
        trigger=trigger,
        requested_by=requested_by,
        test_accounts=test_accounts,
        sync_models=sync_models,
        provider_ids=ids,
        pending_provider_ids=ids,
    )
    if enqueue:
        transaction.on_commit(lambda: enqueue_reconcile(run.run_id))
    return run


def enqueue_reconcile(run_id: str) -> None:
    async_task(RECONCILE_TASK, run_id, group="providers")


def reconcile_all_hosts(*, trigger: str = ReconcileRun.Trigger.SCHEDULED) -> list[ReconcileRun]:
    """The scheduled reconcile: one run per host that has providers to look after, unless one
    is still running there."""
    runs = []
    busy = set(
        ReconcileRun.objects.filter(state=ReconcileRun.State.RUNNING).values_list(
            "host_id", flat=True
        )
    )
    for host in Host.objects.filter(providers__isnull=False).distinct():
        if host.pk not in busy:
            runs.append(reconcile_start(host=host, trigger=trigger, requested_by="schedule"))
    return runs


def absorb_finished_runs(*, since=None) -> int:
    """Catch up with import runs whose after-run task was lost: absorb every finished run newer
    than the newest one any provider recorded. Returns how many runs were absorbed."""
    if since is None:
        since = ImportRun.objects.filter(
            run_id__in=Provider.objects.values("last_import_run_id")
        ).aggregate(latest=Max("finished_at"))["latest"]
    runs = ImportRun.objects.filter(
        state__in=ImportRun.TERMINAL_STATES, is_preview=False, finished_at__isnull=False
    )
    if since is not None:
        runs = runs.filter(finished_at__gt=since)
    count = 0
    for run_id in runs.order_by("finished_at").values_list("run_id", flat=True):
        provider_absorb_run(run_id=run_id)
        count += 1
    return count


class BulkAction:
    TEST = "test"
    RECONCILE = "reconcile"
    DISABLE = "disable"
    ENABLE = "enable"
    ALL = (TEST, RECONCILE, DISABLE, ENABLE)


def providers_bulk(*, provider_pks: Iterable[int], action: str, actor: str = "") -> list:
    """One action on the selected providers: test/reconcile start one reconcile run per host
    (returned), disable/enable move each provider (returned)."""
    providers = list(Provider.objects.filter(pk__in=list(provider_pks)).select_related("host"))
    if action in (BulkAction.TEST, BulkAction.RECONCILE):
        by_host: dict[int, list[Provider]] = {}
        for provider in providers:
            by_host.setdefault(provider.host_id, []).append(provider)
        return [
            reconcile_start(
                host=group[0].host,
                provider_pks=[p.pk for p in group],
                requested_by=actor,
                sync_models=action == BulkAction.RECONCILE,
            )
            for group in by_host.values()
        ]
    move = provider_disable if action == BulkAction.DISABLE else provider_enable
    return [move(provider_pk=p.pk, actor=actor) for p in providers]


def provider_reconcile(
    *, provider: Provider, actor: str = "", test_accounts: bool = True, sync_models: bool = True
) -> ReconcileRun:
    """Reconcile one provider now (refused for a disabled one)."""
    if provider.is_disabled:
        raise InvalidProviderTransition(
            _("provider %(id)s is disabled") % {"id": provider.provider_id}
        )
    return reconcile_start(
        host=provider.host,
        provider_pks=[provider.pk],
        requested_by=actor,
        test_accounts=test_accounts,
        sync_models=sync_models,
    )


def provider_account_switch(*, account_pk: int, enable: bool, actor: str = "") -> ProviderAccount:
    """The operator takes an account out of the host's scheduling, or puts it back (also one
    the health policy or someone on the host switched off). The baseline follows, so the
    change is not reported as drift; an account switched off here is never re-enabled by the
    health policy."""
    account = ProviderAccount.objects.select_related("provider__host").get(pk=account_pk)
    provider = account.provider
    if provider.is_disabled:
        raise InvalidProviderTransition(
            _("provider %(id)s is disabled") % {"id": provider.provider_id}
        )
    with client_for_host(provider.host) as client:
        updated = client.accounts.set_schedulable(account.host_account_id, enable)
    ResourceBaseline.objects.filter(
        resource__host_id=provider.host_id,
        resource__resource_type=ManagedResource.ResourceType.ACCOUNT,
        resource__host_resource_id=str(account.host_account_id),
    ).update(snapshot=account_snapshot(updated))
    account.status = AccountStatus.ACTIVE if enable else AccountStatus.DISABLED_BY_OPERATOR
    if enable:
        account.consecutive_failures = 0
    account.save(update_fields=["status", "consecutive_failures", "updated_at"])
    if enable:
        template = gettext_noop("account %(account)s enabled on the host by %(actor)s")
    else:
        template = gettext_noop("account %(account)s disabled on the host by %(actor)s")
    by = actor or Msg(gettext_noop("an operator"))
    provider_event(
        provider=provider,
        event_type=EventType.ACCOUNT_ENABLED if enable else EventType.ACCOUNT_DISABLED,
        message=Msg(template, account=account.host_account_id, actor=by),
        actor=actor,
        payload={"account_id": account.host_account_id, "schedulable": enable},
    )
    provider_refresh(provider_pk=provider.pk, actor=actor)
    return account


def account_snapshot(account: Account) -> dict:
    """The compared fields of a host account (``state.DRIFT_FIELDS``)."""
    return {
        "schedulable": account.schedulable,
        "disabled": account.status in ("inactive", "disabled"),
        "group_ids": sorted(account.group_ids),
        "model_mapping": dict(sorted(account.model_mapping.items())),
        "base_url": account.base_url,
    }
