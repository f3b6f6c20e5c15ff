"""The outcome rule as a table (ARCHITECTURE §4): every (stage, error kind) pair ends the item
``done`` with a definitive verdict written by the validation service — a definitive failure is
``broken``, transient failures that ran out of retries ``degraded`` — with a message, the stage
that failed and a failure class; a preview never claims a verdict."""

from __future__ import annotations

import pytest

from batch_import.failures import gateway_failure, host_failure, upstream_failure
from batch_import.models import ImportRunItem
from batch_import.stages.common import fail_item
from hosts.sub2api import HostError
from hosts.sub2api.errors import ErrorKind
from probe.errors import ProbeError, ProbeErrorKind
from tests.factories import ImportRunFactory, ImportRunItemFactory

pytestmark = pytest.mark.django_db

Stage = ImportRunItem.Stage
FC = ImportRunItem.FailureClass


def probe(kind, status=None, code=None):
    return ProbeError(kind, f"upstream said {kind}", status=status, code=code)


def host(status, kind=ErrorKind.HANDLER, reason="X"):
    return HostError(status=status, kind=kind, reason=reason, message="host said no")


# (error, classifier, expected access, expected class)
PROBE_CASES = [
    (probe(ProbeErrorKind.AUTH_FAILED, 401), "broken", FC.UPSTREAM_AUTH),
    (probe(ProbeErrorKind.RATE_LIMITED, 429), "degraded", FC.UPSTREAM_QUOTA),
    (probe(ProbeErrorKind.RATE_LIMITED, 429, "insufficient_quota"), "broken", FC.UPSTREAM_QUOTA),
    (probe(ProbeErrorKind.RATE_LIMITED, 402), "broken", FC.UPSTREAM_QUOTA),  # no balance left
    (probe(ProbeErrorKind.UNREACHABLE), "degraded", FC.UPSTREAM_UNREACHABLE),
    (probe(ProbeErrorKind.TIMEOUT), "degraded", FC.UPSTREAM_UNREACHABLE),
    (probe(ProbeErrorKind.BAD_RESPONSE, 200), "broken", FC.UPSTREAM_ERROR),
    (probe(ProbeErrorKind.HTTP_ERROR, 400), "broken", FC.UPSTREAM_ERROR),
    (probe(ProbeErrorKind.HTTP_ERROR, 502), "degraded", FC.UPSTREAM_ERROR),
]
HOST_CASES = [
    (host(409, reason="GROUP_EXISTS"), "broken", FC.HOST_REFUSED),
    (host(403, kind=ErrorKind.MIDDLEWARE), "broken", FC.HOST_REFUSED),
    (host(404, kind=ErrorKind.MIDDLEWARE), "broken", FC.HOST_COMPATIBILITY_GAP),
    (host(405, kind=ErrorKind.PROTOCOL), "broken", FC.HOST_COMPATIBILITY_GAP),
    (host(404), "broken", FC.HOST_REFUSED),  # a handler's 404: the object, not the route
    (host(None, kind=ErrorKind.TRANSPORT), "degraded", FC.HOST_REFUSED),
    (host(503), "degraded", FC.HOST_REFUSED),
]
GATEWAY_CASES = [
    (host(429, kind=ErrorKind.GATEWAY), "degraded", FC.UPSTREAM_QUOTA),
    (host(401, kind=ErrorKind.GATEWAY), "broken", FC.HOST_REFUSED),
    (host(403, kind=ErrorKind.GATEWAY), "broken", FC.HOST_REFUSED),
    (host(503, kind=ErrorKind.GATEWAY), "degraded", FC.GATEWAY_ROUTING),
    (host(404, kind=ErrorKind.GATEWAY), "broken", FC.GATEWAY_ROUTING),
    # The host routed, the account's upstream failed ("Upstream request failed").
    (host(502, kind=ErrorKind.GATEWAY, reason="upstream_error"), "degraded", FC.UPSTREAM_ERROR),
]

