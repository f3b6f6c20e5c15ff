"""Rollback of a run (ARCH §9, seed 002 §5.5): undo what the run created on the host, and
nothing else. The one home of rollback logic: the API, the page, the admin action, the
``rollback_run`` command, the retry sweep and strict mode all come here.

What goes: resources recorded (ManagedResource) as created by the run, in reverse dependency
order (subscriptions, keys, accounts, channel, group, then managed users), except those another
run on the same host still uses. Each deletion is an event. Deletions that fail stay listed in
``RunRollback.remaining``; the rollback is then retried with backoff by the sweep and can be
resumed by hand. Running it again once everything is gone changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from batch_import.errors import Conflict
from batch_import.models import ImportRun, ImportRunItem, LegacyImportBatch, RunRollback
from batch_import.retry import next_retry_at
from batch_import.run_state import legacy_batch_status
from batch_import.stages.validate import record_rolled_back
from batch_import.transitions import EventType, hand_over_run, record_event
from hosts.models import ManagedResource
from hosts.resources import delete_resource
from hosts.sub2api import HostError, Sub2ApiClient, client_for_host
from relay_project.messages import Msg

logger = logging.getLogger(__name__)
Resource = ManagedResource.ResourceType
Stage = ImportRunItem.Stage
Status = RunRollback.Status

ROLLBACK_ORDER = [
    Resource.SUBSCRIPTION,
    Resource.API_KEY,
    Resource.ACCOUNT,
    Resource.CHANNEL,
    Resource.GROUP,
    Resource.USER,
]
# Automatic retries after a partial failure; then it waits for a person (resume).
MAX_AUTOMATIC_ATTEMPTS = 6
LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class PlannedDeletion:
    """One recorded resource of the run and what the rollback does with it."""

    resource_type: str
    host_resource_id: str
    logical_key: str
    action: str  # "delete" | "keep"
    reason: str = ""

    @property
    def label(self) -> str:
        return f"{self.resource_type} {self.host_resource_id} ({self.logical_key})"


def rollback_plan(run: ImportRun) -> list[PlannedDeletion]:
    """What a rollback of ``run`` would do now, in deletion order: shown for confirmation."""
    plan: list[PlannedDeletion] = []
    for record in _present_records(run):
        reason = _still_used(record, run)
        plan.append(
            PlannedDeletion(
                resource_type=record.resource_type,
                host_resource_id=record.host_resource_id,
                logical_key=record.logical_key,
                action="keep" if reason else "delete",
                reason=reason,
            )
        )
    return plan


def rollback_run(
    *, run_id: str, requested_by: str = "", ctx=None, allow_running: bool = False
) -> RunRollback:
    """Start, resume or (when done) just return the rollback of a run.

    A run still working is refused (cancel it first) unless ``allow_running`` (strict mode,
    which rolls back from inside the failing item). Two callers at once: one does the work,
    the other gets the rollback as it stands.
    """
    run = ImportRun.objects.select_related("host").get(pk=run_id)
    rollback = RunRollback.objects.filter(run=run).first()
    # Once started (strict mode starts it mid-run), a rollback may always be resumed.
    if rollback is None and not allow_running and not run.is_terminal:
        raise Conflict(
            _("run %(run_id)s is still %(state)s; cancel it before rolling it back")
            % {"run_id": run_id, "state": run.get_state_display()}
        )
    if rollback is None:
        rollback, _created = RunRollback.objects.get_or_create(
            run=run, defaults={"requested_by": requested_by, "status": Status.PARTIAL}
        )
    # Done, unless something became deletable since: made by an item retried after the
    # rollback, or freed by the rollback of the run that shared it.
    if rollback.status == Status.ROLLED_BACK and not any(
        planned.action == "delete" for planned in rollback_plan(run)
    ):
        return rollback
    if not _claim(rollback):
        return rollback
    _set_batch_status(run_id, legacy_batch_status(rollback_status=rollback.status))
    client = client_for_host(run.host, transport=getattr(ctx, "host_transport", None))
    try:
        deleted, kept, remaining, errors = _execute(run, client)
    finally:
        client.close()
    return _finish(run, deleted, kept, remaining, errors)


def rollback_run_strict(*, run_id: str, failed_item_id: str, ctx=None) -> list[str]:
    """Strict mode: roll the run back from inside its failing item and stop its other
    unfinished items. Returns what could not be deleted (retried by the sweep)."""
    rollback = rollback_run(run_id=run_id, requested_by="strict mode", ctx=ctx, allow_running=True)
    _stop_other_items(run_id, failed_item_id)
    return list(rollback.remaining)


def due_rollbacks(now=None) -> list[str]:
    """Run ids whose partial rollback is due for an automatic retry."""
    now = now or timezone.now()
    return list(
        RunRollback.objects.filter(status=Status.PARTIAL, next_attempt_at__lte=now).values_list(
            "run_id", flat=True
        )
    )


# --- the work -------------------------------------------------------------------------------


def _claim(rollback: RunRollback) -> bool:
    """Compare-and-swap: only one process deletes at a time; a dead one's lease expires."""
    now = timezone.now()
    claimable = Q(status__in=[Status.PARTIAL, Status.ROLLED_BACK]) | Q(
        status=Status.RUNNING, lease_until__lt=now
    )
    claimed = (
        RunRollback.objects.filter(pk=rollback.pk)
        .filter(claimable)
        .update(
            status=Status.RUNNING,
            lease_until=now + LEASE,
            next_attempt_at=None,
            attempts=F("attempts") + 1,
        )
    )
    rollback.refresh_from_db()
    return bool(claimed)


