"""Reconcile (seed 002 §5.6, ARCHITECTURE §9): compare what relay-manager made with the host,
re-test the accounts, re-validate access through the gateway, sync upstream models, and apply
the health policy. It never touches a host resource it did not create (``ManagedResource``).

A run is leased like an item; the providers still to do are kept on the run, so a killed
worker's run is resumed by the next sweep where it stopped.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from batch_import.models import ImportRun, ImportRunItem
from batch_import.run_requests import EntryInput, RunRequest
from batch_import.services import run_start
from batch_import.stages.confirm import gateway_model
from batch_import.stages.validate import NoAccessKey, access_key
from hosts.models import ManagedResource
from hosts.sub2api import HostError, Sub2ApiClient, client_for_host
from hosts.sub2api.accounts import AccountTestFailure, classify_test_failure
from probe.client import UpstreamClient
from probe.discovery import discover_models
from probe.errors import ProbeError
from providers.models import (
    Provider,
    ProviderAccount,
    ProviderCheck,
    ReconcileResult,
    ReconcileRun,
    ResourceBaseline,
)
from providers.services import (
    account_snapshot,
    enqueue_reconcile,
    forget_deleted_accounts,
    provider_refresh,
)
from providers.state import drift
from providers.transitions import EventType, provider_event
from relay_project.messages import Msg, english, stored

logger = logging.getLogger(__name__)
Resource = ManagedResource.ResourceType
Kind = ReconcileResult.Kind
AccountStatus = ProviderAccount.Status
COMPARED_TYPES = (Resource.GROUP, Resource.CHANNEL, Resource.ACCOUNT)
TRANSIENT_TEST_FAILURES = (AccountTestFailure.WARMUP, AccountTestFailure.TRANSIENT)


@dataclass(frozen=True)
class ReconcileContext:
    worker_id: str
    host_transport: httpx.BaseTransport | None = None
    upstream_transport: httpx.BaseTransport | None = None


# --- the run: lease, resume, finish ------------------------------------------------------------
def lease_ttl() -> timedelta:
    return timedelta(seconds=settings.RELAY_LEASE_TTL)


def claim(run_id: str, *, worker_id: str) -> bool:
    now = timezone.now()
    taken = (
        ReconcileRun.objects.filter(pk=run_id, state=ReconcileRun.State.RUNNING)
        .exclude(lease_until__gt=now)
        .update(lease_owner=worker_id, lease_until=now + lease_ttl())
    )
    return taken == 1


def renew(run_id: str, *, worker_id: str) -> bool:
    return (
        ReconcileRun.objects.filter(pk=run_id, lease_owner=worker_id).update(
            lease_until=timezone.now() + lease_ttl()
        )
        == 1
    )


def resumable_runs() -> list[str]:
    """Running reconciles nobody holds (a killed worker, a lost task)."""
    now = timezone.now()
    return list(
        ReconcileRun.objects.filter(state=ReconcileRun.State.RUNNING)
        .exclude(lease_until__gt=now)
        .values_list("run_id", flat=True)
    )


def reconcile_run(run_id: str, ctx: ReconcileContext) -> str:
    """Reconcile every pending provider of the run, a bounded number side by side. Returns
    ``not_claimed``, ``lost`` or the run's final state."""
    if not claim(run_id, worker_id=ctx.worker_id):
        return "not_claimed"
    started = time.monotonic()
    # Stop starting new providers well before the task timeout; the rest goes to a new task.
    budget = settings.RELAY_TASK_TIMEOUT / 2
    size = settings.RELAY_RECONCILE_CONCURRENCY
    if connection.in_atomic_block:
        size = 1  # other threads could not see this transaction's rows (sync mode, tests)
    try:
        run = ReconcileRun.objects.select_related("host").get(pk=run_id)
        pending = list(run.pending_provider_ids)
        with ThreadPoolExecutor(max_workers=size, thread_name_prefix="reconcile") as pool:
            while pending:
                if time.monotonic() - started > budget:
                    transaction.on_commit(lambda: enqueue_reconcile(run_id))
                    return "continued"
                chunk, pending = pending[:size], pending[size:]
                if size == 1:  # in this thread and its database connection
                    done = [_one(run, pk, ctx) for pk in chunk]
                else:
                    done = list(pool.map(lambda pk: _one_in_thread(run, pk, ctx), chunk))
                if not all(done):
                    return "lost"
        return _finish(run_id)
    finally:
        ReconcileRun.objects.filter(pk=run_id, lease_owner=ctx.worker_id).update(
            lease_owner=None, lease_until=None
        )


