"""Helpers the stages share: failing an item, scheduling a retry, the item's host resource
service and what a failed host call does to the item."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_noop

from batch_import.failures import host_failure
from batch_import.models import ImportRun, ImportRunItem
from batch_import.retry import next_retry_at
from batch_import.transitions import EventType, record_event, start_recorded, transition_item
from hosts.models import ManagedResource
from hosts.resources import HostResources, Owner
from hosts.sub2api import HostError
from relay_project.messages import Msg

Stage = ImportRunItem.Stage


def start_message(item: ImportRunItem) -> Msg:
    """What the start of the item's current stage says (its ``stage_started`` event)."""
    stage = item.current_stage
    if stage == Stage.PROBE:
        return Msg(gettext_noop("probing the upstream"))
    if stage == Stage.PROVISION and item.run.is_preview:
        return Msg(gettext_noop("previewing on host"))
    if stage == Stage.PROVISION:
        return Msg(gettext_noop("provisioning on host"))
    if stage == Stage.CONFIRM:
        return Msg(
            gettext_noop("confirming account %(account)s (attempt %(attempt)s)"),
            account=item.account_id,
            attempt=item.confirmation_attempts + 1,
        )
    if stage == Stage.VALIDATE:
        return Msg(gettext_noop("gateway validation"))
    raise ValueError(f"stage {stage} has no start")


def record_start(item: ImportRunItem) -> None:
    """The ``stage_started`` event of the item's current stage: each start of a stage is one
    (``reuse_preflight.provisioned_before`` counts the provision stage's). Written already
    when the transition that moved the item there went on into it (``starting``)."""
    if not start_recorded(item):
        record_event(item=item, event_type=EventType.STAGE_STARTED, message=start_message(item))


def fail_item(
    item: ImportRunItem,
    *,
    error: str | Msg,
    failure_class: str,
    transient: bool = False,
    payload: dict[str, Any] | None = None,
    ctx: Any = None,
) -> None:
    """End an item at its current stage with the error: the validation service gives the
    verdict (broken, or degraded when ``transient`` retries ran out). In strict mode any
    item a stage ends fails the run, which rolls back what it created (seed 002 §5.5)."""
    # Imported here: the validation stage imports this module, the rollback that stage.
    from batch_import.rollback import rollback_run_strict
    from batch_import.stages.validate import record_failure

    record_failure(
        item, error=error, failure_class=failure_class, transient=transient, payload=payload
    )
    run = item.run
    if run.mode == ImportRun.Mode.STRICT and not run.is_preview:
        rollback_run_strict(run_id=run.run_id, failed_item_id=item.item_id, ctx=ctx)


def schedule_retry(
    item: ImportRunItem,
    *,
    attempt: int,
    reason: str | Msg,
    extra_counter: str | None = None,
    payload: dict[str, Any] | None = None,
    at_least: float = 0.0,
) -> ImportRunItem:
    """Try this stage again after an exponential, jittered delay (a retry_scheduled event),
    or after ``at_least`` seconds when the other side asked to wait that long."""
    now = timezone.now()
    when, delay = next_retry_at(now, attempt, at_least=at_least)
    fields: dict[str, Any] = {
        "retry_count": item.retry_count + 1,
        "last_retry_at": now,
        "next_retry_at": when,
        "last_error": reason,
        "last_error_stage": item.current_stage,
    }
    if extra_counter:
        fields[extra_counter] = getattr(item, extra_counter) + 1
    return transition_item(
        item_id=item.item_id,
        held=item,
        event_type=EventType.RETRY_SCHEDULED,
        message=reason,
        fields=fields,
        payload={"delay_ms": int(delay * 1000), "attempt": attempt, **(payload or {})},
    )


def add_advisories(item: ImportRunItem, *codes: str) -> list[str]:
    return list(dict.fromkeys([*item.advisory_messages, *codes]))


def stage_retries(item: ImportRunItem) -> int:
    """Retries already scheduled in the item's current stage during this attempt."""
    if not had_retries(item):
        return 0
    return item.events.filter(
        event_type=EventType.RETRY_SCHEDULED, stage=item.current_stage, attempt=item.attempt
    ).count()


def had_retries(item: ImportRunItem) -> bool:
    """Whether any retry was ever scheduled for the item: ``schedule_retry`` is the only writer
    of retry events and counts each in ``retry_count`` (never reset), so most items, which
    never retried, answer the questions about their retry events without a query."""
    return item.retry_count > 0


def item_resources(item: ImportRunItem, client) -> HostResources:
    """The host resource service acting for ``item``; each resource it records is an event."""

    def recorded(record: ManagedResource) -> None:
        record_event(
            item=item,
            event_type=EventType.RESOURCE_CREATED,
            message=Msg(
                gettext_noop("created %(kind)s %(id)s (%(key)s)"),
                kind=Msg.label(ManagedResource.ResourceType(record.resource_type).label),
                id=record.host_resource_id,
                key=record.logical_key,
            ),
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
            item, attempt=attempt, reason=host_error_message(exc), payload=host_error_payload(exc)
        )
        return
    fail_item(
        item,
        error=host_error_message(exc),
        failure_class=host_failure(exc),
        transient=exc.transient,
        payload=host_error_payload(exc),
        ctx=ctx,
    )


def host_error_message(exc: HostError) -> Msg:
    """A failed host call as people read it; the host's own answer stays verbatim."""
    return Msg(gettext_noop("host: %(error)s"), error=str(exc))


def host_error_payload(exc: HostError) -> dict:
    return {"status": exc.status, "reason": exc.reason, "transient": exc.transient}
