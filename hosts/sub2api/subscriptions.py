"""Subscriptions (``/api/v1/admin/subscriptions``, §7): a user's access to a
``subscription``-type group."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hosts.sub2api.errors import HostError
from hosts.sub2api.types import Subscription

if TYPE_CHECKING:
    from hosts.sub2api.client import HostHTTP

DEFAULT_VALIDITY_DAYS = 30


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

    def revoke(self, subscription_id: int) -> None:
        self._http.admin("DELETE", f"/subscriptions/{subscription_id}")
