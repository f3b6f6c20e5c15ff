"""Host users (``/api/v1/admin/users``, §6): the people whose keys reach the gateway."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hosts.sub2api.types import Subscription, User
from relay_project.crypto import Secret, reveal

if TYPE_CHECKING:
    from hosts.sub2api.client import HostHTTP


class UsersAPI:
    def __init__(self, http: HostHTTP) -> None:
        self._http = http

    def list(self, *, search: str | None = None, status: str | None = None) -> list[User]:
        pages = self._http.iter_admin_pages("/users", {"search": search, "status": status})
        return [User.from_api(item) for item in pages]

    def get(self, user_id: int) -> User:
        return User.from_api(self._http.admin("GET", f"/users/{user_id}"))

    def find_by_email(self, email: str) -> User | None:
        """Exact, case-insensitive email match (``search`` is a substring filter)."""
        wanted = email.strip().lower()
        for user in self.list(search=email.strip()):
            if user.email.lower() == wanted:
                return user
        return None

    def create(
        self,
        *,
        email: str,
        password: Secret | str,
        username: str = "",
        balance: float | None = None,
        concurrency: int | None = None,
        allowed_groups: Sequence[int] | None = None,
        notes: str = "",
    ) -> User:
        """Create a user (role is always ``user`` on the host). 409 EMAIL_EXISTS on a taken
        email; the password needs at least 6 characters."""
        body: dict[str, Any] = {
            "email": email,
            "password": reveal(password),
            "username": username,
            "notes": notes,
        }
        if balance is not None:
            body["balance"] = balance
        if concurrency is not None:
            body["concurrency"] = concurrency
        if allowed_groups is not None:
            body["allowed_groups"] = list(allowed_groups)
        return User.from_api(self._http.admin("POST", "/users", json=body))

    def update(
        self,
        user_id: int,
        *,
        status: str | None = None,
        allowed_groups: Sequence[int] | None = None,
        concurrency: int | None = None,
        username: str | None = None,
    ) -> User:
        body: dict[str, Any] = {}
        if status is not None:
            body["status"] = status
        if allowed_groups is not None:
            body["allowed_groups"] = list(allowed_groups)
        if concurrency is not None:
            body["concurrency"] = concurrency
        if username is not None:
            body["username"] = username
        return User.from_api(self._http.admin("PUT", f"/users/{user_id}", json=body))

    def subscriptions(self, user_id: int) -> list[Subscription]:
        """The user's subscriptions (a bare array, not paginated)."""
        data = self._http.admin("GET", f"/users/{user_id}/subscriptions")
        return [Subscription.from_api(s) for s in data or () if isinstance(s, Mapping)]

    def delete(self, user_id: int) -> None:
        self._http.admin("DELETE", f"/users/{user_id}")
