"""Validate stage — the only writer of ``access_status``.

The only proof that counts is the host's gateway serving a real chat completion with the
access mode's key: GET /v1/models lists the smoke model AND POST /v1/chat/completions answers
200 with content.
"""

from __future__ import annotations

from django.conf import settings

from batch_import.models import ImportRun, ImportRunItem
from batch_import.stages import StageContext
from batch_import.stages.common import add_advisories, schedule_retry, stage_retries
from batch_import.stages.confirm import gateway_model
from batch_import.transitions import EventType, Writer, record_event, transition_item
from hosts.models import ManagedResource
from hosts.sub2api import HostError, client_for_host
from relay_project.crypto import Secret

Stage = ImportRunItem.Stage
Access = ImportRunItem.AccessStatus
Confirmation = ImportRunItem.ConfirmationStatus
Resource = ManagedResource.ResourceType


class NoAccessKey(Exception):
    pass


def access_key(item: ImportRunItem) -> Secret:
    run = item.run
    if run.access_mode == ImportRun.AccessMode.SELF_SERVICE:
        return run.probe_api_key
    email = run.subscription_users[0]
    record = ManagedResource.objects.filter(
        host=run.host,
        resource_type=Resource.API_KEY,
        logical_key=f"{email}|{item.group_id}",
        state=ManagedResource.State.PRESENT,
    ).first()
    if record is None or not record.secret:
        raise NoAccessKey(f"no managed key for {email} in group {item.group_id}")
    return record.secret


def run_validate(item: ImportRunItem, ctx: StageContext) -> None:
    record_event(item=item, event_type=EventType.STAGE_STARTED, message="gateway validation")
    host = item.run.host
    if "chat_completions" in (host.missing_capabilities or []):
        verdict(
            item,
            Access.DEGRADED,
            "the host gateway has no /v1/chat/completions route",
            advisories=("chat_completions_unsupported",),
        )
        return
    model = gateway_model(item)
    try:
        key = access_key(item)
    except NoAccessKey as exc:
        verdict(item, Access.BROKEN, str(exc), error=str(exc))
        return
    client = client_for_host(host, transport=ctx.host_transport)
    try:
        listed = [m.id for m in client.gateway.models(key)]
        if model not in listed:
            raise HostError(
                status=404,
                reason="MODEL_NOT_LISTED",
                message=f"gateway /v1/models does not list {model}",
                transient=False,
            )
        completion = client.gateway.chat_completion(key, model=model, max_tokens=16)
        if not completion.ok:
            raise HostError(
                status=completion.status,
                reason=completion.error_type,
                message=completion.error_message,
                transient=completion.transient,
            )
    except HostError as exc:
        attempt = stage_retries(item) + 1
        if exc.transient and attempt <= settings.RELAY_VALIDATE_MAX_RETRIES:
            schedule_retry(
                item,
                attempt=attempt,
                reason=f"gateway: {exc}",
                payload={"status": exc.status, "reason": exc.reason},
            )
        elif exc.transient:
            verdict(item, Access.DEGRADED, f"gateway kept failing: {exc}", error=str(exc))
        else:
            verdict(item, Access.BROKEN, f"gateway refused: {exc}", error=str(exc))
        return
    finally:
        client.close()

    if not completion.content:
        attempt = stage_retries(item) + 1
        if attempt <= settings.RELAY_VALIDATE_MAX_RETRIES:
            schedule_retry(item, attempt=attempt, reason="gateway answered 200 without content")
        else:
            verdict(item, Access.DEGRADED, "gateway answered 200 without content")
        return
    if item.confirmation_status == Confirmation.FAILED:
        verdict(item, Access.DEGRADED, "gateway answered, but the account test did not pass")
        return
    advisories = ("warmup_retried",) if stage_retries(item) else ()
    if item.run.access_mode == ImportRun.AccessMode.SELF_SERVICE and routing_ambiguous(item):
        advisories = (*advisories, "validation_routing_ambiguous")
    verdict(item, Access.ACTIVE, f"gateway served {model}", advisories=advisories)


def routing_ambiguous(item: ImportRunItem) -> bool:
    """Another provider's item in the same group serves one of our families."""
    families = set(item.canonical_model_families)
    others = (
        ImportRunItem.objects.filter(group_id=item.group_id)
        .exclude(provider_id=item.provider_id)
        .values_list("canonical_model_families", flat=True)
    )
    return any(families & set(other) for other in others)


def verdict(
    item: ImportRunItem,
    access: str,
    message: str,
    *,
    advisories: tuple[str, ...] = (),
    error: str | None = None,
) -> None:
    fields: dict = {
        "advisory_messages": add_advisories(item, *advisories),
        "next_retry_at": None,
    }
    if error:
        fields.update(last_error=error, last_error_stage=Stage.VALIDATE)
    transition_item(
        item_id=item.item_id,
        stage=Stage.DONE,
        access_status=access,
        event_type=EventType.VALIDATED,
        message=message,
        fields=fields,
        writer=Writer.VALIDATION,
    )
    _remember_verdict(item, access)


def _remember_verdict(item: ImportRunItem, access: str) -> None:
    """The next run's reuse preflight reads this: a broken account gets replaced."""
    if item.account_id is None:
        return
    for record in ManagedResource.objects.filter(
        host_id=item.run.host_id,
        resource_type=Resource.ACCOUNT,
        host_resource_id=str(item.account_id),
    ):
        record.metadata = {**record.metadata, "access_status": access}
        record.save(update_fields=["metadata", "updated_at"])
