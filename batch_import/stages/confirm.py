"""Confirm stage: the host's own view of the account — its models and its SSE test.

Two host quirks are absorbed here (seed 003): the first test of a new account often fails
with "API returned 403" while the host's own Responses probe is still running, and the gateway
answers 503 "no available accounts" for a while after an account appears.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_noop

from batch_import.models import ImportRunItem
from batch_import.stages import StageContext
from batch_import.stages.common import (
    add_advisories,
    had_retries,
    host_error_message,
    record_start,
    schedule_retry,
    start_message,
)
from batch_import.transitions import EventType, transition_item
from hosts.sub2api import HostError, shared_client_for_host
from hosts.sub2api.accounts import AccountTestFailure, classify_test_failure
from probe.aliases import canonical_model_id
from probe.capability import CapabilityProfile, responses_supported
from relay_project.messages import Msg

Stage = ImportRunItem.Stage
Confirmation = ImportRunItem.ConfirmationStatus


def gateway_model(item: ImportRunItem) -> str:
    """Clients ask the host for the canonical id; the account maps it to the raw one."""
    return canonical_model_id(item.resolved_smoke_model or "")


def run_confirm(item: ImportRunItem, ctx: StageContext) -> ImportRunItem | None:
    attempt = item.confirmation_attempts + 1
    record_start(item)
    model = gateway_model(item)
    client = shared_client_for_host(item.run.host, transport=ctx.host_transport)
    try:
        models = [m.id for m in client.accounts.models(item.account_id)]
        if model not in models:
            return finish(
                item,
                Confirmation.FAILED,
                Msg(gettext_noop("account models lack the smoke model %(model)s"), model=model),
            )
        result = client.accounts.test(item.account_id, model=model)
    except HostError as exc:
        if exc.transient and attempt <= settings.RELAY_CONFIRM_MAX_RETRIES:
            retry(item, attempt, host_error_message(exc))
            return None
        return finish(item, Confirmation.FAILED, host_error_message(exc))

    if result.success:
        if race_seen(item) and responses_unsupported_or_unknown(item):
            return finish(
                item,
                Confirmation.ADVISORY,
                Msg(
                    gettext_noop(
                        "account test passed once the host's /v1/responses probe had settled"
                    )
                ),
                advisories=("probe_race_absorbed",),
            )
        return finish(item, Confirmation.CONFIRMED, Msg(gettext_noop("account test passed")))
    error = result.error or Msg(gettext_noop("account test failed"))
    failure = classify_test_failure(result)
    retries_left = attempt <= settings.RELAY_CONFIRM_MAX_RETRIES
    if failure == AccountTestFailure.ROUTE_REFUSED and retries_left:
        # Until the host's own background probe of /v1/responses settles, its test of a new
        # account goes there; a chat-only upstream refuses the route (its own 403/404/405).
        retry(
            item,
            attempt,
            Msg(
                gettext_noop("first tests return %(error)r: the host's probe race; testing again"),
                error=error,
            ),
            probe_race=True,
        )
        return None
    if failure == AccountTestFailure.WARMUP and retries_left:
        retry(item, attempt, Msg(gettext_noop("warm-up: %(error)s"), error=error))
        return None
    return finish(
        item,
        Confirmation.FAILED,
        Msg(gettext_noop("account test failed: %(error)s"), error=error),
        error=error,
    )


def race_seen(item: ImportRunItem) -> bool:
    if not had_retries(item):  # the race is recorded on a retry event
        return False
    return item.events.filter(
        stage=Stage.CONFIRM, attempt=item.attempt, payload__probe_race=True
    ).exists()


def responses_unsupported_or_unknown(item: ImportRunItem) -> bool:
    return responses_supported(CapabilityProfile.from_dict(item.capability_profile)) is not True


def retry(
    item: ImportRunItem, attempt: int, reason: str | Msg, *, probe_race: bool = False
) -> None:
    schedule_retry(
        item,
        attempt=attempt,
        reason=reason,
        extra_counter="confirmation_attempts",
        payload={"probe_race": True} if probe_race else None,
    )


def finish(
    item: ImportRunItem,
    status: str,
    message: str | Msg,
    *,
    advisories: tuple[str, ...] = (),
    error: str | Msg | None = None,
) -> ImportRunItem:
    fields = {
        "confirmation_attempts": item.confirmation_attempts + 1,
        "advisory_messages": add_advisories(item, *advisories),
        "next_retry_at": timezone.now(),
    }
    if error:
        fields.update(last_error=error, last_error_stage=Stage.CONFIRM)
    event = {
        Confirmation.CONFIRMED: EventType.CONFIRMED,
        Confirmation.ADVISORY: EventType.ADVISORY,
        Confirmation.FAILED: EventType.ERROR,
    }[status]
    return transition_item(
        item_id=item.item_id,
        held=item,
        stage=Stage.VALIDATE,
        starting=start_message,
        confirmation_status=status,
        event_type=event,
        message=message,
        fields=fields,
    )
