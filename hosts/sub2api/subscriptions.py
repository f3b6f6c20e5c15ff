"""Subscriptions (``/api/v1/admin/subscriptions``, §7): a user's access to a
``subscription``-type group."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from hosts.sub2api.errors import HostError
from hosts.sub2api.types import UNASKED, Subscription

if TYPE_CHECKING:
    from hosts.sub2api.client import HostHTTP

DEFAULT_VALIDITY_DAYS = 30
ASSIGN_CONFLICT = "SUBSCRIPTION_ASSIGN_CONFLICT"
# A subscription the host just made ends "now + days" by the host's clock, a moment before
# ours; that, and clock skew, is no reason to extend it.
COVERAGE_SLACK = timedelta(hours=1)


@dataclass(frozen=True)
class SubscriptionAssignment:
    """What ``assign_covering`` did: ``extended_by_days`` > 0 when it lengthened the
    subscription; ``conflict_reason`` when the host refused a plain re-assign."""

    subscription: Subscription
    extended_by_days: int = 0
    conflict_reason: str = ""
    # No subscription of the user to the group existed before: this call made it (only then
    # is it ours to revoke).
    created: bool = False


class SubscriptionsAPI:
    def __init__(self, http: HostHTTP) -> None:
        self._http = http

    def list(
        self,
        *,
        user_id: int | None = None,
        group_id: int | None = None,
        status: str | None = None,
    ) -> list[Subscription]:
        params = {"user_id": user_id, "group_id": group_id, "status": status}
        pages = self._http.iter_admin_pages("/subscriptions", params)
        return [Subscription.from_api(item) for item in pages]

    def get(self, subscription_id: int) -> Subscription:
        return Subscription.from_api(self._http.admin("GET", f"/subscriptions/{subscription_id}"))

    def find(self, *, user_id: int, group_id: int) -> Subscription | None:
        """The user's subscription to the group, preferring an active one."""
        found = [
            s
            for s in self.list(user_id=user_id, group_id=group_id)
            # Filter here too: an old host might ignore a query parameter.
            if s.user_id == user_id and s.group_id == group_id
        ]
        found.sort(key=lambda s: (s.status != "active", -s.id))
        return found[0] if found else None

    def assign(
        self,
        *,
        user_id: int,
        group_id: int,
        validity_days: int = DEFAULT_VALIDITY_DAYS,
        notes: str = "",
    ) -> Subscription:
        """Assign, idempotently. [NEW] answers a re-assign with the existing record (200);
        [OLD] answers 409 SUBSCRIPTION_ALREADY_EXISTS, and we then return the existing one.
        400 GROUP_NOT_SUBSCRIPTION_TYPE when the group bills by balance."""
        body = {
            "user_id": user_id,
            "group_id": group_id,
            "validity_days": validity_days,
            "notes": notes,
        }
        try:
            return Subscription.from_api(
                self._http.admin("POST", "/subscriptions/assign", json=body)
            )
        except HostError as exc:
            if exc.reason != "SUBSCRIPTION_ALREADY_EXISTS":
                raise
            existing = self.find(user_id=user_id, group_id=group_id)
            if existing is None:
                raise
            return existing

    def extend(self, subscription_id: int, days: int) -> Subscription:
        """Lengthen a subscription by ``days`` (§7)."""
        data = self._http.admin(
            "POST", f"/subscriptions/{subscription_id}/extend", json={"days": days}
        )
        return Subscription.from_api(data)

    def assign_covering(
        self,
        *,
        user_id: int,
        group_id: int,
        validity_days: int = DEFAULT_VALIDITY_DAYS,
        notes: str = "",
        now: datetime | None = None,
        before: Subscription | None | object = UNASKED,
    ) -> SubscriptionAssignment:
        """The user's subscription to the group, valid at least ``validity_days`` from now,
        whatever the host already holds: assigned (or renewed) when there is none usable;
        reused when it already lasts long enough; otherwise extended by the missing days.
        A re-assign the host refuses because the terms differ ([NEW] 409
        SUBSCRIPTION_ASSIGN_CONFLICT after an admin extended it, or another run asked for
        other days; [OLD] 409 SUBSCRIPTION_ALREADY_EXISTS) is never a failure. ``before``:
        the user's subscription to the group, when the caller has just looked it up."""
        if before is UNASKED:
            before = self.find(user_id=user_id, group_id=group_id)
        conflict = ""
        try:
            subscription = self.assign(
                user_id=user_id, group_id=group_id, validity_days=validity_days, notes=notes
            )
        except HostError as exc:
            if exc.reason != ASSIGN_CONFLICT:
                raise
            existing = self.find(user_id=user_id, group_id=group_id)
            if existing is None:
                raise
            subscription = existing
            conflict = exc.metadata.get("conflict_reason", "") or "conflict"
        now = now or datetime.now(UTC)
        wanted = now + timedelta(days=validity_days)
        extended = 0
        # [NEW] extends an expired subscription from now, an older build maybe from its past
        # end: what is still missing is measured again after each answer.
        for _ in range(2):
            ends = subscription.expires_at
            missing = wanted - max(ends, now) if ends else timedelta(0)
            if missing <= COVERAGE_SLACK:
                break
            days = math.ceil(missing.total_seconds() / 86400)
            subscription = self.extend(subscription.id, days)
            extended += days
        return SubscriptionAssignment(
            subscription=subscription,
            extended_by_days=extended,
            conflict_reason=conflict,
            created=before is None,
        )

    def revoke(self, subscription_id: int) -> None:
        self._http.admin("DELETE", f"/subscriptions/{subscription_id}")