def _one_in_thread(run: ReconcileRun, provider_pk: int, ctx: ReconcileContext) -> bool:
    try:
        return _one(run, provider_pk, ctx)
    finally:
        connections.close_all()  # this thread's own connection


def _one(run: ReconcileRun, provider_pk: int, ctx: ReconcileContext) -> bool:
    if not renew(run.run_id, worker_id=ctx.worker_id):
        return False
    provider = Provider.objects.select_related("host").filter(pk=provider_pk).first()
    if provider is not None and not provider.is_disabled:
        try:
            reconcile_provider(run, provider, ctx)
        except Exception as exc:  # one provider's surprise must not stop the others
            logger.exception("reconcile of provider %s failed", provider_pk)
            _result(
                run,
                provider,
                Kind.ERROR,
                Msg(gettext_noop("unexpected %(error)s"), error=type(exc).__name__),
            )
    with transaction.atomic():
        locked = ReconcileRun.objects.select_for_update().get(pk=run.run_id)
        pending = [pk for pk in locked.pending_provider_ids if pk != provider_pk]
        locked.pending_provider_ids = pending
        locked.save(update_fields=["pending_provider_ids"])
    return True


def _finish(run_id: str) -> str:
    run = ReconcileRun.objects.get(pk=run_id)
    providers = Provider.objects.filter(pk__in=run.provider_ids)
    run.drifted_providers = providers.exclude(open_drift=[]).count()
    run.failed_checks = run.results.filter(
        kind__in=(Kind.TEST_FAILED, Kind.ACCESS_FAILED, Kind.ERROR)
    ).count()
    run.state = ReconcileRun.State.COMPLETED
    run.finished_at = timezone.now()
    run.save(update_fields=["drifted_providers", "failed_checks", "state", "finished_at"])
    return run.state


# --- one provider ------------------------------------------------------------------------------
def reconcile_provider(run: ReconcileRun, provider: Provider, ctx: ReconcileContext) -> None:
    """Compare, re-test, re-validate, sync models; then the provider moves to what it found."""
    forget_deleted_accounts(provider)
    client = client_for_host(provider.host, transport=ctx.host_transport)
    try:
        findings = compare_resources(run, provider, client)
        Provider.objects.filter(pk=provider.pk).update(open_drift=findings)
        if run.test_accounts:
            for account in provider.accounts.exclude(
                status__in=(AccountStatus.REMOVED, AccountStatus.MISSING)
            ):
                check_account(run, provider, account, client)
            validate_access(run, provider, client)
    finally:
        client.close()
    if run.sync_models:
        sync_models(run, provider, ctx)
    Provider.objects.filter(pk=provider.pk).update(last_reconciled_at=timezone.now())
    provider_event(
        provider=provider,
        event_type=EventType.RECONCILED,
        message=Msg(gettext_noop("reconciled by %(run)s"), run=run.run_id),
        actor=run.requested_by or run.trigger,
        payload={"reconcile_run": run.run_id, "drift": findings},
    )
    provider_refresh(provider_pk=provider.pk, actor=f"reconcile {run.run_id}")


def managed_records(provider: Provider):
    return ManagedResource.objects.filter(
        host_id=provider.host_id,
        provider_id=provider.provider_id,
        resource_type__in=COMPARED_TYPES,
    ).exclude(state=ManagedResource.State.DELETED)


def observe(client: Sub2ApiClient, record: ManagedResource) -> dict[str, Any]:
    """The compared fields of the resource as the host has it now (``DRIFT_FIELDS``)."""
    rid = int(record.host_resource_id)
    if record.resource_type == Resource.GROUP:
        group = client.groups.get(rid)
        return {"name": group.name, "status": group.status, "platform": group.platform}
    if record.resource_type == Resource.CHANNEL:
        channel = client.channels.get(rid)
        return {
            "status": channel.status,
            "group_ids": sorted(channel.group_ids),
            "model_mapping": dict(sorted(channel.model_mapping.get("openai", {}).items())),
            "restrict_models": channel.restrict_models,
        }
    return account_snapshot(client.accounts.get(rid))


