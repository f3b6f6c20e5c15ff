"""A 402 from an upstream is a key with no balance left: quota, and waiting does not help."""

from __future__ import annotations

from probe.client import error_from_body
from probe.errors import ProbeErrorKind

DEEPSEEK_402 = {
    "error": {
        "message": "Insufficient Balance",
        "type": "unknown_error",
        "param": None,
        "code": "invalid_request_error",
    }
}


def test_402_is_quota_and_lasting():
    error = error_from_body(402, DEEPSEEK_402, where="POST /v1/chat/completions")
    assert (error.kind, error.transient) == (ProbeErrorKind.RATE_LIMITED, False)
    assert "Insufficient Balance" in str(error)


def test_429_stays_a_passing_rate_limit():
    body = {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}
    error = error_from_body(429, body, where="POST /v1/chat/completions")
    assert (error.kind, error.transient) == (ProbeErrorKind.RATE_LIMITED, True)
