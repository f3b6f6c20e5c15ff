"""Who gets a provider's subscription in ``subscription`` mode (ARCHITECTURE §6).

Each listed email is one of: a user relay-manager creates now, one it made before (it holds the
password: the user gets a key), a user the host already had (the subscription is assigned
through the admin API, which needs no password; no key is made for it), or refused with a
reason. The gateway evidence needs a key of a user relay-manager can log in as: the first
listed user it manages, else its own validation user, subscribed to the same group.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from hosts.models import ManagedResource
from hosts.resources import HostResources, user_key_name
from hosts.sub2api import HostError
from hosts.sub2api.naming import managed_group_name
from hosts.sub2api.subscriptions import SubscriptionAssignment
from hosts.sub2api.types import Subscription, User
from relay_project.branches import Later, together


class UserOutcome(models.TextChoices):
    CREATED = "created", pgettext_lazy("subscription user", "created")
    MANAGED = "managed", pgettext_lazy("subscription user", "found, made by relay-manager")
    EXISTING = "existing", pgettext_lazy("subscription user", "found on the host")
    REFUSED = "refused", pgettext_lazy("subscription user", "refused")


class Refusal(models.TextChoices):
    """Why a listed user gets nothing: each is a decision someone made on the host, which
    relay-manager does not overrule."""

    USER_DISABLED = "user_disabled", _("the user is disabled on the host")
    SUBSCRIPTION_SUSPENDED = (
        "subscription_suspended",
        _("an admin suspended the user's subscription to this group"),
    )
    USER_GONE = "user_gone", _("the user was deleted on the host while access was set up")


class SubscriptionChange(models.TextChoices):
    """What the assignment did to the user's subscription to the group."""

    ASSIGNED = "assigned", pgettext_lazy("subscription", "assigned")
    REUSED = "reused", pgettext_lazy("subscription", "reused")
    EXTENDED = "extended", pgettext_lazy("subscription", "extended")


Resource = ManagedResource.ResourceType
ACTIVE = "active"
SUSPENDED = "suspended"


@dataclass(frozen=True)
class SubscriberAccess:
    """What one user got: stored on the item (``subscription_access``) and shown to people."""

    email: str
    outcome: str  # UserOutcome
    user_id: int | None = None
    subscription_id: int | None = None
    subscription: str = ""  # SubscriptionChange, "" when refused
    subscription_ours: bool = False  # relay-manager made it: a rollback revokes it
    expires_at: str = ""
    has_key: bool = False
    refusal: str = ""  # Refusal
    detail: str = ""  # the host's own words behind a refusal
    validation: bool = False  # its key is the one the gateway validation uses
    listed: bool = True  # False: relay-manager's own validation user

    def as_json(self) -> dict:
        return asdict(self)

    @property
    def usable(self) -> bool:
        return self.outcome != UserOutcome.REFUSED


def validation_user_email() -> str:
    """The user relay-manager makes on each host to validate with when none of the listed users
    is one it can log in as."""
    return settings.RELAY_VALIDATION_USER_EMAIL


def user_outcome(user: User | None, *, managed: bool) -> tuple[str, str]:
    """``(UserOutcome, Refusal or "")`` for the host user of a listed email, before any write
    (the preview and the provision stage share it)."""
    if user is None:
        return UserOutcome.CREATED, ""
    if user.status != ACTIVE:
        return UserOutcome.REFUSED, Refusal.USER_DISABLED
    return (UserOutcome.MANAGED if managed else UserOutcome.EXISTING), ""


def subscription_refusal(subscription: Subscription | None) -> str:
    """A subscription an admin suspended is left as it is (a re-assign would not lift it)."""
    if subscription is not None and subscription.status == SUSPENDED:
        return Refusal.SUBSCRIPTION_SUSPENDED
    return ""


def grant_access(
    resources: HostResources,
    email: str,
    *,
    group_id: int | Later[int],
    validity_days: int,
    listed=True,
) -> tuple[SubscriberAccess, SubscriptionAssignment | None]:
    """Give ``email`` the subscription to ``group_id`` (and, when relay-manager holds its
    password, a key for it). Transient host errors propagate (the stage retries); a refusal
    of this one user is returned, never raised.

    ``group_id`` may still be on its way (a ``relay_project.branches.Later``): the user is
    found or made meanwhile. The key's login and lookup need only the user, so they run while
    the subscription is looked up and assigned; only the key's create waits for it (a key
    bound to a subscription group needs an active subscription, §8.2)."""
    client = resources.client
    if made := resources.made_by_this_run(Resource.USER, email):
        # Made by this run moments ago: another key of the provider set it up.
        user_id, password, outcome = int(made.host_resource_id), made.secret, UserOutcome.MANAGED
    else:
        user = client.users.find_by_email(email)
        outcome, refusal = user_outcome(user, managed=resources.holds_password(email))
        if refusal:
            return _refused(email, refusal, user.id, f"status={user.status}", listed), None
        password = None
        if outcome == UserOutcome.EXISTING:
            user_id = user.id
        else:
            user_id, password = resources.managed_user(email, found=user)
    group = group_id if isinstance(group_id, int) else group_id.result()
    key_made = password is not None and resources.made_by_this_run(
        Resource.API_KEY, user_key_name(email, group)
    )
    with together() as start:
        wanted = password is not None and not key_made
        key = start(resources.look_up_user_key, email, password) if wanted else None
        before = client.subscriptions.find(user_id=user_id, group_id=group)
        refusal = subscription_refusal(before)
        if refusal:
            if key:
                key.abandon()  # refused: the user gets no key
            return _refused(email, refusal, user_id, "", listed), None
        try:
            assignment, ours = resources.assign_subscription(
                email=email,
                user_id=user_id,
                group_id=group,
                validity_days=validity_days,
                before=before,
            )
        except HostError as exc:
            if key:
                key.abandon()
            if exc.transient or exc.reason != "USER_NOT_FOUND":
                raise
            return _refused(email, Refusal.USER_GONE, user_id, str(exc), listed), None
        if key:  # else: none wanted, or this run made it already
            resources.ensure_user_key(email, password, group, looked_up=key.result())
    subscription = assignment.subscription
    access = SubscriberAccess(
        email=email,
        outcome=outcome,
        user_id=user_id,
        subscription_id=subscription.id,
        subscription=_change(assignment),
        subscription_ours=ours,
        expires_at=subscription.expires_at.isoformat() if subscription.expires_at else "",
        has_key=password is not None,
        listed=listed,
    )
    return access, assignment