def compare_resources(
    run: ReconcileRun, provider: Provider, client: Sub2ApiClient
) -> list[dict[str, Any]]:
    """Every recorded group, channel and account against the host: gone → ``missing``,
    compared fields changed since the baseline → ``changed`` with the differences. Returns
    the drift findings (empty: the host matches)."""
    findings: list[dict[str, Any]] = []
    for record in managed_records(provider):
        rtype = record.resource_type
        try:
            observed = observe(client, record)
        except HostError as exc:
            if exc.status == 404:
                _mark_missing(run, provider, record)
                findings.append(_finding(record, Kind.MISSING, {}))
            else:
                _result(
                    run,
                    provider,
                    Kind.ERROR,
                    Msg(gettext_noop("host: %(error)s"), error=str(exc)),
                    record=record,
                )
            continue
        if record.state == ManagedResource.State.DRIFTED:
            # It came back (restored by hand): present again, compared as usual.
            ManagedResource.objects.filter(pk=record.pk).update(state=ManagedResource.State.PRESENT)
        baseline = ResourceBaseline.objects.filter(resource=record).first()
        if baseline is None:
            ResourceBaseline.objects.create(resource=record, snapshot=observed)
            _result(
                run, provider, Kind.BASELINE, Msg(gettext_noop("baseline recorded")), record=record
            )
        else:
            differences = drift(baseline.snapshot, observed)
            if differences:
                findings.append(_finding(record, Kind.CHANGED, differences))
                _result(
                    run,
                    provider,
                    Kind.CHANGED,
                    _describe(_finding(record, Kind.CHANGED, differences)),
                    record=record,
                    diff=differences,
                )
            else:
                _result(run, provider, Kind.PRESENT, "", record=record)
        if rtype == Resource.ACCOUNT:
            _note_host_disable(run, provider, record, observed)
    if findings:
        provider_event(
            provider=provider,
            event_type=EventType.DRIFT_FOUND,
            # Only the findings read in the reader's language; their list needs no sentence.
            message=Msg("%(findings)s", findings=[_describe(f) for f in findings]),
            actor=f"reconcile {run.run_id}",
            payload={"findings": findings},
        )
    return findings


def _finding(record: ManagedResource, kind: str, differences: dict) -> dict[str, Any]:
    return {
        "managed_resource_id": record.pk,
        "resource_type": record.resource_type,
        "host_resource_id": record.host_resource_id,
        "kind": kind,
        "diff": differences,
    }


def _describe(finding: dict[str, Any]) -> Msg:
    kind = Msg.label(ManagedResource.ResourceType(finding["resource_type"]).label)
    resource = finding["host_resource_id"]
    if finding["kind"] == Kind.MISSING:
        return Msg(gettext_noop("%(kind)s %(id)s is gone from the host"), kind=kind, id=resource)
    return Msg(
        gettext_noop("%(kind)s %(id)s changed: %(fields)s"),
        kind=kind,
        id=resource,
        fields=", ".join(finding["diff"]),
    )


def _mark_missing(run: ReconcileRun, provider: Provider, record: ManagedResource) -> None:
    ManagedResource.objects.filter(pk=record.pk).update(state=ManagedResource.State.DRIFTED)
    if record.resource_type == Resource.ACCOUNT:
        provider.accounts.filter(host_account_id=int(record.host_resource_id)).update(
            status=AccountStatus.MISSING
        )
    _result(
        run,
        provider,
        Kind.MISSING,
        _describe(_finding(record, Kind.MISSING, {})),
        record=record,
    )


