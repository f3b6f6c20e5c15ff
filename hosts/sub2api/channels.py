"""Channels (``/api/v1/admin/channels``, §5, [NEW] only): model mapping, pricing and the
model whitelist attached to groups. An [OLD] host answers 404 on every route here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hosts.sub2api.naming import ensure_by_name
from hosts.sub2api.types import UNASKED, Channel, PricingEntry

if TYPE_CHECKING:
    from hosts.sub2api.client import HostHTTP


def _mapping_to_api(mapping: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    return {platform: dict(pairs) for platform, pairs in mapping.items()}


class ChannelsAPI:
    def __init__(self, http: HostHTTP) -> None:
        self._http = http

    def list(self, *, status: str | None = None) -> list[Channel]:
        pages = self._http.iter_admin_pages("/channels", {"status": status})
        return [Channel.from_api(item) for item in pages]

    def get(self, channel_id: int) -> Channel:
        return Channel.from_api(self._http.admin("GET", f"/channels/{channel_id}"))

    def bound_to_group(self, group_id: int) -> Channel | None:
        """The channel a group belongs to (a group belongs to at most one: the host answers
        409 GROUP_ALREADY_IN_CHANNEL to a second)."""
        return next((c for c in self.list() if group_id in c.group_ids), None)

    def find_by_name(self, name: str) -> Channel | None:
        for item in self._http.iter_admin_pages("/channels", {"search": name}):
            if item.get("name") == name:
                return Channel.from_api(item)
        return None

    def create(
        self,
        *,
        name: str,
        group_ids: Sequence[int] = (),
        model_mapping: Mapping[str, Mapping[str, str]] | None = None,
        model_pricing: Sequence[PricingEntry] = (),
        restrict_models: bool = False,
        billing_model_source: str = "channel_mapped",
        description: str = "",
    ) -> Channel:
        """Create a channel. ``model_mapping`` is nested by platform
        (``{"openai": {"alias": "canonical"}}``); a group may belong to one channel only
        (409 GROUP_ALREADY_IN_CHANNEL)."""
        body = {
            "name": name,
            "description": description,
            "group_ids": list(group_ids),
            "model_mapping": _mapping_to_api(model_mapping or {}),
            "model_pricing": [entry.to_api() for entry in model_pricing],
            "restrict_models": restrict_models,
            "billing_model_source": billing_model_source,
        }
        return Channel.from_api(self._http.admin("POST", "/channels", json=body))

    def ensure(
        self, *, name: str, found: Channel | None = UNASKED, **create_fields: Any
    ) -> tuple[Channel, bool]:
        """Find the channel by name (unless ``found``: the caller just did) or create it;
        returns ``(channel, created)``."""
        return ensure_by_name(
            name,
            find=self.find_by_name,
            create=lambda: self.create(name=name, **create_fields),
            exists_reason="CHANNEL_EXISTS",
            found=found,
        )

    def update(
        self,
        channel_id: int,
        *,
        name: str | None = None,
        description: str | None = None,
        status: str | None = None,
        group_ids: Sequence[int] | None = None,
        model_mapping: Mapping[str, Mapping[str, str]] | None = None,
        model_pricing: Sequence[PricingEntry] | None = None,
        restrict_models: bool | None = None,
        billing_model_source: str | None = None,
    ) -> Channel:
        """Partial update via PUT (§5.3). None leaves a field alone; a given ``group_ids``,
        ``model_mapping`` (even ``{}``) or ``model_pricing`` *replaces* what is stored, so pass
        the full desired value (e.g. the current mapping merged with new aliases)."""
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if description is not None:
            body["description"] = description
        if status is not None:
            body["status"] = status
        if group_ids is not None:
            body["group_ids"] = list(group_ids)
        if model_mapping is not None:
            body["model_mapping"] = _mapping_to_api(model_mapping)
        if model_pricing is not None:
            body["model_pricing"] = [entry.to_api() for entry in model_pricing]
        if restrict_models is not None:
            body["restrict_models"] = restrict_models
        if billing_model_source is not None:
            body["billing_model_source"] = billing_model_source
        return Channel.from_api(self._http.admin("PUT", f"/channels/{channel_id}", json=body))

    def delete(self, channel_id: int) -> None:
        self._http.admin("DELETE", f"/channels/{channel_id}")
