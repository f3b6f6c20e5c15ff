"""Validate stage — the only writer of ``access_status``.

The only proof that counts is the host's gateway serving a real chat completion with the
access mode's key: GET /v1/models lists the smoke model AND POST /v1/chat/completions answers
200 with content.
"""

from __future__ import annotations

import time

from django.conf import settings

from batch_import.failures import gateway_failure
from batch_import.models import ImportRun, ImportRunItem
from batch_import.stages import StageContext
from batch_import.stages.common import add_advisories, schedule_retry, stage_retries
from batch_import.stages.confirm import gateway_model
from batch_import.transitions import EventType, Writer, record_event, transition_item
from hosts.resources import user_key
from hosts.sub2api import GatewayRefusal, HostError, client_for_host
from relay_project.crypto import Secret

Stage = ImportRunItem.Stage
Access = ImportRunItem.AccessStatus
Confirmation = ImportRunItem.ConfirmationStatus
FailureClass = ImportRunItem.FailureClass


class NoAccessKey(Exception):
    pass


def access_key(item: ImportRunItem) -> Secret:
    run = item.run
    if run.access_mode == ImportRun.AccessMode.SELF_SERVICE:
        return run.probe_api_key
    email = run.subscription_users[0]
    key = user_key(run.host, email, item.group_id)
    if key is None:
        raise NoAccessKey(f"no managed key for {email} in group {item.group_id}")
    return key


def run_validate(item: ImportRunItem, ctx: StageContext) -> None:
    record_event(item=item, event_type=EventType.STAGE_STARTED, message="gateway validation")
    host = item.run.host
    if "chat_completions" in (host.missing_capabilities or []):
        verdict(
            item,
            Access.DEGRADED,
            "the host gateway has no /v1/chat/completions route",
            advisories=("chat_completions_unsupported",),
            failure_class=FailureClass.HOST_COMPATIBILITY_GAP,
        )
        return
    model = gateway_model(item)
    try:
        key = access_key(item)
    except NoAccessKey as exc:
        verdict(item, Access.BROKEN, str(exc), failure_class=FailureClass.INTERNAL_ERROR)
        return
    client = client_for_host(host, transport=ctx.host_transport)
    evidence: dict | None = None
    refusal, wait = "", 0.0
    try:
        listed = [m.id for m in client.gateway.models(key)]
        if model not in listed:
            raise HostError(
                status=404,
                reason="MODEL_NOT_LISTED",
                message=f"gateway /v1/models does not list {model}",
                transient=False,
            )
        started = time.monotonic()
        completion = client.gateway.chat_completion(key, model=model, max_tokens=16)
        evidence = completion_evidence(
            model,
            status=completion.status,
            started=started,
            answered_model=completion.model,
            text=completion.content if completion.ok else completion.error_message,
        )
        if not completion.ok:
            refusal, wait = completion.refusal, completion.retry_after
            raise HostError(
                status=completion.status,
                reason=completion.error_type,
                message=completion.error_message,
                transient=completion.transient,
            )
    except HostError as exc:
        evidence = evidence or completion_evidence(model, status=exc.status, text=exc.message)
        attempt = stage_retries(item) + 1
        why = refusal_reason(refusal, model=model, group_id=item.group_id)
        payload = {"status": exc.status, "reason": exc.reason, "refusal": refusal}
        if exc.transient and attempt <= settings.RELAY_VALIDATE_MAX_RETRIES:
            if wait:
                payload["retry_after"] = wait
            schedule_retry(
                item,
                attempt=attempt,
                reason=f"gateway: {why}{exc}",
                payload=payload,
                at_least=wait,
            )
        elif exc.transient or refusal == GatewayRefusal.KEY_QUOTA:  # it passes, not soon
            verdict(
                item,
                Access.DEGRADED,
                f"gateway kept failing: {why}{exc}",
                failure_class=gateway_failure(exc),
                evidence=evidence,
                payload=payload,
            )
        else:
            verdict(
                item,
                Access.BROKEN,
                f"gateway refused: {why}{exc}",
                failure_class=gateway_failure(exc),
                evidence=evidence,
                payload=payload,
            )
        return
    finally:
        client.close()

    if not completion.content:
        attempt = stage_retries(item) + 1
        if attempt <= settings.RELAY_VALIDATE_MAX_RETRIES:
            schedule_retry(item, attempt=attempt, reason="gateway answered 200 without content")
        else:
            verdict(
                item,
                Access.DEGRADED,
                "gateway answered 200 without content",
                failure_class=FailureClass.UPSTREAM_ERROR,
                evidence=evidence,
            )
        return
    if item.confirmation_status == Confirmation.FAILED:
        verdict(
            item,
            Access.DEGRADED,
            "gateway answered, but the account test did not pass",
            failure_class=FailureClass.UPSTREAM_ERROR,
            evidence=evidence,
        )
        return
    advisories = ("warmup_retried",) if stage_retries(item) else ()
    if item.run.access_mode == ImportRun.AccessMode.SELF_SERVICE and routing_ambiguous(item):
        advisories = (*advisories, "validation_routing_ambiguous")
    verdict(
        item, Access.ACTIVE, f"gateway served {model}", advisories=advisories, evidence=evidence
    )


