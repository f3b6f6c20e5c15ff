"""Groups (``/api/v1/admin/groups``, §3): the unit the gateway schedules accounts within."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hosts.sub2api.naming import ensure_by_name
from hosts.sub2api.types import ApiKey, Group

if TYPE_CHECKING:
    from hosts.sub2api.client import HostHTTP


class GroupsAPI:
    def __init__(self, http: HostHTTP) -> None:
        self._http = http

    def list(self, *, platform: str | None = None, status: str | None = None) -> list[Group]:
        params = {"platform": platform, "status": status}
        return [Group.from_api(item) for item in self._http.iter_admin_pages("/groups", params)]

    def get(self, group_id: int) -> Group:
        return Group.from_api(self._http.admin("GET", f"/groups/{group_id}"))

    def find_by_name(self, name: str) -> Group | None:
        """Exact name match. [NEW] narrows the listing with ``search``; [OLD] ignores the
        parameter, so the comparison is always done here."""
        for item in self._http.iter_admin_pages("/groups", {"search": name}):
            if item.get("name") == name:
                return Group.from_api(item)
        return None

    def create(
        self,
        *,
        name: str,
        platform: str = "openai",
        subscription_type: str = "standard",
        rate_multiplier: float = 1.0,
        is_exclusive: bool = False,
        description: str = "",
        daily_limit_usd: float | None = None,
        weekly_limit_usd: float | None = None,
        monthly_limit_usd: float | None = None,
    ) -> Group:
        """Create a group. ``rate_multiplier`` is always sent: [NEW] answers a missing or
        non-positive one with a bare 500 "internal error" (§3.2). Limits are omitted when None
        (unlimited on every version; 0 would mean "no usage" on the newest builds)."""
        body: dict[str, Any] = {
            "name": name,
            "platform": platform,
            "subscription_type": subscription_type,
            "rate_multiplier": rate_multiplier,
            "is_exclusive": is_exclusive,
            "description": description,
        }
        for key, value in (
            ("daily_limit_usd", daily_limit_usd),
            ("weekly_limit_usd", weekly_limit_usd),
            ("monthly_limit_usd", monthly_limit_usd),
        ):
            if value is not None:
                body[key] = value
        return Group.from_api(self._http.admin("POST", "/groups", json=body))

    def ensure(self, *, name: str, **create_fields: Any) -> tuple[Group, bool]:
        """Find the group by name or create it; returns ``(group, created)``."""
        return ensure_by_name(
            name,
            find=self.find_by_name,
            create=lambda: self.create(name=name, **create_fields),
            exists_reason="GROUP_EXISTS",
        )

    def update(
        self,
        group_id: int,
        *,
        name: str | None = None,
        description: str | None = None,
        platform: str | None = None,
        rate_multiplier: float | None = None,
        is_exclusive: bool | None = None,
        status: str | None = None,
        subscription_type: str | None = None,
    ) -> Group:
        """Partial update through PUT: only the given fields are sent (the host treats a
        missing field as "no change"; there is no PATCH route)."""
        body = {
            key: value
            for key, value in (
                ("name", name),
                ("description", description),
                ("platform", platform),
                ("rate_multiplier", rate_multiplier),
                ("is_exclusive", is_exclusive),
                ("status", status),
                ("subscription_type", subscription_type),
            )
            if value is not None
        }
        return Group.from_api(self._http.admin("PUT", f"/groups/{group_id}", json=body))

    def api_keys(self, group_id: int) -> list[ApiKey]:
        """Keys bound to the group (``GET /admin/groups/:id/api-keys``, paginated). Hosts that
        mask keys in lists return them masked; callers must not rely on the full key."""
        pages = self._http.iter_admin_pages(f"/groups/{group_id}/api-keys", {})
        return [ApiKey.from_api(item) for item in pages]

    def delete(self, group_id: int) -> None:
        self._http.admin("DELETE", f"/groups/{group_id}")
