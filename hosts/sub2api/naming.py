"""Find-or-create by unique name, shared by the resources the host keeps unique by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hosts.sub2api.errors import HostError

T = TypeVar("T")


def ensure_by_name(
    name: str,
    *,
    find: Callable[[str], T | None],
    create: Callable[[], T],
    exists_reason: str,
) -> tuple[T, bool]:
    """``(resource, created)``. A concurrent creator makes our POST fail with the host's
    409 ``exists_reason`` (GROUP_EXISTS, CHANNEL_EXISTS…); we then read theirs."""
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