REFUSAL_REASONS = {
    GatewayRefusal.NO_ACCOUNT: "no schedulable account for {model} yet (a new account warms up)",
    GatewayRefusal.RATE_LIMITED: "every account for {model} is rate-limited",
    GatewayRefusal.MODEL_NOT_FOUND: "no account of group {group_id} maps {model}",
    GatewayRefusal.CHANNEL_RESTRICTED: "the channel of group {group_id} prices no {model}",
    GatewayRefusal.KEY_QUOTA: "the access key has used up its quota or usage limit",
}


def refusal_reason(refusal: str, *, model: str, group_id: int | None) -> str:
    """What a "no account" answer means, whatever build said it (§13): a warm-up is retried,
    rate limits are retried and then degrade, a missing mapping or price is definitive."""
    template = REFUSAL_REASONS.get(refusal)
    return template.format(model=model, group_id=group_id) + " — " if template else ""


def routing_ambiguous(item: ImportRunItem) -> bool:
    """Another provider's item in the same group serves one of our families."""
    families = set(item.canonical_model_families)
    others = (
        ImportRunItem.objects.filter(group_id=item.group_id)
        .exclude(provider_id=item.provider_id)
        .values_list("canonical_model_families", flat=True)
    )
    return any(families & set(other) for other in others)


PREVIEW_CHARS = 80


def completion_evidence(
    model: str,
    *,
    status: int | None,
    started: float | None = None,
    answered_model: str = "",
    text: str = "",
) -> dict:
    """What the gateway answered, kept on the item so an operator sees the proof (seed 003)."""
    latency = None if started is None else round((time.monotonic() - started) * 1000)
    return {
        "http_status": status,
        "model": model,
        "answered_model": answered_model,
        "latency_ms": latency,
        "preview": " ".join(text.split())[:PREVIEW_CHARS],
    }


def verdict(
    item: ImportRunItem,
    access: str,
    message: str,
    *,
    advisories: tuple[str, ...] = (),
    error: str | None = None,
    failure_class: str = "",
    error_stage: str = Stage.VALIDATE,
    event_type: str = EventType.VALIDATED,
    payload: dict | None = None,
    evidence: dict | None = None,
) -> None:
    """End the item with ``access``. The error fields always describe the present: an active
    item has none (its history stays in the events), a degraded or broken one always has a
    message and a failure class."""
    fields: dict = {
        "advisory_messages": add_advisories(item, *advisories),
        "next_retry_at": None,
    }
    if evidence is not None:
        fields["validation_evidence"] = evidence
    if access == Access.ACTIVE:
        fields.update(last_error=None, last_error_stage=None, failure_class="")
    else:
        fields.update(
            last_error=error or message,
            last_error_stage=error_stage,
            failure_class=failure_class or FailureClass.INTERNAL_ERROR,
        )
    transition_item(
        item_id=item.item_id,
        stage=Stage.DONE,
        access_status=access,
        event_type=event_type,
        message=message,
        fields=fields,
        payload=payload,
        writer=Writer.VALIDATION,
    )


def record_failure(
    item: ImportRunItem,
    *,
    error: str,
    failure_class: str,
    transient: bool = False,
    payload: dict | None = None,
) -> None:
    """The outcome rule for an item a stage ends before any gateway proof: a definitive
    failure is ``broken``, transient failures that exhausted their retries ``degraded``. A
    preview never claims a verdict: its items stay ``unknown``."""
    if item.run.is_preview:
        transition_item(
            item_id=item.item_id,
            stage=Stage.DONE,
            event_type=EventType.ERROR,
            message=error,
            fields={
                "last_error_stage": item.current_stage,
                "last_error": error,
                "failure_class": failure_class,
                "next_retry_at": None,
            },
            payload=payload,
        )
        return
    verdict(
        item,
        Access.DEGRADED if transient else Access.BROKEN,
        error,
        failure_class=failure_class,
        error_stage=item.current_stage,
        event_type=EventType.ERROR,
        payload=payload,
    )


def record_rolled_back(item: ImportRunItem, *, when, message: str) -> None:
    """The run's rollback removed what this item made: it can no longer read ``active``. An
    item that had already failed keeps its own failure; it only learns it was rolled back."""
    if item.current_stage == Stage.DONE and item.access_status in (Access.BROKEN, Access.DEGRADED):
        transition_item(
            item_id=item.item_id,
            event_type=EventType.ROLLED_BACK,
            message=message,
            fields={"rolled_back_at": when},
        )
        return
    fields = {
        "rolled_back_at": when,
        "next_retry_at": None,
        "last_error": message,
        "last_error_stage": item.current_stage,
        "failure_class": FailureClass.ROLLED_BACK,
    }
    transition_item(
        item_id=item.item_id,
        stage=Stage.DONE,
        access_status=Access.UNKNOWN if item.run.is_preview else Access.BROKEN,
        event_type=EventType.ROLLED_BACK,
        message=message,
        fields=fields,
        writer=Writer.VALIDATION,
    )
