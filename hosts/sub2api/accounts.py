"""Upstream accounts (``/api/v1/admin/accounts``, §4).

Host quirks handled here:
* names are not unique and the host has no duplicate detection; ``search`` filters exactly;
* [OLD] a PUT with ``credentials`` replaces the whole map, [NEW] merges and keeps omitted
  secrets. ``update`` therefore only takes complete ``OpenAICredentials``;
* the account test answers HTTP 200 with Server-Sent Events; failures are events, not statuses.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx
from httpx_sse import EventSource, SSEError

from hosts.sub2api.errors import parse_error_body, transport_error
from hosts.sub2api.types import Account, AccountTestResult, HostModel, OpenAICredentials, TestEvent

if TYPE_CHECKING:
    from hosts.sub2api.client import HostHTTP


class AccountsAPI:
    def __init__(self, http: HostHTTP) -> None:
        self._http = http

    def list(
        self,
        *,
        platform: str | None = None,
        type: str | None = None,
        status: str | None = None,
        search: str | None = None,
    ) -> list[Account]:
        params = {"platform": platform, "type": type, "status": status, "search": search}
        return [Account.from_api(item) for item in self._http.iter_admin_pages("/accounts", params)]

    def search(self, name: str, *, platform: str | None = "openai") -> list[Account]:
        """Accounts named exactly ``name`` (the host's ``search`` is a substring match)."""
        return [a for a in self.list(platform=platform, search=name) if a.name == name]

    def get(self, account_id: int) -> Account:
        return Account.from_api(self._http.admin("GET", f"/accounts/{account_id}"))

    def create_openai_apikey(
        self,
        *,
        name: str,
        credentials: OpenAICredentials,
        group_ids: Sequence[int] = (),
        concurrency: int = 3,
        priority: int = 50,
        responses_supported: bool | None = None,
        extra: Mapping[str, Any] | None = None,
        notes: str | None = None,
        idempotency_key: str | None = None,
    ) -> Account:
        """Create a platform=openai, type=apikey account.

        ``idempotency_key`` (§1.6, [NEW]): the same key again replays the first answer, or
        answers 409 ``IDEMPOTENCY_IN_PROGRESS`` while the first is still being served, so a
        create whose answer was lost is never made twice. [OLD] ignores the header.

        ``concurrency`` and ``priority`` are always sent: the handler passes 0 when they are
        omitted instead of the DB defaults (§4.2). ``responses_supported=False`` writes
        ``extra.openai_responses_supported`` so the gateway uses raw Chat Completions; a [NEW]
        host's own Responses probe may overwrite it afterwards (§4.10).
        """
        body_extra = dict(extra or {})
        if responses_supported is not None:
            body_extra["openai_responses_supported"] = responses_supported
        body: dict[str, Any] = {
            "name": name,
            "platform": "openai",
            "type": "apikey",
            "credentials": credentials.to_api(),
            "extra": body_extra,
            "concurrency": concurrency,
            "priority": priority,
            "group_ids": list(group_ids),
        }
        if notes is not None:
            body["notes"] = notes
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return Account.from_api(self._http.admin("POST", "/accounts", json=body, headers=headers))

    def update(
        self,
        account_id: int,
        *,
        name: str | None = None,
        credentials: OpenAICredentials | None = None,
        extra: Mapping[str, Any] | None = None,
        group_ids: Sequence[int] | None = None,
        status: str | None = None,
        concurrency: int | None = None,
        priority: int | None = None,
    ) -> Account:
        """PUT with only the given fields. ``credentials`` is sent whole (key, base URL and
        mapping) because [OLD] replaces the map; ``extra`` also replaces the stored one, so pass
        the account's current ``extra`` with your changes; ``group_ids`` replaces bindings."""
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if credentials is not None:
            body["credentials"] = credentials.to_api()
        if extra is not None:
            body["extra"] = dict(extra)
        if group_ids is not None:
            body["group_ids"] = list(group_ids)
        if status is not None:
            body["status"] = status
        if concurrency is not None:
            body["concurrency"] = concurrency
        if priority is not None:
            body["priority"] = priority
        return Account.from_api(self._http.admin("PUT", f"/accounts/{account_id}", json=body))

    def set_schedulable(self, account_id: int, schedulable: bool) -> Account:
        data = self._http.admin(
            "POST", f"/accounts/{account_id}/schedulable", json={"schedulable": schedulable}
        )
        return Account.from_api(data)

    def delete(self, account_id: int) -> None:
        self._http.admin("DELETE", f"/accounts/{account_id}")

    def models(self, account_id: int) -> list[HostModel]:
        """What the account offers by configuration (mapping keys, or the host's defaults when
        the mapping is empty); the host does not call the upstream for this."""
        data = self._http.admin("GET", f"/accounts/{account_id}/models")
        return [HostModel.from_api(m) for m in data or () if isinstance(m, Mapping)]

    def test(
        self,
        account_id: int,
        *,
        model: str | None = None,
        prompt: str | None = None,
        mode: str | None = None,
    ) -> AccountTestResult:
        """Run the host's connectivity test and read its SSE stream to the end."""
        body: dict[str, Any] = {}
        if model:
            body["model_id"] = model
        if prompt is not None:  # [NEW] fields; [OLD] ignores them
            body["prompt"] = prompt
        if mode is not None:
            body["mode"] = mode
        path = f"/accounts/{account_id}/test"
        with self._http.admin_stream("POST", path, json=body) as response:
            try:
                events = list(_read_events(response))
            except httpx.TransportError as exc:
                raise transport_error(
                    exc, method="POST", path=path, timeout=self._http.timeout
                ) from exc
        return summarize_test(events)


def _read_events(response: httpx.Response) -> Iterable[TestEvent]:
    try:
        payloads = [sse.data for sse in EventSource(response).iter_sse()]
    except SSEError:
        # Not an event stream. [OLD] writes "Account not found" before setting the SSE
        # headers, so read the body and look for data: lines or an error envelope.
        content = response.read()
        payloads = [
            line[5:].strip()
            for line in content.decode("utf-8", "replace").splitlines()
            if line.startswith("data:")
        ]
        if not payloads:
            raise parse_error_body(response.status_code, content) from None
    for payload in payloads:
        try:
            data = json.loads(payload)
        except ValueError:
            continue
        if isinstance(data, Mapping):
            yield TestEvent.from_api(data)


def summarize_test(events: Sequence[TestEvent]) -> AccountTestResult:
    """Fold the event sequence (test_start, content*, test_complete | error) into one result."""
    model = next((e.model for e in events if e.type == "test_start" and e.model), "")
    text = "".join(e.text for e in events if e.type == "content")
    success, error = False, "test stream ended without a result"
    for event in events:
        if event.type == "test_complete":
            success, error = event.success is not False, ""
        elif event.type == "error":
            success, error = False, event.error or "unknown error"
    return AccountTestResult(
        success=success, model=model, text=text, error=error, events=tuple(events)
    )


class AccountTestFailure(enum.StrEnum):
    """What a failed account test means, read from the host's error text (its only report).

    ``ROUTE_REFUSED``: the upstream refused the route the host tested (403/404/405/501), what a
    chat-only upstream answers while the host's own /v1/responses probe has not settled;
    ``WARMUP``: the host has no schedulable account yet (503 / "no available accounts");
    ``TRANSIENT``: a timeout, 408, 429 or another 5xx; ``DEFINITIVE``: anything else.
    """

    ROUTE_REFUSED = "route_refused"
    WARMUP = "warmup"
    TRANSIENT = "transient"
    DEFINITIVE = "definitive"


ROUTE_REFUSED_STATUSES = frozenset({403, 404, 405, 501})
WARMUP_MARKERS = ("no available accounts", "service temporarily unavailable")
HTTP_STATUS_IN_TEXT = re.compile(r"\b([1-5]\d\d)\b")


def classify_test_failure(result: AccountTestResult) -> AccountTestFailure | None:
    """``None`` for a passed test."""
    if result.success:
        return None
    if result.upstream_status in ROUTE_REFUSED_STATUSES:
        return AccountTestFailure.ROUTE_REFUSED
    lowered = result.error.lower()
    if "503" in lowered or any(marker in lowered for marker in WARMUP_MARKERS):
        return AccountTestFailure.WARMUP
    codes = [int(code) for code in HTTP_STATUS_IN_TEXT.findall(lowered)]
    if codes:
        transient = any(code in (408, 429) or code >= 500 for code in codes)
    else:
        transient = "timeout" in lowered or "timed out" in lowered
    return AccountTestFailure.TRANSIENT if transient else AccountTestFailure.DEFINITIVE
