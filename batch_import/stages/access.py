"""Access set-up of the subscription mode (ARCHITECTURE §6): each listed user gets the
provider's subscription (``hosts.subscribers`` decides how, or refuses); the users relay-manager
manages also get a key, and one such key is the validation key. The item keeps the list and each
user is an event."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

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
from relay_project.branches import Later, Ready, together
from relay_project.messages import Msg

# The advisory an item carries when a listed user got nothing.
USER_REFUSED_ADVISORY = "subscription_user_refused"


@dataclass
class Granted:
    """What the listed users (and the validation user) got, before anything is told."""

    users: list[SubscriberAccess] = field(default_factory=list)
    assignments: dict[str, SubscriptionAssignment | None] = field(default_factory=dict)


def item_access(item: ImportRunItem, settled: ImportRunItem | None) -> list[dict]:
    """The ``subscription_access`` of an item that sets up none: none outside subscription
    mode; else the settled sibling's (it set up the same users' access to the same group)."""
    if item.run.access_mode != ImportRun.AccessMode.SUBSCRIPTION or settled is None:
        return []
    return settled.subscription_access


def needs_access(item: ImportRunItem, settled: ImportRunItem | None) -> bool:
    """Subscription mode, and no settled sibling set up the same users' access to the same
    group already (then the item takes its ``subscription_access``)."""
    return item.run.access_mode == ImportRun.AccessMode.SUBSCRIPTION and settled is None


def grant_subscription_access(
    item: ImportRunItem, resources: HostResources, group_id: int | Later[int]
) -> Granted:
    """Give every listed user the subscription, the users at once (``group_id`` may still be
    on its way); then the validation user if none of them has a key. What each records is
    told in the order of the list, as if they had gone one after another."""
    run = item.run
    users = run.subscription_users
    helds: list[list] = []
    steps: list[tuple[str, Later]] = []
    try:
        with together() as start:
            for index, email in enumerate(users):
                held_by, held = resources.holding()
                helds.append(held)
                grant = partial(
                    grant_access,
                    held_by,
                    email,
                    group_id=group_id,
                    validity_days=run.subscription_days,
                )
                # The last user's steps run here, not in a thread of their own.
                last = index == len(users) - 1
                steps.append((email, Ready(grant()) if last else start(grant)))
    finally:  # what was recorded is told, even when a user's step failed
        for held in helds:
            resources.announce(held)
    granted = Granted()
    for email, grant in steps:
        access, granted.assignments[email] = grant.result()
        granted.users.append(access)
    granted.users, granted.assignments[""] = with_validation_user(
        resources,
        granted.users,
        group_id=group_id if isinstance(group_id, int) else group_id.result(),
        validity_days=run.subscription_days,
    )
    return granted


def note_access(item: ImportRunItem, granted: Granted) -> list[dict]:
    """One event per user (and per subscription that existed already); returns the item's
    ``subscription_access``."""
    for access in granted.users:
        assignment = granted.assignments.get(access.email if access.listed else "")
        if assignment is not None and not (assignment.created and access.subscription_ours):
            ours = access.subscription_ours
            note_subscription_reused(item, access.email, assignment, managed=ours)
        note_user(item, access)
    return [access.as_json() for access in granted.users]


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
