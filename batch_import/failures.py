"""Failure classes: what an operator needs to know about an item that did not end active.

One home for turning an adapter's typed error into a class (``ImportRunItem.FailureClass``);
the stages pass the class to the validation service with the error.
"""

from __future__ import annotations

from typing import Protocol

from batch_import.models import ImportRunItem
from hosts.sub2api import HostError
from hosts.sub2api.errors import ErrorKind
from probe.errors import ProbeError, ProbeErrorKind

FailureClass = ImportRunItem.FailureClass


class AnsweredStatus(Protocol):
    """A failed call's HTTP status (None: no answer): a ``HostError`` or a gateway problem."""

    status: int | None


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


def gateway_failure(error: AnsweredStatus) -> str:
    """A failed gateway call with the access key: quota upstream, a refused key, or routing."""
    if error.status == 429:
        return FailureClass.UPSTREAM_QUOTA
    if error.status in (401, 403):
        return FailureClass.HOST_REFUSED
    return FailureClass.GATEWAY_ROUTING