def _note_host_disable(
    run: ReconcileRun, provider: Provider, record: ManagedResource, observed: dict
) -> None:
    """An account someone switched off on the host is reported and left alone: relay-manager
    only ever re-enables what its own health policy disabled."""
    account = _account_row(provider, record)
    off = observed["disabled"] or not observed["schedulable"]
    if account.status in (AccountStatus.DISABLED_BY_POLICY, AccountStatus.DISABLED_BY_OPERATOR):
        return
    if off and account.status != AccountStatus.DISABLED_ON_HOST:
        account.status = AccountStatus.DISABLED_ON_HOST
        account.save(update_fields=["status", "updated_at"])
        provider_event(
            provider=provider,
            event_type=EventType.ACCOUNT_DISABLED_ON_HOST,
            message=Msg(
                gettext_noop("account %(account)s was disabled on the host; left as it is"),
                account=account.host_account_id,
            ),
            actor=f"reconcile {run.run_id}",
            payload={"account_id": account.host_account_id},
        )
    if off:
        _result(
            run,
            provider,
            Kind.DISABLED_ON_HOST,
            Msg(
                gettext_noop("account %(account)s is disabled on the host (not by relay-manager)"),
                account=account.host_account_id,
            ),
            record=record,
        )
    elif account.status in (AccountStatus.DISABLED_ON_HOST, AccountStatus.MISSING):
        account.status = AccountStatus.ACTIVE  # switched back on by whoever switched it off
        account.save(update_fields=["status", "updated_at"])


def _account_row(provider: Provider, record: ManagedResource) -> ProviderAccount:
    account, _ = ProviderAccount.objects.get_or_create(
        provider=provider,
        host_account_id=int(record.host_resource_id),
        defaults={"api_key_digest": record.api_key_digest},
    )
    return account


# --- health: account tests and the policy ------------------------------------------------------
def smoke_model_for(provider: Provider, account: ProviderAccount) -> str:
    item = _latest_item(provider, digest=account.api_key_digest)
    return gateway_model(item) if item is not None else ""


def check_account(
    run: ReconcileRun, provider: Provider, account: ProviderAccount, client: Sub2ApiClient
) -> None:
    """Test one account through the host and apply the health policy: N definitive failures
    in a row disable it on the host; a pass re-enables what the policy disabled. Accounts
    disabled by someone else are not tested (and never re-enabled)."""
    if account.status in (AccountStatus.DISABLED_ON_HOST, AccountStatus.DISABLED_BY_OPERATOR):
        return
    record = ManagedResource.objects.filter(
        host_id=provider.host_id,
        resource_type=Resource.ACCOUNT,
        host_resource_id=str(account.host_account_id),
    ).first()
    started = time.monotonic()
    try:
        result = client.accounts.test(
            account.host_account_id, model=smoke_model_for(provider, account) or None
        )
        ok, error = result.success, result.error or ("" if result.success else "test failed")
        transient = classify_test_failure(result) in TRANSIENT_TEST_FAILURES
    except HostError as exc:
        ok, error, transient = False, f"host: {exc}", exc.transient
    latency = round((time.monotonic() - started) * 1000)
    now = timezone.now()
    ProviderCheck.objects.create(
        provider=provider,
        account=account,
        kind=ProviderCheck.Kind.ACCOUNT_TEST,
        ok=ok,
        transient=transient,
        latency_ms=latency,
        message=error[:2000],
        reconcile_run=run,
        created_at=now,
    )
    account.last_test_at, account.last_test_ok, account.last_latency_ms = now, ok, latency
    account.last_error = "" if ok else error[:2000]
    account.last_failure_transient = transient
    if ok:
        account.consecutive_failures = 0
        passed = Msg(
            gettext_noop("account %(account)s passed (%(latency)s ms)"),
            account=account.host_account_id,
            latency=latency,
        )
        _result(run, provider, Kind.TEST_PASSED, passed, record=record)
        if account.status == AccountStatus.DISABLED_BY_POLICY:
            _switch(run, provider, account, client, record, enable=True)
        account.status = AccountStatus.ACTIVE
    else:
        if not transient:
            account.consecutive_failures += 1
        _result(
            run,
            provider,
            Kind.TEST_FAILED,
            Msg(
                gettext_noop("account %(account)s failed (transient): %(error)s")
                if transient
                else gettext_noop("account %(account)s failed: %(error)s"),
                account=account.host_account_id,
                error=error,
            ),
            record=record,
            diff={"consecutive_failures": account.consecutive_failures},
        )
        if account.status != AccountStatus.DISABLED_BY_POLICY:
            account.status = AccountStatus.FAILING
            if account.consecutive_failures >= settings.RELAY_HEALTH_DISABLE_AFTER:
                _switch(run, provider, account, client, record, enable=False)
                account.status = AccountStatus.DISABLED_BY_POLICY
    account.save()


