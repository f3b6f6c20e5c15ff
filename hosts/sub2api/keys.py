"""User API keys (``/api/v1/keys``, §8.2), called with a *user* JWT.

The host has no admin route that creates a user's key, so the control plane logs in as the
user (``Sub2ApiClient.login``) and manages keys with the returned ``UserSession``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hosts.sub2api.types import UNASKED, ApiKey, UserSession

if TYPE_CHECKING:
    from hosts.sub2api.client import HostHTTP

PAGE_SIZE = 100
MAX_PAGES = 1000


class KeysAPI:
    def __init__(self, http: HostHTTP) -> None:
        self._http = http

    def list(self, session: UserSession) -> list[ApiKey]:
        keys: list[ApiKey] = []
        for page in range(1, MAX_PAGES + 1):
            data = self._http.user(
                session.access_token,
                "GET",
                "/keys",
                params={"page": page, "page_size": PAGE_SIZE},
            )
            items = data.get("items") if isinstance(data, dict) else None
            if not items:
                break
            keys.extend(ApiKey.from_api(item) for item in items if isinstance(item, dict))
            if page >= int(data.get("pages") or 1):
                break
        return keys

    def get(self, session: UserSession, key_id: int) -> ApiKey:
        return ApiKey.from_api(self._http.user(session.access_token, "GET", f"/keys/{key_id}"))

    def find_by_name(self, session: UserSession, name: str) -> ApiKey | None:
        return next((k for k in self.list(session) if k.name == name), None)

    def create(self, session: UserSession, *, name: str, group_id: int | None = None) -> ApiKey:
        """A new ``sk-…`` key. Binding a group follows the host's rules: a subscription group
        needs an active subscription, an exclusive group needs ``allowed_groups``; otherwise
        403 GROUP_NOT_ALLOWED."""
        body = {"name": name, "group_id": group_id}
        return ApiKey.from_api(self._http.user(session.access_token, "POST", "/keys", json=body))

    def update(
        self,
        session: UserSession,
        key_id: int,
        *,
        name: str | None = None,
        group_id: int | None = None,
        status: str | None = None,
    ) -> ApiKey:
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if group_id is not None:
            body["group_id"] = group_id
        if status is not None:
            body["status"] = status
        data = self._http.user(session.access_token, "PUT", f"/keys/{key_id}", json=body)
        return ApiKey.from_api(data)

    def delete(self, session: UserSession, key_id: int) -> None:
        self._http.user(session.access_token, "DELETE", f"/keys/{key_id}")

    def ensure(
        self,
        session: UserSession,
        *,
        name: str,
        group_id: int,
        found: ApiKey | None | object = UNASKED,
    ) -> tuple[ApiKey, bool]:
        """The user's key called ``name``, bound to ``group_id`` and active; created when
        missing, rebound/reactivated when it drifted (``found``: the key of that name, when
        the caller has just looked it up). Returns ``(key, created)``."""
        if found is UNASKED:
            found = self.find_by_name(session, name)
        if found is None:
            return self.create(session, name=name, group_id=group_id), True
        if found.group_id != group_id or found.status != "active":
            found = self.update(session, found.id, group_id=group_id, status="active")
        return found, False
