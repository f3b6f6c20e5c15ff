"""Side-effect-free capability probe: which features does this host have?

Only ``GET`` list endpoints are called (one item per page), so probing never creates, changes
or deletes anything on the host. A feature is present when its list endpoint answers a normal
paginated envelope; a 404/405 (route not registered, e.g. ``/admin/channels`` on an [OLD]
build) or an answer that is not an envelope (a web page) means absent. Auth failures and
transient errors are raised: they say nothing about features.

``chat_completions`` (the gateway's ``POST /v1/chat/completions``) cannot be observed without a
user key and a real request, so it is **inferred**: the route shipped together with channels in
the [NEW] era, and the [OLD] build that lacks it reports version "0.1.1" (its VERSION file was
never bumped, although the repository was tagged v0.1.27). So it counts as present when the
channels endpoint exists and the version is not 0.1.1 or older. A host on which this guess is
wrong fails the validation stage with a 404, which is reported as such.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from hosts.sub2api.errors import ErrorKind, HostError
from hosts.sub2api.types import HostCapabilities

if TYPE_CHECKING:
    from hosts.sub2api.client import HostHTTP

# name -> admin list endpoint probed for it
LIST_ENDPOINTS: dict[str, str] = {
    "groups": "/groups",
    "channels": "/channels",
    "accounts": "/accounts",
    "users": "/users",
    "subscriptions": "/subscriptions",
}
INFERRED = ("chat_completions",)
CAPABILITIES = (*LIST_ENDPOINTS, *INFERRED)
OLD_VERSION_CEILING = (0, 1, 1)
# The versions relay-manager is built and tested against (README "Host versions"): from the
# [OLD] build (reports 0.1.1) up to, not including, the next minor version.
SUPPORTED_FROM = (0, 1, 1)
SUPPORTED_BELOW = (0, 2)
SUPPORTED_RANGE_TEXT = ">= 0.1.1 and < 0.2"


def parse_version(version: str) -> tuple[int, ...] | None:
    """ "0.1.115.1" -> (0, 1, 115, 1); None for anything else ("0.0.0-dev" counts as unknown)."""
    parts = version.strip().lstrip("v").split(".")
    try:
        numbers = tuple(int(p) for p in parts)
    except ValueError:
        return None
    return numbers if any(numbers) else None


def version_outside_support(version: str) -> bool:
    """A readable version outside the supported range. An unreadable one ("0.0.0-dev", a
    custom build) is not refused: its capabilities decide."""
    parsed = parse_version(version)
    return parsed is not None and not (SUPPORTED_FROM <= parsed < SUPPORTED_BELOW)


def guess_chat_completions(version: str, has_channels: bool) -> bool:
    parsed = parse_version(version)
    if parsed is not None and parsed <= OLD_VERSION_CEILING:
        return False
    return has_channels


def _endpoint_exists(http: HostHTTP, path: str) -> bool:
    try:
        data = http.admin("GET", path, params={"page": 1, "page_size": 1})
    except HostError as exc:
        if exc.status in (404, 405) or (exc.kind == ErrorKind.PROTOCOL and exc.status == 200):
            return False
        raise
    return isinstance(data, Mapping) and isinstance(data.get("items"), list)


def probe_capabilities(http: HostHTTP, version: str) -> HostCapabilities:
    found = {name: _endpoint_exists(http, path) for name, path in LIST_ENDPOINTS.items()}
    found["chat_completions"] = guess_chat_completions(version, found["channels"])
    return HostCapabilities(version=version, capabilities=found)