def _switch(
    run: ReconcileRun,
    provider: Provider,
    account: ProviderAccount,
    client: Sub2ApiClient,
    record: ManagedResource | None,
    *,
    enable: bool,
) -> None:
    """Take the account out of (or back into) the host's scheduling; the baseline follows, so
    our own change is never reported as drift."""
    updated = client.accounts.set_schedulable(account.host_account_id, enable)
    if record is not None:
        ResourceBaseline.objects.filter(resource=record).update(snapshot=account_snapshot(updated))
    if enable:
        message = Msg(
            gettext_noop("account %(account)s passes again: re-enabled on the host"),
            account=account.host_account_id,
        )
        kind, event = Kind.RE_ENABLED, EventType.ACCOUNT_ENABLED
    else:
        message = Msg(
            gettext_noop(
                "account %(account)s failed %(count)s checks in a row: disabled on the host"
            ),
            account=account.host_account_id,
            count=account.consecutive_failures,
        )
        kind, event = Kind.DISABLED_BY_POLICY, EventType.ACCOUNT_DISABLED
    _result(run, provider, kind, message, record=record)
    provider_event(
        provider=provider,
        event_type=event,
        message=message,
        actor=f"reconcile {run.run_id}",
        payload={"account_id": account.host_account_id, "schedulable": enable},
    )


# --- access closure: a real completion through the gateway, per access mode -------------------
def validate_access(run: ReconcileRun, provider: Provider, client: Sub2ApiClient) -> None:
    """For each access mode an import used for this provider: the gateway must list the
    smoke model and serve a completion with that mode's key (the same proof as the pipeline)."""
    for mode in ImportRun.AccessMode.values:
        item = _latest_item(provider, access_mode=mode)
        if item is None or item.group_id is None:
            continue
        model = gateway_model(item)
        started = time.monotonic()
        try:
            key = access_key(item)
            listed = [m.id for m in client.gateway.models(key)]
            if model not in listed:
                ok, transient, status, message = False, False, 404, f"/v1/models lacks {model}"
            else:
                answer = client.gateway.chat_completion(key, model=model, max_tokens=16)
                ok = answer.ok and bool(answer.content)
                transient, status = answer.transient, answer.status
                message = "" if ok else (answer.error_message or "no content")
        except NoAccessKey as exc:
            ok, transient, status, message = False, False, None, str(exc)
        except HostError as exc:
            ok, transient, status, message = False, exc.transient, exc.status, str(exc)
        latency = round((time.monotonic() - started) * 1000)
        ProviderCheck.objects.create(
            provider=provider,
            kind=ProviderCheck.Kind.GATEWAY,
            access_mode=mode,
            ok=ok,
            transient=transient,
            latency_ms=latency,
            message=message[:2000],
            reconcile_run=run,
            created_at=timezone.now(),
        )
        _result(
            run,
            provider,
            Kind.ACCESS_OK if ok else Kind.ACCESS_FAILED,
            Msg(gettext_noop("%(mode)s: %(model)s served"), mode=mode, model=model)
            if ok
            else Msg(
                gettext_noop("%(mode)s: %(model)s failed (HTTP %(status)s): %(error)s"),
                mode=mode,
                model=model,
                status=status,
                error=message,
            ),
            diff={"access_mode": mode, "http_status": status, "latency_ms": latency},
        )


