"""One error type for everything the host (or the way to it) can answer badly.

The host speaks four error dialects (sub2api-host-api.md §1.3, §1.4, §4.2, §9.6):

* handler envelope   ``{"code": 409, "message": "...", "reason": "GROUP_EXISTS"}`` (code is an int)
* middleware flat    ``{"code": "INVALID_ADMIN_KEY", "message": "..."}`` (code is a string)
* gateway envelopes  ``{"error": {"type": "api_error", "message": "..."}}`` (OpenAI) and
  ``{"type": "error", "error": {...}}`` (Anthropic style, also used on OpenAI routes)
* the 409 non-envelope ``{"error": "mixed_channel_warning", "message": "..."}``

``parse_error_body`` folds all of them into ``HostError.reason`` (the host's own code, verbatim)
and ``HostError.message``. Messages pass through ``redact`` because some of them quote upstream
bodies; request headers and bodies never reach an error.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from relay_project.logging import redact

# Statuses worth retrying later: the request may succeed unchanged.
TRANSIENT_STATUSES = frozenset({408, 425, 429})
MAX_MESSAGE_CHARS = 300


class ErrorKind:
    HANDLER = "handler"  # {code:int, message, reason}
    MIDDLEWARE = "middleware"  # {code:"STRING", message}
    GATEWAY = "gateway"  # {"error": {type, message}}
    TRANSPORT = "transport"  # no HTTP answer: timeout, refused connection
    PROTOCOL = "protocol"  # an answer that is not what a sub2api host sends


# Refusals that pass with time: the first request with this Idempotency-Key is still being
# served (§1.6), or the host's idempotency store is down for a moment.
TRANSIENT_REASONS = frozenset({"IDEMPOTENCY_IN_PROGRESS", "IDEMPOTENCY_STORE_UNAVAILABLE"})


def is_transient_status(status: int) -> bool:
    return status in TRANSIENT_STATUSES or status >= 500


class HostError(Exception):
    """A failed host call.

    ``status`` is the HTTP status (``None`` when no answer came), ``reason`` the host's code
    (``GROUP_EXISTS``, ``INVALID_ADMIN_KEY``, ``api_error``, ``mixed_channel_warning``) or one
    of ours for transport failures (``TIMEOUT``, ``CONNECT_ERROR``), ``message`` the human text.
    ``transient``: timeouts, connection errors, 429 and every 5xx (including the gateway's 503
    "no available accounts"); everything else is permanent.
    """

    def __init__(
        self,
        *,
        status: int | None,
        reason: str = "",
        message: str = "",
        transient: bool | None = None,
        kind: str = ErrorKind.HANDLER,
        method: str = "",
        path: str = "",
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.message = redact(message)[:MAX_MESSAGE_CHARS]
        if transient is None:
            transient = status is None or is_transient_status(status) or reason in TRANSIENT_REASONS
        self.transient = transient
        self.kind = kind
        # The handler envelope's ``metadata`` (e.g. ``conflict_reason``); text, redacted.
        self.metadata = {str(k): redact(str(v))[:200] for k, v in (metadata or {}).items()}
        self.method = method
        self.path = path
        super().__init__(str(self))

    @property
    def permanent(self) -> bool:
        return not self.transient

    @property
    def no_available_accounts(self) -> bool:
        """The gateway's 503 "no schedulable account" answer (§9.5), whatever its text."""
        return self.status == 503 and self.reason == "api_error"

    def __str__(self) -> str:
        head = f"HTTP {self.status}" if self.status is not None else "no answer"
        text = " ".join(part for part in (head, self.reason) if part)
        if self.message:
            text = f"{text}: {self.message}"
        if self.path:
            text = f"{text} ({self.method} {self.path})"
        return text

    def __repr__(self) -> str:
        return f"HostError({self})"

    def __reduce__(self):  # picklable (task queues) despite keyword-only arguments
        return (_rebuild, (self.__dict__.copy(),))


def _rebuild(state: dict[str, Any]) -> HostError:
    error = HostError.__new__(HostError)
    error.__dict__.update(state)
    Exception.__init__(error, str(error))
    return error


def parse_error_body(status: int, content: bytes, *, method: str = "", path: str = "") -> HostError:
    """Turn any non-success answer into a ``HostError`` (see the module docstring)."""
    try:
        body = json.loads(content) if content else None
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        code = body.get("code")
        if isinstance(error, dict):  # gateway: OpenAI or Anthropic-style envelope
            return HostError(
                status=status,
                reason=str(error.get("type") or error.get("code") or ""),
                message=str(error.get("message") or ""),
                kind=ErrorKind.GATEWAY,
                method=method,
                path=path,
            )
        if isinstance(error, str):  # the 409 mixed-channel non-envelope, or a bare error string
            return HostError(
                status=status,
                reason=error,
                message=str(body.get("message") or ""),
                kind=ErrorKind.HANDLER,
                method=method,
                path=path,
            )
        if isinstance(code, str):  # auth middleware: the code itself is the reason
            return HostError(
                status=status,
                reason=code,
                message=str(body.get("message") or ""),
                kind=ErrorKind.MIDDLEWARE,
                method=method,
                path=path,
            )
        if isinstance(code, int) and "message" in body:  # handler envelope
            metadata = body.get("metadata")
            return HostError(
                status=status,
                reason=str(body.get("reason") or ""),
                message=str(body.get("message") or ""),
                kind=ErrorKind.HANDLER,
                method=method,
                path=path,
                metadata=metadata if isinstance(metadata, dict) else None,
            )
    text = content.decode("utf-8", "replace").strip() if content else ""
    return HostError(
        status=status,
        reason="",
        message=" ".join(text.split())[:120] or "empty answer",
        kind=ErrorKind.PROTOCOL,
        method=method,
        path=path,
    )


def protocol_error(message: str, *, status: int | None, method: str, path: str) -> HostError:
    """A 2xx answer we cannot read (HTML page, wrong envelope): permanent, it will not heal."""
    return HostError(
        status=status,
        reason="UNEXPECTED_RESPONSE",
        message=message,
        transient=False,
        kind=ErrorKind.PROTOCOL,
        method=method,
        path=path,
    )


def transport_error(
    exc: httpx.TransportError, *, method: str, path: str, timeout: float
) -> HostError:
    """A ``HostError`` for a call that got no (complete) answer; always transient."""
    if isinstance(exc, httpx.TimeoutException):
        reason, message = "TIMEOUT", f"no answer within {timeout:g}s"
    elif isinstance(exc, httpx.ConnectError):
        reason, message = "CONNECT_ERROR", "cannot connect to the host"
    else:
        reason, message = "TRANSPORT_ERROR", type(exc).__name__
    return HostError(
        status=None,
        reason=reason,
        message=message,
        transient=True,
        kind=ErrorKind.TRANSPORT,
        method=method,
        path=path,
    )