def _present_records(run: ImportRun) -> list[ManagedResource]:
    records = ManagedResource.objects.filter(
        host=run.host, created_by_run_id=run.run_id, state=ManagedResource.State.PRESENT
    ).select_related("user_record")
    rank = {resource_type: n for n, resource_type in enumerate(ROLLBACK_ORDER)}
    return sorted(
        (r for r in records if r.resource_type in rank),
        key=lambda r: (rank[r.resource_type], -r.pk),
    )


def _execute(run: ImportRun, client: Sub2ApiClient):
    deleted: list[dict] = []
    kept: list[dict] = []
    remaining: list[dict] = []
    errors: list[HostError] = []
    for record in _present_records(run):
        planned = PlannedDeletion(
            record.resource_type, record.host_resource_id, record.logical_key, "delete"
        )
        reason = _still_used(record, run)
        if reason:
            kept.append(asdict(planned) | {"action": "keep", "reason": reason})
            continue
        try:
            delete_resource(client, record)
        except HostError as exc:
            if exc.status != 404:  # already gone counts as deleted
                logger.warning("rollback of %s failed: %s", record, exc)
                remaining.append(asdict(planned) | {"reason": str(exc)})
                errors.append(exc)
                continue
        record.state = ManagedResource.State.DELETED
        record.save(update_fields=["state", "updated_at"])
        deleted.append(asdict(planned))
        record_event(
            item=_owner(record, run),
            event_type=EventType.ROLLED_BACK,
            message=Msg(gettext_noop("rollback: deleted %(resource)s"), resource=planned.label),
            payload={
                "resource_type": record.resource_type,
                "host_resource_id": record.host_resource_id,
            },
        )
    return deleted, kept, remaining, errors


def _finish(run, deleted, kept, remaining, errors) -> RunRollback:
    now = timezone.now()
    with transaction.atomic():
        rollback = RunRollback.objects.select_for_update().get(pk=run.run_id)
        rollback.deleted = [*rollback.deleted, *deleted]
        rollback.kept = kept
        rollback.remaining = remaining
        rollback.lease_until = None
        if remaining:
            rollback.status = Status.PARTIAL
            rollback.last_error = "; ".join(str(e) for e in errors)[:2000]
            retry = any(e.transient for e in errors) and rollback.attempts < MAX_AUTOMATIC_ATTEMPTS
            rollback.next_attempt_at = next_retry_at(now, rollback.attempts)[0] if retry else None
        else:
            rollback.status = Status.ROLLED_BACK
            rollback.last_error = ""
            rollback.next_attempt_at = None
            rollback.finished_at = now
        rollback.save()
    first = run.items.order_by("position").first()
    if remaining:
        _set_batch_status(run.run_id, legacy_batch_status(rollback_status=rollback.status))
        if first is not None:
            labels = ", ".join(f"{r['resource_type']} {r['host_resource_id']}" for r in remaining)
            if rollback.next_attempt_at:
                message = Msg(
                    gettext_noop(
                        "rollback left resources behind: %(resources)s; "
                        "retried automatically at %(when)s"
                    ),
                    resources=labels,
                    when=f"{rollback.next_attempt_at:%H:%M:%S}",
                )
            else:
                message = Msg(
                    gettext_noop(
                        "rollback left resources behind: %(resources)s; resume it by hand"
                    ),
                    resources=labels,
                )
            record_event(
                item=first,
                event_type=EventType.ERROR,
                message=message,
                payload={"remaining": remaining, "attempt": rollback.attempts},
            )
        return rollback
    _set_batch_status(run.run_id, legacy_batch_status(rollback_status=rollback.status))
    for item in run.items.filter(rolled_back_at__isnull=True).select_related("run"):
        record_rolled_back(
            item,
            when=now,
            message=Msg(gettext_noop("rolled back: what this run created on the host is gone")),
        )
    if not run.is_preview:
        hand_over_run(run.run_id)
    return rollback