# --- model sync -------------------------------------------------------------------------------
def sync_models(run: ReconcileRun, provider: Provider, ctx: ReconcileContext) -> None:
    """Re-read the upstream's /v1/models with a key relay-manager holds. New models start a
    patch-only import of the provider's keys (the reuse policy keeps every account and patches
    the mappings); removed models are reported and never removed automatically."""
    item = _latest_item(provider, with_account=True)
    if item is None:
        return
    try:
        with UpstreamClient(item.base_url, item.api_key, transport=ctx.upstream_transport) as up:
            listed = discover_models(up).raw_models
    except ProbeError as exc:
        _result(
            run,
            provider,
            Kind.ERROR,
            Msg(gettext_noop("upstream /v1/models: %(error)s"), error=str(exc)),
        )
        return
    known = list(provider.upstream_models)
    added = [m for m in listed if m not in known]
    removed = [m for m in known if m not in listed]
    Provider.objects.filter(pk=provider.pk).update(models_synced_at=timezone.now())
    actor = f"reconcile {run.run_id}"
    if removed:
        message = Msg(
            gettext_noop("gone upstream (kept on the host): %(models)s"), models=", ".join(removed)
        )
        _result(run, provider, Kind.MODELS_REMOVED, message, diff={"removed": removed})
        provider_event(
            provider=provider,
            event_type=EventType.MODELS_REMOVED,
            message=message,
            actor=actor,
            payload={"removed": removed},
        )
    if not added:
        return
    patch_run = start_model_sync_import(provider, item)
    message = Msg(
        gettext_noop("new upstream models %(models)s: patch-only import %(run)s"),
        models=", ".join(added),
        run=patch_run.run_id,
    )
    _result(
        run,
        provider,
        Kind.MODELS_ADDED,
        message,
        diff={"added": added, "import_run_id": patch_run.run_id},
    )
    provider_event(
        provider=provider,
        event_type=EventType.MODELS_ADDED,
        message=message,
        actor=actor,
        payload={"added": added, "import_run_id": patch_run.run_id},
    )


def start_model_sync_import(provider: Provider, template: ImportRunItem) -> ImportRun:
    """An import of every key the provider's live accounts use, with the access settings of
    the run that made them; the pipeline's reuse decision turns it into patches."""
    digests = set(
        provider.accounts.exclude(
            status__in=(AccountStatus.REMOVED, AccountStatus.MISSING)
        ).values_list("api_key_digest", flat=True)
    )
    entries, seen = [], set()
    for item in _provider_items(provider).filter(api_key_digest__in=digests):
        if item.api_key_digest not in seen:
            seen.add(item.api_key_digest)
            entries.append(EntryInput(base_url=item.base_url, api_key=item.api_key))
    source = template.run
    request = RunRequest(
        host_id=provider.host_id,
        mode=ImportRun.Mode.PARTIAL,
        access_mode=source.access_mode,
        entries=tuple(entries),
        subscription_users=tuple(source.subscription_users),
        subscription_days=source.subscription_days,
        probe_api_key=source.probe_api_key,
        confirm_wait_timeout_sec=source.confirm_wait_timeout_sec,
    )
    return run_start(request=request, created_by="model sync").run


# --- helpers -----------------------------------------------------------------------------------
def _provider_items(provider: Provider):
    return (
        ImportRunItem.objects.filter(
            run__host_id=provider.host_id,
            run__is_preview=False,
            provider_id=provider.provider_id,
            current_stage=ImportRunItem.Stage.DONE,
            rolled_back_at__isnull=True,
        )
        .select_related("run", "run__host")
        .order_by("-updated_at")
    )


def _latest_item(
    provider: Provider,
    *,
    digest: str | None = None,
    access_mode: str | None = None,
    with_account: bool = False,
) -> ImportRunItem | None:
    items = _provider_items(provider)
    if digest:
        items = items.filter(api_key_digest=digest)
    if access_mode:
        items = items.filter(run__access_mode=access_mode, account_id__isnull=False)
    if with_account:
        items = items.filter(account_id__isnull=False)
    return items.first()


def _result(
    run: ReconcileRun,
    provider: Provider,
    kind: str,
    message: str | Msg,
    *,
    record: ManagedResource | None = None,
    diff: dict | None = None,
) -> ReconcileResult:
    return ReconcileResult.objects.create(
        reconcile_run=run,
        provider=provider,
        kind=kind,
        resource_type=record.resource_type if record is not None else "",
        host_resource_id=record.host_resource_id if record is not None else "",
        message=(english(message) or "")[:4000],
        message_i18n=stored(message),
        diff=diff or {},
    )
