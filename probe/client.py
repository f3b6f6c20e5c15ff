"""The one way out to upstream providers: an ``httpx`` wrapper with timeouts, retries and typed
results (ARCHITECTURE §2: the probe app is the only code that speaks upstream HTTP).

* Every call has a timeout (``RELAY_HTTP_TIMEOUT`` unless given).
* Transient failures (timeouts, connection errors, 429, 5xx) are retried up to
  ``RELAY_HTTP_RETRIES`` times with jittered exponential backoff; a ``Retry-After`` longer than
  the backoff cap is not waited for — the error goes back to the caller, whose stage schedules
  its own retry.
* At most ``RELAY_UPSTREAM_CONCURRENCY`` calls of one client are in flight at once, whatever
  the number of threads sharing it.
* Failures raise ``ProbeError``; successes return frozen dataclasses. The API key is sent as a
  bearer token and never appears in a log line, a ``repr`` or an error message.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from httpx_sse import EventSource, SSEError

from probe.errors import QUOTA_STATUSES, ProbeError, ProbeErrorKind
from probe.guard import guarded_transport
from relay_project.base_urls import upstream_endpoint, upstream_root
from relay_project.crypto import Secret, reveal
from relay_project.limits import Slot, slot
from relay_project.logging import redact
from relay_project.pooled_http import PooledTransport, send_plainly
from relay_project.tls import client_tls_context

__all__ = [
    "ProbeError",
    "ProbeErrorKind",
    "SSEEvent",
    "StreamResponse",
    "UpstreamClient",
    "UpstreamResponse",
    "error_from_body",
]

logger = logging.getLogger(__name__)

USER_AGENT = "relay-manager-probe/1.0"
ANTHROPIC_VERSION = "2023-06-01"
BACKOFF_CAP_SECONDS = 4.0
MAX_ERROR_TEXT = 300

# Error codes/types in an OpenAI-style envelope that say "your credentials are wrong".
AUTH_ERROR_MARKERS = frozenset(
    {"invalid_api_key", "authentication_error", "unauthorized", "invalid_authentication"}
)
RATE_LIMIT_MARKERS = frozenset(
    {"rate_limit_exceeded", "rate_limit_error", "insufficient_quota", "too_many_requests"}
)


@dataclass(frozen=True)
class UpstreamResponse:
    """A 2xx answer with a JSON body (``data`` is the decoded JSON value)."""

    status: int
    latency_ms: int
    data: Any


@dataclass(frozen=True)
class SSEEvent:
    """One server-sent event; ``data`` is decoded JSON, or the raw text when it is not JSON."""

    event: str
    data: Any


@dataclass(frozen=True)
class StreamResponse:
    """A 2xx answer to a streaming request.

    ``is_sse`` is False when the upstream ignored ``stream: true`` and answered with one JSON
    body (kept in ``data``); ``done`` is True when the stream ended with ``data: [DONE]``.
    """

    status: int
    latency_ms: int
    is_sse: bool
    events: tuple[SSEEvent, ...]
    done: bool
    data: Any = None


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


def _envelope(data: Any) -> tuple[str, str | None, str | None] | None:
    """(message, code, type) from the error shapes providers use, or None if ``data`` has none.

    Handles OpenAI ``{"error": {"message", "type", "code"}}``, Anthropic
    ``{"type": "error", "error": {...}}``, ``{"error": "text"}`` and flat
    ``{"code", "message"}`` / ``{"detail": ...}`` bodies.
    """
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        return (
            str(error.get("message") or error.get("type") or "error"),
            None if code is None else str(code),
            None if error.get("type") is None else str(error.get("type")),
        )
    if isinstance(error, str) and error:
        return error, None, None
    if "detail" in data and isinstance(data["detail"], str):
        return data["detail"], None, None
    if "message" in data and "code" in data and "choices" not in data:
        return str(data["message"]), str(data["code"]), None
    return None


def error_from_body(status: int | None, data: Any, *, where: str, secret: str = "") -> ProbeError:
    """Classify an upstream error answer (HTTP status + decoded body) as a ``ProbeError``.

    ``status`` None means the error came inside a 200 body or an SSE frame; then the kind is
    decided by the envelope's ``code``/``type`` alone.
    """
    message, code, etype = _envelope(data) or (
        (_clip(data) if isinstance(data, str) and data.strip() else "no error message"),
        None,
        None,
    )
    markers = {m.lower() for m in (code, etype) if m}
    if status in (401, 403) or markers & AUTH_ERROR_MARKERS:
        kind = ProbeErrorKind.AUTH_FAILED
    elif status in QUOTA_STATUSES or markers & RATE_LIMIT_MARKERS:
        kind = ProbeErrorKind.RATE_LIMITED
    elif status == 408:
        kind = ProbeErrorKind.TIMEOUT
    elif status is None and "model_not_found" not in markers:
        kind = ProbeErrorKind.BAD_RESPONSE
    else:
        kind = ProbeErrorKind.HTTP_ERROR
    shown = "error in body" if status is None else f"HTTP {status}"
    text = _safe(f"{where}: {shown} ({kind.value}): {_clip(message)}", secret)
    return ProbeError(kind, text, status=status, code=code)


def _safe(text: str, secret: str) -> str:
    if secret:
        text = text.replace(secret, "***")
    return redact(text)


def _decode_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


# Endpoint URLs kept (see ``endpoint``): a few paths per upstream root.
ENDPOINTS_MAX = 1024


@lru_cache(maxsize=ENDPOINTS_MAX)
def endpoint(root_url: str, path: str) -> tuple[str, httpx.URL]:
    """Where ``path`` lives under ``root_url``, as text (for messages) and as the ``httpx.URL``
    requests are sent to: building one parses and checks the whole URL, which httpx did for
    every request given a string, and the next item of the relay calls the same ones."""
    text = upstream_endpoint(root_url, path)
    return text, httpx.URL(text)


# Connection pools shared by this process's clients, per upstream origin, newest last.
SHARED_POOLS_MAX = 64
_pools_lock = threading.Lock()
_pools: dict[tuple, PooledTransport] = {}


class _SharedPool(httpx.BaseTransport):
    """A client's view of a shared pool: closing the client leaves the pool to the others."""

    def __init__(self, pool: PooledTransport) -> None:
        self.pool = pool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.pool.handle_request(request)

    def close(self) -> None:
        pass