def _still_used(record: ManagedResource, run: ImportRun) -> str:
    """Why another run on the same host still needs ``record`` ("" when nothing does).
    Runs that were themselves rolled back no longer count."""
    others = (
        ImportRunItem.objects.filter(run__host=run.host)
        .exclude(run_id=run.run_id)
        .exclude(run__rollback__status=Status.ROLLED_BACK)
    )
    resource_id = record.host_id_int
    resource_type = record.resource_type
    if resource_type == Resource.ACCOUNT:
        users = others.filter(Q(account_id=resource_id) | Q(reused_from_account_id=resource_id))
    elif resource_type == Resource.CHANNEL:
        users = others.filter(channel_id=resource_id)
    elif resource_type == Resource.GROUP:
        users = others.filter(group_id=resource_id)
    elif resource_type in (Resource.API_KEY, Resource.SUBSCRIPTION):
        # The key or subscription serves every run that uses its group.
        users = others.filter(group_id=record.host_group_id)
    elif resource_type == Resource.USER:
        runs = (
            ImportRun.objects.filter(host=run.host)
            .exclude(pk=run.run_id)
            .exclude(rollback__status=Status.ROLLED_BACK)
            .values_list("run_id", "subscription_users")
        )
        for other_id, emails in runs:
            if record.logical_key in (emails or []):
                return f"user of run {other_id}"
        return _user_still_serves(record, run)
    else:
        return ""
    other = users.values_list("run_id", flat=True).first()
    return f"used by run {other}" if other else ""


def _user_still_serves(user: ManagedResource, run: ImportRun) -> str:
    """A managed user no run lists (relay-manager's validation user) is kept while it holds a
    subscription or key that stays: made by another run, or kept for one."""
    owned = ManagedResource.objects.filter(user_record=user, state=ManagedResource.State.PRESENT)
    for record in owned:
        if record.created_by_run_id != run.run_id:
            return (
                f"its {record.resource_type} {record.host_resource_id} belongs to run "
                f"{record.created_by_run_id}"
            )
        reason = _still_used(record, run)
        if reason:
            return reason
    return ""


def _owner(record: ManagedResource, run: ImportRun) -> ImportRunItem:
    item = run.items.filter(pk=record.created_by_item_id).first()
    return item or run.items.order_by("position").first()


def _set_batch_status(run_id: str, status: str) -> None:
    LegacyImportBatch.objects.filter(run_id=run_id).update(status=status, updated_at=timezone.now())


def _stop_other_items(run_id: str, failed_item_id: str) -> None:
    others = ImportRunItem.objects.filter(run_id=run_id).exclude(pk=failed_item_id)
    for item in others.exclude(current_stage=Stage.DONE).select_related("run"):
        record_rolled_back(
            item,
            when=timezone.now(),
            message=Msg(
                gettext_noop("strict mode: the run was rolled back after another item failed")
            ),
        )


def rollback_summary(run: ImportRun) -> dict:
    """The run's rollback as it stands plus what a (further) rollback would do now."""
    rollback = RunRollback.objects.filter(run=run).first()
    return {
        "run_id": run.run_id,
        "status": rollback.status if rollback else "not_started",
        "plan": [asdict(p) for p in rollback_plan(run)],
        "deleted": rollback.deleted if rollback else [],
        "kept": rollback.kept if rollback else [],
        "remaining": rollback.remaining if rollback else [],
        "attempts": rollback.attempts if rollback else 0,
        "next_attempt_at": rollback.next_attempt_at if rollback else None,
        "last_error": rollback.last_error if rollback else "",
        "requested_by": rollback.requested_by if rollback else "",
        "finished_at": rollback.finished_at if rollback else None,
    }