TABLE = (
    [(Stage.PROBE, e, upstream_failure, a, c) for e, a, c in PROBE_CASES]
    + [
        (stage, e, host_failure, a, c)
        for stage in (Stage.PROVISION, Stage.CONFIRM)
        for e, a, c in HOST_CASES
    ]
    + [(Stage.VALIDATE, e, gateway_failure, a, c) for e, a, c in GATEWAY_CASES]
)


def ids(case):
    stage, error, _, access, cls = case
    return f"{stage}-{getattr(error, 'kind', '')}-{error.status}-{access}-{cls}"


@pytest.mark.parametrize("case", TABLE, ids=[ids(c) for c in TABLE])
def test_every_stage_and_error_kind_ends_with_a_definitive_verdict(case):
    stage, error, classify, access, cls = case
    item = ImportRunItemFactory(current_stage=stage)
    failure_class = classify(error)
    assert failure_class == cls
    fail_item(item, error=str(error), failure_class=failure_class, transient=error.transient)

    item.refresh_from_db()
    assert (item.current_stage, item.access_status) == (Stage.DONE, access)
    assert (item.last_error_stage, item.failure_class) == (stage, cls)
    assert item.last_error and item.next_retry_at is None
    run = item.run
    run.refresh_from_db()
    assert (run.broken_items, run.degraded_items) == ((1, 0) if access == "broken" else (0, 1))
    assert run.state in ("failed", "completed_with_warnings")
    last = item.events.last()
    assert last.event_type == "error" and last.message == item.last_error


@pytest.mark.parametrize("stage", [Stage.PROBE, Stage.PROVISION, Stage.CONFIRM])
def test_a_preview_never_claims_a_verdict(stage):
    item = ImportRunItemFactory(current_stage=stage, run=ImportRunFactory(is_preview=True))
    fail_item(item, error="upstream said no", failure_class=FC.UPSTREAM_AUTH)

    item.refresh_from_db()
    assert (item.current_stage, item.access_status) == (Stage.DONE, "unknown")
    assert (item.last_error_stage, item.failure_class) == (stage, FC.UPSTREAM_AUTH)


def test_a_strict_run_fails_on_a_definitive_failure_at_probe():
    run = ImportRunFactory(mode="strict")
    item = ImportRunItemFactory(run=run, current_stage=Stage.PROBE)
    other = ImportRunItemFactory(run=run, current_stage=Stage.PROBE)
    fail_item(item, error="upstream said 401", failure_class=FC.UPSTREAM_AUTH)

    run.refresh_from_db()
    other.refresh_from_db()
    assert run.state == "failed"
    assert (other.current_stage, other.access_status) == (Stage.DONE, "broken")
    assert (other.failure_class, other.rolled_back_at is not None) == (FC.ROLLED_BACK, True)


@pytest.mark.parametrize(
    ("refusal", "status", "cls"),
    [
        ("upstream_rate_limited", 503, FC.UPSTREAM_QUOTA),
        ("upstream_quota", 502, FC.UPSTREAM_QUOTA),
        ("upstream_auth", 502, FC.UPSTREAM_AUTH),
        ("rate_limited", 429, FC.UPSTREAM_QUOTA),
        ("key_quota", 429, FC.UPSTREAM_QUOTA),
        ("no_account", 503, FC.GATEWAY_ROUTING),
        ("model_not_found", 404, FC.GATEWAY_ROUTING),
        ("channel_restricted", 503, FC.GATEWAY_ROUTING),
    ],
)
def test_a_gateway_refusal_names_quota_apart_from_routing(refusal, status, cls):
    """The refusal decides, whatever status carried it: a quota or a refused upstream key is
    never read as routing, and routing never as quota."""
    from batch_import.stages.validate import GatewayProblem

    problem = GatewayProblem(status, "api_error", "HTTP …", transient=True, refusal=refusal)
    assert gateway_failure(problem) == cls
