"""Failure classes: what an operator needs to know about an item that did not end active.

One home for turning an adapter's typed error into a class (``ImportRunItem.FailureClass``);
the stages pass the class to the validation service with the error.
"""

from __future__ import annotations

from typing import Protocol

from batch_import.models import ImportRunItem
from hosts.sub2api import GatewayRefusal, HostError
from hosts.sub2api.errors import ErrorKind
from probe.errors import ProbeError, ProbeErrorKind

FailureClass = ImportRunItem.FailureClass


class AnsweredStatus(Protocol):
    """A failed call's HTTP status (None: no answer) and the host's code: a ``HostError`` or
    a gateway problem (which also says its ``refusal``)."""

    status: int | None
    reason: str


PROBE_KIND_CLASSES = {
    ProbeErrorKind.AUTH_FAILED: FailureClass.UPSTREAM_AUTH,
    ProbeErrorKind.RATE_LIMITED: FailureClass.UPSTREAM_QUOTA,
    ProbeErrorKind.UNREACHABLE: FailureClass.UPSTREAM_UNREACHABLE,
    ProbeErrorKind.TIMEOUT: FailureClass.UPSTREAM_UNREACHABLE,
    ProbeErrorKind.BAD_RESPONSE: FailureClass.UPSTREAM_ERROR,
    ProbeErrorKind.HTTP_ERROR: FailureClass.UPSTREAM_ERROR,
}


def upstream_failure(error: ProbeError) -> str:
    return PROBE_KIND_CLASSES.get(error.kind, FailureClass.UPSTREAM_ERROR)


def host_failure(error: HostError) -> str:
    """A failed admin call: a missing route or feature is a gap, anything else a refusal."""
    if error.kind == ErrorKind.TRANSPORT:
        return FailureClass.HOST_REFUSED
    if error.status in (404, 405, 501) and error.kind != ErrorKind.HANDLER:
        return FailureClass.HOST_COMPATIBILITY_GAP
    return FailureClass.HOST_REFUSED


# What each gateway refusal says about the item: the upstream's quota or key, or routing.
REFUSAL_CLASSES = {
    GatewayRefusal.UPSTREAM_RATE_LIMITED: FailureClass.UPSTREAM_QUOTA,
    GatewayRefusal.UPSTREAM_QUOTA: FailureClass.UPSTREAM_QUOTA,
    GatewayRefusal.UPSTREAM_AUTH: FailureClass.UPSTREAM_AUTH,
    # Accounts are rate-limited by their upstreams' 429s.
    GatewayRefusal.RATE_LIMITED: FailureClass.UPSTREAM_QUOTA,
    GatewayRefusal.KEY_QUOTA: FailureClass.UPSTREAM_QUOTA,
    GatewayRefusal.NO_ACCOUNT: FailureClass.GATEWAY_ROUTING,
    GatewayRefusal.MODEL_NOT_FOUND: FailureClass.GATEWAY_ROUTING,
    GatewayRefusal.CHANNEL_RESTRICTED: FailureClass.GATEWAY_ROUTING,
}


def gateway_failure(error: AnsweredStatus) -> str:
    """A failed gateway call with the access key: the upstream's quota or key, a refused
    access key, the upstream failing after the host routed to it, or routing."""
    refusal = getattr(error, "refusal", "")
    if refusal in REFUSAL_CLASSES:
        return REFUSAL_CLASSES[refusal]
    if error.reason == "upstream_error":  # the host routed; the account's upstream failed
        return FailureClass.UPSTREAM_ERROR
    if error.status == 429:
        return FailureClass.UPSTREAM_QUOTA
    if error.status in (401, 403):
        return FailureClass.HOST_REFUSED
    return FailureClass.GATEWAY_ROUTING
