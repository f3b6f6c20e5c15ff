"""Access set-up of the subscription mode (ARCHITECTURE §6): each listed user is subscribed to
the provider's group and holds a key for it (the first user's key is the validation key)."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from batch_import.models import ImportRunItem
from batch_import.transitions import EventType, record_event
from hosts.resources import HostResources
from hosts.sub2api.subscriptions import SubscriptionAssignment
from relay_project.messages import Msg


def ensure_subscription_access(
    item: ImportRunItem, resources: HostResources, group_id: int
) -> None:
    run = item.run
    for email in run.subscription_users:
        user_id, password = resources.managed_user(email)
        assignment, managed = resources.assign_subscription(
            email=email, user_id=user_id, group_id=group_id, validity_days=run.subscription_days
        )
        if not (assignment.created and managed):
            note_subscription_reused(item, email, assignment, managed=managed)
        resources.ensure_user_key(email, password, group_id)


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
