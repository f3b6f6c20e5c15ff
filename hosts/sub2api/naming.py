"""Host resource names: find-or-create by unique name, and the names relay-manager gives."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hosts.sub2api.errors import HostError
from hosts.sub2api.types import UNASKED

T = TypeVar("T")


def ensure_by_name(
    name: str,
    *,
    find: Callable[[str], T | None],
    create: Callable[[], T],
    exists_reason: str,
    found: T | None = UNASKED,
) -> tuple[T, bool]:
    """``(resource, created)``. A concurrent creator makes our POST fail with the host's
    409 ``exists_reason`` (GROUP_EXISTS, CHANNEL_EXISTS…); we then read theirs.
    ``found``: what the caller found by that name moments ago (None: nothing)."""
    if found is UNASKED:
        found = find(name)
    if found is not None:
        return found, False
    try:
        return create(), True
    except HostError as exc:
        if exc.reason != exists_reason:
            raise
        found = find(name)
        if found is None:
            raise
        return found, False


# The names relay-manager gives what it makes on a host: deterministic, so a resumed or retried
# item finds what it made instead of making it twice.
MANAGED_PREFIX = "rm-"


def managed_group_name(provider_id: str) -> str:
    """Group, channel and user-key name of one provider."""
    return f"{MANAGED_PREFIX}{provider_id}"


def managed_account_name(provider_id: str, key_fingerprint: str) -> str:
    """One account per provider and upstream key."""
    return f"{MANAGED_PREFIX}{provider_id}-{key_fingerprint.removeprefix('sha256:')}"