def with_validation_user(
    resources: HostResources,
    granted: list[SubscriberAccess],
    *,
    group_id: int,
    validity_days: int,
) -> tuple[list[SubscriberAccess], SubscriptionAssignment | None]:
    """Mark whose key validates: the first listed user with a key, else relay-manager's own
    validation user, given the same subscription (then appended, with its assignment).
    A validation user relay-manager cannot log in as is a host refusal of the item."""
    for index, access in enumerate(granted):
        if access.has_key:
            marked = [*granted]
            marked[index] = replace(access, validation=True)
            return marked, None
    email = validation_user_email()
    if not resources.holds_password(email) and resources.client.users.find_by_email(email):
        raise _unusable(email, "it exists on the host, but relay-manager did not make it")
    access, assignment = grant_access(
        resources, email, group_id=group_id, validity_days=validity_days, listed=False
    )
    if access.refusal:
        raise _unusable(email, f"refused ({access.refusal}: {access.detail or '-'})")
    return [*granted, replace(access, validation=True)], assignment


def _unusable(email: str, why: str) -> HostError:
    return HostError(
        status=409,
        reason="VALIDATION_USER_UNUSABLE",
        message=f"validation user {email}: {why}; no key of it can prove the gateway",
        transient=False,
    )


def _refused(
    email: str, refusal: str, user_id: int | None, detail: str, listed: bool
) -> SubscriberAccess:
    return SubscriberAccess(
        email=email,
        outcome=UserOutcome.REFUSED,
        user_id=user_id,
        refusal=refusal,
        detail=detail,
        listed=listed,
    )


def _change(assignment: SubscriptionAssignment) -> str:
    if assignment.extended_by_days:
        return SubscriptionChange.EXTENDED
    return SubscriptionChange.ASSIGNED if assignment.created else SubscriptionChange.REUSED


def plan_access(resources: HostResources, emails, *, group_id: int | None) -> list[dict]:
    """What ``grant_access`` and ``with_validation_user`` would do, from GET calls only (the
    preview): per user ``user`` (create / reuse / existing / refused), ``subscription`` (assign /
    reuse / none), ``key`` (the key name it would ensure, "" for none), ``validation``; a
    refusal or a validation user relay-manager cannot use is also a ``conflict``."""
    planned = [_plan_user(resources, email, group_id) for email in emails]
    if not any(entry["key"] for entry in planned):
        validator = _plan_user(resources, validation_user_email(), group_id)
        validator["listed"] = False
        if validator["user"] == "existing":
            validator["conflict"] = (
                "validation user exists on the host but relay-manager did not make it"
            )
            validator["key"] = ""
        planned.append(validator)
    for entry in planned:
        if entry["key"]:
            entry["validation"] = True
            break
    return planned


def _plan_user(resources: HostResources, email: str, group_id: int | None) -> dict:
    user = resources.client.users.find_by_email(email)
    outcome, refusal = user_outcome(user, managed=resources.holds_password(email))
    entry: dict = {"email": email, "validation": False, "listed": True}
    subscription = (
        resources.client.subscriptions.find(user_id=user.id, group_id=group_id)
        if user is not None and group_id is not None and not refusal
        else None
    )
    refusal = refusal or subscription_refusal(subscription)
    if refusal:
        return entry | {
            "user": "refused",
            "subscription": "none",
            "key": "",
            "refusal": refusal,
            "conflict": f"refused: {refusal}",
        }
    plan_user = {
        UserOutcome.CREATED: "create",
        UserOutcome.MANAGED: "reuse",
        UserOutcome.EXISTING: "existing",
    }
    key = "" if outcome == UserOutcome.EXISTING else managed_group_name(resources.owner.provider_id)
    return entry | {
        "user": plan_user[outcome],
        "subscription": "reuse" if subscription else "assign",
        "key": f"ensure {key}" if key else "",
    }
