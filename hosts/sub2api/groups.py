"""Groups (``/api/v1/admin/groups``, §3): the unit the gateway schedules accounts within."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from hosts.sub2api.errors import HostError
from hosts.sub2api.naming import ensure_by_name
from hosts.sub2api.types import ApiKey, Group
from relay_project.crypto import Secret, reveal

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

    def group_of_key(self, api_key: Secret | str) -> int | None:
        """The openai group a user key is bound to, from the per-group key listings (the
        gateway never says which group served a request). Hosts that mask listed keys are
        matched on the visible start and end; when that leaves more than one group, a
        ``KEY_GROUP_AMBIGUOUS`` error says so instead of guessing."""
        wanted = reveal(api_key)
        exact: list[int] = []
        masked: list[int] = []
        for group in self.list(platform="openai"):
            for listed in self.api_keys(group.id):
                shown = listed.key.reveal()
                if shown == wanted:
                    exact.append(group.id)
                elif masked_key_matches(shown, wanted):
                    masked.append(group.id)
        found = sorted(set(exact or masked))
        if len(found) > 1:
            raise HostError(
                status=409,
                reason="KEY_GROUP_AMBIGUOUS",
                message=(
                    f"this host masks keys in its listings and {len(found)} groups hold a key "
                    f"that looks like this one (groups {', '.join(map(str, found))})"
                ),
                transient=False,
            )
        return found[0] if found else None

    def delete(self, group_id: int) -> None:
        self._http.admin("DELETE", f"/groups/{group_id}")


MASK_RUN = re.compile(r"\*{2,}|\.{3,}|\u2026+")


def masked_key_matches(shown: str, key: str) -> bool:
    """``sk-ab...wxyz`` (or ``sk-ab****wxyz``) stands for ``key`` when the visible start and
    end are the key's and at least something was hidden."""
    parts = MASK_RUN.split(shown, maxsplit=1)
    if len(parts) != 2 or not all(parts) or len(key) <= len(parts[0]) + len(parts[1]):
        return False
    return key.startswith(parts[0]) and key.endswith(parts[1])