def shared_upstream_pool(root_url: str, size: int) -> httpx.BaseTransport:
    """The keep-alive connections toward one upstream origin, shared by every item's client in
    this process: a key of a relay finds the connection (and TLS session) the previous key
    opened instead of connecting again. A pool holds connections only; each client sends its
    own key with each request and keeps its own cookies. The SSRF guard checks every new
    connection (``probe.guard``); dropped pools are not closed (a thread may be using one)
    and a forked worker starts with none."""
    parts = urlsplit(root_url)
    guarded = not settings.RELAY_ALLOW_INSECURE_UPSTREAMS
    key = (parts.scheme, parts.netloc, size, guarded)
    with _pools_lock:
        pool = _pools.pop(key, None)
        if pool is None:
            pool = (
                guarded_transport(ssl_context=client_tls_context(), max_keepalive=size)
                if guarded
                else PooledTransport(ssl_context=client_tls_context(), max_keepalive=size)
            )
        _pools[key] = pool
        while len(_pools) > SHARED_POOLS_MAX:
            _pools.pop(next(iter(_pools)))
        return _SharedPool(pool)


os.register_at_fork(after_in_child=_pools.clear)


class _Cookies(httpx.Cookies):
    """A client's cookies, read from an answer only when it sets some: httpx built a urllib
    request and a compat response for every answer to look for ``Set-Cookie``."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers or "set-cookie2" in response.headers:
            super().extract_cookies(response)


def upstream_slot(root_url: str, size: int) -> Slot:
    """The bound on calls toward one upstream host (scheme + netloc), shared by every client of
    every process: items of one relay never exceed RELAY_UPSTREAM_CONCURRENCY calls in flight."""
    parts = urlsplit(root_url)
    return slot(f"upstream:{parts.scheme}://{parts.netloc}", size)


class UpstreamClient:
    """HTTP client for one upstream (``base_url`` + key). Thread-safe; close it when done."""

    def __init__(
        self,
        base_url: str,
        api_key: Secret | str | None,
        *,
        timeout: float | None = None,
        retries: int | None = None,
        concurrency: int | None = None,
        transport: httpx.BaseTransport | None = None,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.root_url = upstream_root(base_url)
        self.timeout = float(settings.RELAY_HTTP_TIMEOUT if timeout is None else timeout)
        self.retries = max(0, int(settings.RELAY_HTTP_RETRIES if retries is None else retries))
        self.concurrency = max(
            1, int(settings.RELAY_UPSTREAM_CONCURRENCY if concurrency is None else concurrency)
        )
        self.backoff = max(0.0, backoff)
        self._key = Secret(reveal(api_key))
        self._sleep = sleep
        self._slots = upstream_slot(self.root_url, self.concurrency)
        if transport is None:
            # Guarded against DNS rebinding at connect time unless insecure upstreams are on.
            transport = shared_upstream_pool(self.root_url, self.concurrency)
        self._transport = transport
        self._http = httpx.Client(
            timeout=httpx.Timeout(self.timeout),
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )
        self._http._cookies = _Cookies()  # httpx has no argument for the jar's class

    def __repr__(self) -> str:
        return f"UpstreamClient({self.root_url!r})"

    def __enter__(self) -> UpstreamClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def url(self, path: str) -> str:
        """``path`` starts with ``/v1`` (``/v1/models``); a root that ends in another version
        segment (``/api/paas/v4``) takes its place (``relay_project.base_urls``)."""
        return endpoint(self.root_url, path)[0]

    # --- public calls -------------------------------------------------------------------------

    def get_json(self, path: str) -> UpstreamResponse:
        return self._with_retries("GET", path, lambda: self._send_json("GET", path, None, False))

    def post_json(
        self, path: str, payload: Mapping[str, Any], *, anthropic: bool = False
    ) -> UpstreamResponse:
        """POST JSON; ``anthropic=True`` adds the ``x-api-key``/``anthropic-version`` headers."""
        return self._with_retries(
            "POST", path, lambda: self._send_json("POST", path, payload, anthropic)
        )

    def post_stream(
        self, path: str, payload: Mapping[str, Any], *, max_events: int = 512
    ) -> StreamResponse:
        """POST a streaming request and read its SSE events (at most ``max_events``).

        The whole stream must finish within the client timeout after its headers arrive, so a
        provider that trickles keep-alives cannot hold a probe thread for ever.
        """
        return self._with_retries(
            "POST", path, lambda: self._send_stream(path, payload, max_events)
        )

    # --- internals ----------------------------------------------------------------------------

    def _headers(self, *, anthropic: bool = False, stream: bool = False) -> dict[str, str]:
        headers = {"Accept": "text/event-stream" if stream else "application/json"}
        key = self._key.reveal()
        if key:
            headers["Authorization"] = f"Bearer {key}"
            if anthropic:
                headers["x-api-key"] = key
        if anthropic:
            headers["anthropic-version"] = ANTHROPIC_VERSION
        return headers

    def _with_retries(self, method: str, path: str, attempt: Callable[[], Any]) -> Any:
        for number in range(self.retries + 1):
            try:
                return attempt()
            except ProbeError as error:
                delay = self._retry_delay(number, error)
                if delay is None:
                    raise
                logger.info(
                    "upstream %s %s: %s; retry %d/%d in %.2fs",
                    method,
                    self.url(path),
                    error.kind.value,
                    number + 1,
                    self.retries,
                    delay,
                )
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _retry_delay(self, number: int, error: ProbeError) -> float | None:
        if error.permanent or number >= self.retries:
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= BACKOFF_CAP_SECONDS else None
        return min(BACKOFF_CAP_SECONDS, self.backoff * 2**number) * random.uniform(0.5, 1.0)  # noqa: S311

    def _transport_error(self, method: str, path: str, exc: Exception) -> ProbeError:
        where = f"{method} {self.url(path)}"
        if isinstance(exc, httpx.TimeoutException):
            return ProbeError(
                ProbeErrorKind.TIMEOUT,
                self._safe(f"{where}: no answer within {self.timeout:g}s ({type(exc).__name__})"),
            )
        if isinstance(exc, httpx.DecodingError):
            return ProbeError(ProbeErrorKind.BAD_RESPONSE, self._safe(f"{where}: {exc}"))
        detail = str(exc) or type(exc).__name__
        return ProbeError(ProbeErrorKind.UNREACHABLE, self._safe(f"{where}: {_clip(detail)}"))

    def _safe(self, text: str) -> str:
        return _safe(text, self._key.reveal())

    def _status_error(self, method: str, path: str, response: httpx.Response) -> ProbeError:
        where = f"{method} {self.url(path)}"
        if 300 <= response.status_code < 400:
            return ProbeError(
                ProbeErrorKind.HTTP_ERROR,
                self._safe(
                    f"{where}: HTTP {response.status_code} redirect (not followed); "
                    "check the base_url"
                ),
                status=response.status_code,
            )
        error = error_from_body(
            response.status_code,
            _decode_json(response.text),
            where=where,
            secret=self._key.reveal(),
        )
        error.retry_after = _retry_after(response)
        return error

    def _log(self, method: str, path: str, status: int, started: float) -> int:
        latency_ms = int((time.monotonic() - started) * 1000)
        logger.debug("upstream %s %s -> %s in %dms", method, self.url(path), status, latency_ms)
        return latency_ms

    def _send_json(
        self, method: str, path: str, payload: Mapping[str, Any] | None, anthropic: bool
    ) -> UpstreamResponse:
        headers = self._headers(anthropic=anthropic)
        with self._slots:
            started = time.monotonic()
            try:
                response = self._request(method, endpoint(self.root_url, path)[1], payload, headers)
            except (httpx.TransportError, httpx.DecodingError) as exc:
                raise self._transport_error(method, path, exc) from None
        latency_ms = self._log(method, path, response.status_code, started)
        if not response.is_success:
            raise self._status_error(method, path, response)
        try:
            data = response.json()
        except ValueError:
            raise ProbeError(
                ProbeErrorKind.BAD_RESPONSE,
                self._safe(
                    f"{method} {self.url(path)}: HTTP {response.status_code} but the body is not "
                    f"JSON ({response.headers.get('content-type', 'no content-type')})"
                ),
                status=response.status_code,
            ) from None
        self._raise_embedded_error(method, path, data)
        return UpstreamResponse(status=response.status_code, latency_ms=latency_ms, data=data)

    def _request(
        self, method: str, url: httpx.URL, payload: Any, headers: dict[str, str]
    ) -> httpx.Response:
        """``self._http.request``; while the client holds no cookie to send, straight to the
        transport (``send_plainly``), keeping any an answer sets as the client would."""
        if self._http.cookies:
            return self._http.request(method, url, json=payload, headers=headers)
        response = send_plainly(
            self._http, self._transport, method, url, headers=headers, json=payload
        )
        self._http.cookies.extract_cookies(response)
        return response

    def _raise_embedded_error(self, method: str, path: str, data: Any) -> None:
        """Some relays answer 200 with an error envelope; treat that as the error it is."""
        if (
            isinstance(data, dict)
            and data.get("error")
            and not any(key in data for key in ("choices", "data", "output", "content", "models"))
        ):
            raise error_from_body(
                None, data, where=f"{method} {self.url(path)}", secret=self._key.reveal()
            )

    def _send_stream(
        self, path: str, payload: Mapping[str, Any], max_events: int
    ) -> StreamResponse:
        headers = self._headers(stream=True)
        with self._slots:
            started = time.monotonic()
            try:
                with self._http.stream(
                    "POST", endpoint(self.root_url, path)[1], json=payload, headers=headers
                ) as response:
                    if not response.is_success:
                        response.read()
                        self._log("POST", path, response.status_code, started)
                        raise self._status_error("POST", path, response)
                    return self._read_stream(path, response, started, max_events)
            except (httpx.TransportError, httpx.DecodingError) as exc:
                raise self._transport_error("POST", path, exc) from None

    def _read_stream(
        self, path: str, response: httpx.Response, started: float, max_events: int
    ) -> StreamResponse:
        content_type = response.headers.get("content-type", "")
        if "text/event-stream" not in content_type:
            response.read()
            latency_ms = self._log("POST", path, response.status_code, started)
            data = _decode_json(response.text)
            if isinstance(data, str):
                raise ProbeError(
                    ProbeErrorKind.BAD_RESPONSE,
                    self._safe(f"POST {self.url(path)}: stream answer is neither SSE nor JSON"),
                    status=response.status_code,
                )
            self._raise_embedded_error("POST", path, data)
            return StreamResponse(response.status_code, latency_ms, False, (), False, data)
        deadline = time.monotonic() + self.timeout
        events: list[SSEEvent] = []
        done = False
        try:
            for sse in EventSource(response).iter_sse():
                if sse.data.strip() == "[DONE]":
                    done = True
                    break
                data = _decode_json(sse.data)
                if sse.event == "error" or (isinstance(data, dict) and data.get("error")):
                    raise error_from_body(
                        None,
                        data,
                        where=f"POST {self.url(path)} (stream)",
                        secret=self._key.reveal(),
                    )
                events.append(SSEEvent(sse.event or "message", data))
                if len(events) >= max_events:
                    break
                if time.monotonic() > deadline:
                    raise ProbeError(
                        ProbeErrorKind.TIMEOUT,
                        self._safe(
                            f"POST {self.url(path)}: stream still open after {self.timeout:g}s"
                        ),
                    )
        except SSEError as exc:
            raise ProbeError(
                ProbeErrorKind.BAD_RESPONSE, self._safe(f"POST {self.url(path)}: {exc}")
            ) from None
        latency_ms = self._log("POST", path, response.status_code, started)
        return StreamResponse(response.status_code, latency_ms, True, tuple(events), done)


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP date: treat as "no hint" rather than parse clocks
