"""The one error type of the probe app: every failed upstream call ends as a ``ProbeError``.

Callers branch on ``kind`` (what went wrong) and ``transient`` (whether trying again later can
help); ``status`` and ``code`` carry the upstream's HTTP status and OpenAI error ``code`` when
there was an answer. Messages are built from the method, the URL and the upstream's own error
text, never from request headers, and pass through the key redaction of ``relay_project.logging``
so a provider that echoes the key back cannot leak it.
"""

from __future__ import annotations

from enum import StrEnum


class ProbeErrorKind(StrEnum):
    AUTH_FAILED = "auth_failed"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    BAD_RESPONSE = "bad_response"
    HTTP_ERROR = "http_error"


# Kinds that are transient whatever the status (ARCHITECTURE §4: timeouts, connection errors,
# 429, 5xx). ``http_error`` is transient only for 5xx, decided in ``default_transient``.
TRANSIENT_KINDS = frozenset(
    {ProbeErrorKind.UNREACHABLE, ProbeErrorKind.TIMEOUT, ProbeErrorKind.RATE_LIMITED}
)

# OpenAI error codes that look like throttling but are a billing state: retrying cannot help.
PERMANENT_RATE_LIMIT_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})


# 429 rate limit or quota; 402 Payment Required: the key has no balance left (DeepSeek and other
# Chinese providers), which only a top-up ends.
QUOTA_STATUSES = frozenset({402, 429})


def default_transient(kind: ProbeErrorKind, status: int | None, code: str | None) -> bool:
    if kind == ProbeErrorKind.RATE_LIMITED:
        return status != 402 and code not in PERMANENT_RATE_LIMIT_CODES
    if kind in TRANSIENT_KINDS:
        return True
    return kind == ProbeErrorKind.HTTP_ERROR and status is not None and status >= 500


class ProbeError(Exception):
    """An upstream call failed; ``str(error)`` is safe to log and to show to an operator."""

    def __init__(
        self,
        kind: ProbeErrorKind | str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        transient: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.kind = ProbeErrorKind(kind)
        self.status = status
        self.code = code
        self.transient = (
            default_transient(self.kind, status, code) if transient is None else transient
        )
        # Seconds the upstream asked us to wait (``Retry-After``), when it said so.
        self.retry_after = retry_after
        self.message = message
        super().__init__(message)

    @property
    def permanent(self) -> bool:
        return not self.transient

    def __repr__(self) -> str:
        return f"ProbeError(kind={self.kind.value!r}, status={self.status!r}, {self.message!r})"
