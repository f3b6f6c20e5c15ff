"""Access set-up of the subscription mode (ARCHITECTURE §6): each listed user gets the
provider's subscription (``hosts.subscribers`` decides how, or refuses); the users relay-manager
manages also get a key, and one such key is the validation key. The item keeps the list and each
user is an event."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from batch_import.models import ImportRun, ImportRunItem
from batch_import.transitions import EventType, record_event
from hosts.resources import HostResources
from hosts.sub2api.subscriptions import SubscriptionAssignment
from hosts.subscribers import (
    Refusal,
    SubscriberAccess,
    UserOutcome,
    grant_access,
    with_validation_user,
)
from relay_project.messages import Msg

# The advisory an item carries when a listed user got nothing.
USER_REFUSED_ADVISORY = "subscription_user_refused"


def item_access(
    item: ImportRunItem, resources: HostResources, group_id: int, settled: ImportRunItem | None
) -> list[dict]:
    """The item's ``subscription_access``: none outside subscription mode; a settled sibling's
    (it set up the same users' access to the same group); else set up here."""
    if item.run.access_mode != ImportRun.AccessMode.SUBSCRIPTION:
        return []
    if settled is not None:
        return settled.subscription_access
    return ensure_subscription_access(item, resources, group_id)


def ensure_subscription_access(
    item: ImportRunItem, resources: HostResources, group_id: int
) -> list[dict]:
    """Give every listed user the subscription; returns the item's ``subscription_access``."""
    run = item.run
    granted: list[SubscriberAccess] = []
    assignments: dict[str, SubscriptionAssignment | None] = {}
    for email in run.subscription_users:
        access, assignments[email] = grant_access(
            resources, email, group_id=group_id, validity_days=run.subscription_days
        )
        granted.append(access)
    granted, assignments[""] = with_validation_user(
        resources, granted, group_id=group_id, validity_days=run.subscription_days
    )
    for access in granted:
        assignment = assignments.get(access.email if access.listed else "")
        if assignment is not None and not (assignment.created and access.subscription_ours):
            ours = access.subscription_ours
            note_subscription_reused(item, access.email, assignment, managed=ours)
        note_user(item, access)
    return [access.as_json() for access in granted]


def access_advisories(entries: list[dict]) -> list[str]:
    refused = any(entry["outcome"] == UserOutcome.REFUSED for entry in entries)
    return [USER_REFUSED_ADVISORY] if refused else []


def validation_email(item: ImportRunItem) -> str:
    """Whose key the gateway validation uses (items provisioned before the list was kept: the
    first listed user, who was always a managed one)."""
    for entry in item.subscription_access or ():
        if entry.get("validation"):
            return entry["email"]
    return item.run.subscription_users[0]


def note_user(item: ImportRunItem, access: SubscriberAccess) -> None:
    """One event per user: what relay-manager found on the host and did (or refused)."""
    who = f"{access.email} (host user {access.user_id})" if access.user_id else access.email
    if access.outcome == UserOutcome.REFUSED:
        record_event(
            item=item,
            event_type=EventType.ADVISORY,
            message=Msg(
                gettext_noop(
                    "user %(who)s refused: %(reason)s%(detail)s; it gets no access to this provider"
                ),
                who=who,
                reason=Msg.label(Refusal(access.refusal).label),
                detail=f" [{access.detail}]" if access.detail else "",
            ),
            payload=access.as_json(),
        )
        return
    if access.outcome == UserOutcome.EXISTING:
        what = gettext_noop(
            "found on the host (not made by relay-manager): access through the admin API, no key"
        )
    elif access.outcome == UserOutcome.CREATED:
        what = gettext_noop("created by relay-manager, with a key")
    else:
        what = gettext_noop("found, made by relay-manager earlier, with a key")
    role = gettext_noop("validation user") if not access.listed else gettext_noop("user")
    validates = Msg(gettext_noop("; its key validates the gateway")) if access.validation else ""
    record_event(
        item=item,
        event_type=EventType.ACCESS_GRANTED,
        message=Msg(
            gettext_noop("%(role)s %(who)s %(what)s%(validates)s"),
            role=Msg(role),
            who=who,
            what=Msg(what),
            validates=validates,
        ),
        payload=access.as_json(),
    )


def note_subscription_reused(
    item: ImportRunItem, email: str, assignment: SubscriptionAssignment, *, managed: bool
) -> None:
    """Say what happened to a subscription that already existed: kept as it was, or extended
    to cover the run's days (never a failure, whatever its terms were)."""
    subscription = assignment.subscription
    until = f"{subscription.expires_at:%Y-%m-%d}" if subscription.expires_at else "?"
    whose = (
        "" if managed else Msg(gettext_noop(" (it was on the host already; a rollback keeps it)"))
    )
    if assignment.extended_by_days:
        message = Msg(
            gettext_noop(
                "subscription %(subscription)s of %(email)s extended by %(extra)s days "
                "(until %(until)s) to cover %(days)s days%(whose)s"
            ),
            subscription=subscription.id,
            email=email,
            extra=assignment.extended_by_days,
            until=until,
            days=item.run.subscription_days,
            whose=whose,
        )
    else:
        message = Msg(
            gettext_noop(
                "subscription %(subscription)s of %(email)s reused (valid until %(until)s)%(whose)s"
            ),
            subscription=subscription.id,
            email=email,
            until=until,
            whose=whose,
        )
    record_event(
        item=item,
        event_type=EventType.REUSED,
        message=message,
        payload={
            "subscription_id": subscription.id,
            "extended_by_days": assignment.extended_by_days,
            "conflict_reason": assignment.conflict_reason,
            "managed": managed,
        },
    )
