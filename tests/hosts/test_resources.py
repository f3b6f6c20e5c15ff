"""Resource modules of the adapter (bodies sent, answers parsed), faked at the transport."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from hosts.sub2api import HostError, OpenAICredentials, PricingEntry, Sub2ApiClient, UserSession
from hosts.sub2api.accounts import summarize_test
from hosts.sub2api.types import Account, TestEvent, User
from relay_project.crypto import Secret

ACCOUNT = {
    "id": 7,
    "name": "acme",
    "platform": "openai",
    "type": "apikey",
    "credentials": {"base_url": "https://up.example", "model_mapping": {"fast": "up-fast"}},
    "credentials_status": {"has_api_key": True},
    "extra": {"openai_responses_supported": False},
    "status": "active",
    "schedulable": True,
    "group_ids": [3],
}


class FakeHost:
    """Routes (method, path) to canned answers and keeps what was sent."""

    def __init__(self, routes: dict[tuple[str, str], object]) -> None:
        self.routes = routes
        self.sent: list[tuple[str, str, object]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.sent.append((request.method, request.url.path, body))
        answer = self.routes[(request.method, request.url.path)]
        if callable(answer):  # an answer that changes from call to call
            answer = answer()
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json={"code": 0, "message": "success", "data": answer})

    def client(self) -> Sub2ApiClient:
        return Sub2ApiClient(
            "http://host.test",
            admin_api_key="admin-x",
            transport=httpx.MockTransport(self),
            timeout=2,
            retries=0,
        )


def sse(*events: dict) -> httpx.Response:
    text = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})


def test_account_from_api_reads_new_redacted_shape():
    account = Account.from_api(ACCOUNT)
    assert account.has_api_key and account.api_key is None
    assert account.model_mapping == {"fast": "up-fast"}
    assert account.responses_supported is False
    assert account.is_schedulable


def test_account_from_api_wraps_old_full_key_in_secret():
    old = {**ACCOUNT, "credentials": {"api_key": "sk-up-secret", "base_url": "b"}}
    del old["credentials_status"]
    account = Account.from_api(old)
    assert account.has_api_key
    assert account.api_key.reveal() == "sk-up-secret"
    assert "sk-up-secret" not in repr(account)


def test_accounts_create_sends_full_openai_body():
    host = FakeHost({("POST", "/api/v1/admin/accounts"): ACCOUNT})
    creds = OpenAICredentials(Secret("sk-up"), "https://up.example", {"fast": "up-fast"})
    host.client().accounts.create_openai_apikey(
        name="acme", credentials=creds, group_ids=[3], responses_supported=False
    )
    body = host.sent[0][2]
    assert body["platform"] == "openai" and body["type"] == "apikey"
    assert body["credentials"] == {
        "api_key": "sk-up",
        "base_url": "https://up.example",
        "model_mapping": {"fast": "up-fast"},
    }
    assert body["extra"] == {"openai_responses_supported": False}
    assert (body["concurrency"], body["priority"], body["group_ids"]) == (3, 50, [3])


def test_accounts_update_sends_only_given_fields_and_whole_credentials():
    host = FakeHost({("PUT", "/api/v1/admin/accounts/7"): ACCOUNT})
    creds = OpenAICredentials("sk-up", "https://up.example", {"a": "b"})
    host.client().accounts.update(7, credentials=creds, group_ids=[])
    assert host.sent[0][2] == {"credentials": creds.to_api(), "group_ids": []}


def test_accounts_search_matches_name_exactly():
    page = {"items": [ACCOUNT, {**ACCOUNT, "id": 8, "name": "acme-2"}], "pages": 1}
    host = FakeHost({("GET", "/api/v1/admin/accounts"): page})
    assert [a.id for a in host.client().accounts.search("acme")] == [7]


def test_accounts_test_parses_success_stream():
    stream = sse(
        {"type": "test_start", "model": "up-fast"},
        {"type": "content", "text": "po"},
        {"type": "content", "text": "ng"},
        {"type": "test_complete", "success": True},
    )
    host = FakeHost({("POST", "/api/v1/admin/accounts/7/test"): stream})
    result = host.client().accounts.test(7, model="fast")
    assert (result.success, result.model, result.text, result.error) == (
        True,
        "up-fast",
        "pong",
        "",
    )
    assert len(result.events) == 4
    assert host.sent[0][2] == {"model_id": "fast"}


def test_accounts_test_parses_error_event():
    stream = sse(
        {"type": "test_start", "model": "m"},
        {"type": "error", "error": "API returned 403: Forbidden"},
    )
    host = FakeHost({("POST", "/api/v1/admin/accounts/7/test"): stream})
    result = host.client().accounts.test(7)
    assert not result.success
    assert result.error == "API returned 403: Forbidden"


def test_accounts_test_reads_old_not_found_without_sse_headers():
    # [OLD] writes this event before setting the SSE content type.
    answer = httpx.Response(200, text='data: {"type":"error","error":"Account not found"}\n\n')
    host = FakeHost({("POST", "/api/v1/admin/accounts/9/test"): answer})
    result = host.client().accounts.test(9)
    assert (result.success, result.error) == (False, "Account not found")


def test_summarize_test_without_terminal_event_is_failure():
    result = summarize_test([TestEvent(type="test_start", model="m")])
    assert not result.success
    assert "without a result" in result.error


def test_channels_update_sends_only_given_fields():
    channel = {"id": 2, "name": "c", "group_ids": [1], "model_mapping": {}, "model_pricing": []}
    host = FakeHost({("PUT", "/api/v1/admin/channels/2"): channel})
    pricing = [PricingEntry(platform="openai", models=("m",), input_price=1e-7)]
    host.client().channels.update(2, model_mapping={"openai": {"a": "m"}}, model_pricing=pricing)
    sent = host.sent[0][2]
    assert set(sent) == {"model_mapping", "model_pricing"}
    assert sent["model_pricing"][0]["platform"] == "openai"


def test_subscriptions_assign_returns_existing_on_old_409():
    conflict = httpx.Response(
        409,
        json={"code": 409, "message": "exists", "reason": "SUBSCRIPTION_ALREADY_EXISTS"},
    )
    existing = {"id": 5, "user_id": 1, "group_id": 2, "status": "active"}
    host = FakeHost(
        {
            ("POST", "/api/v1/admin/subscriptions/assign"): conflict,
            ("GET", "/api/v1/admin/subscriptions"): {"items": [existing], "pages": 1},
        }
    )
    sub = host.client().subscriptions.assign(user_id=1, group_id=2)
    assert sub.id == 5


def test_subscriptions_assign_propagates_other_errors():
    wrong_type = httpx.Response(
        400, json={"code": 400, "message": "no", "reason": "GROUP_NOT_SUBSCRIPTION_TYPE"}
    )
    host = FakeHost({("POST", "/api/v1/admin/subscriptions/assign"): wrong_type})
    with pytest.raises(HostError) as caught:
        host.client().subscriptions.assign(user_id=1, group_id=2)
    assert caught.value.reason == "GROUP_NOT_SUBSCRIPTION_TYPE"


def session() -> UserSession:
    user = User(
        id=1,
        email="u@x.io",
        username="",
        role="user",
        status="active",
        balance=1,
        concurrency=1,
        allowed_groups=(),
    )
    return UserSession(user=user, access_token=Secret("jwt-user"))


def test_keys_ensure_rebinds_found_key_to_group():
    key = {"id": 4, "user_id": 1, "name": "rm-key", "group_id": 1, "status": "active", "key": "k"}
    host = FakeHost(
        {
            ("GET", "/api/v1/keys"): {"items": [key], "pages": 1},
            ("PUT", "/api/v1/keys/4"): {**key, "group_id": 2},
        }
    )
    found, created = host.client().keys.ensure(session(), name="rm-key", group_id=2)
    assert (found.group_id, created) == (2, False)
    assert host.sent[-1][2] == {"group_id": 2, "status": "active"}


def test_gateway_chat_completion_reads_content():
    answer = httpx.Response(
        200,
        json={
            "model": "m",
            "choices": [{"message": {"content": "pong"}, "finish_reason": "stop"}],
        },
    )
    host = FakeHost({("POST", "/v1/chat/completions"): answer})
    result = host.client().gateway.chat_completion(Secret("sk-user"), model="m")
    assert result.ok and result.content == "pong"


@pytest.mark.parametrize(
    ("status", "body", "error_type", "no_accounts"),
    [
        (
            503,
            {"error": {"type": "api_error", "message": "No available accounts: x"}},
            "api_error",
            True,
        ),
        (
            403,
            {"code": "INSUFFICIENT_BALANCE", "message": "Insufficient account balance"},
            "INSUFFICIENT_BALANCE",
            False,
        ),
        (404, b"404 page not found", "http_404", False),
    ],
)
def test_gateway_chat_completion_errors_become_results(status, body, error_type, no_accounts):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    host = FakeHost({("POST", "/v1/chat/completions"): httpx.Response(status, content=content)})
    result = host.client().gateway.chat_completion("sk-user", model="m")
    assert not result.ok
    assert (result.status, result.error_type, result.no_available_accounts) == (
        status,
        error_type,
        no_accounts,
    )


@pytest.mark.parametrize(
    ("status", "error", "refusal", "transient"),
    [
        (503, ("api_error", "Service temporarily unavailable"), "no_account", True),
        (
            503,
            ("api_error", "No available accounts: no available OpenAI accounts"),
            "no_account",
            True,
        ),
        (
            503,
            ("api_error", "No available accounts: x (channel pricing restriction)"),
            "channel_restricted",
            False,
        ),
        (
            404,
            ("model_not_found", 'Model "m" is not supported by any account'),
            "model_not_found",
            False,
        ),
        (
            429,
            ("rate_limit_error", "All available accounts are rate limited"),
            "rate_limited",
            True,
        ),
        (
            429,
            ("rate_limit_error", "All available accounts are currently rate-limited."),
            "rate_limited",
            True,
        ),
        (429, ("rate_limit_exceeded", "api key daily limit used up"), "key_quota", False),
        (429, ("USAGE_LIMIT_EXCEEDED", "daily usage limit exceeded"), "key_quota", False),
        (429, ("API_KEY_QUOTA_EXHAUSTED", "API key quota used up"), "key_quota", False),
        (502, ("upstream_error", "Upstream request failed"), "", True),
        (404, ("not_found_error", "no route"), "", False),
    ],
)
def test_gateway_no_account_answers_are_classified_whatever_the_build(
    status, error, refusal, transient
):
    body = {"error": {"type": error[0], "message": error[1]}}
    if error[0].isupper():  # the API-key middleware's flat shape
        body = {"code": error[0], "message": error[1]}
    host = FakeHost({("POST", "/v1/chat/completions"): httpx.Response(status, json=body)})
    result = host.client().gateway.chat_completion("sk-user", model="m")
    assert (result.refusal, result.transient) == (refusal, transient)


@pytest.mark.parametrize(
    ("header", "seconds"), [("7", 7.0), (None, 0.0), ("Wed, 21 Oct 2026 07:28:00 GMT", 0.0)]
)
def test_gateway_retry_after_is_read_in_seconds(header, seconds):
    headers = {"Retry-After": header} if header else {}
    body = {"error": {"type": "rate_limit_error", "message": "All available accounts…"}}
    answer = httpx.Response(429, json=body, headers=headers)
    host = FakeHost({("POST", "/v1/chat/completions"): answer})
    result = host.client().gateway.chat_completion("sk-user", model="m")
    assert result.retry_after == seconds


def test_assign_covering_extends_an_existing_one_that_ends_too_soon():
    conflict = httpx.Response(
        409,
        json={
            "code": 409,
            "message": "conflict",
            "reason": "SUBSCRIPTION_ASSIGN_CONFLICT",
            "metadata": {"conflict_reason": "validity_days_mismatch"},
        },
    )
    now = datetime(2026, 12, 4, tzinfo=UTC)
    existing = {
        "id": 5,
        "user_id": 1,
        "group_id": 2,
        "status": "active",
        "starts_at": "2026-11-20T00:00:00Z",
        "expires_at": "2026-12-20T00:00:00Z",
    }
    host = FakeHost(
        {
            ("POST", "/api/v1/admin/subscriptions/assign"): conflict,
            ("GET", "/api/v1/admin/subscriptions"): {"items": [existing], "pages": 1},
            ("POST", "/api/v1/admin/subscriptions/5/extend"): {
                **existing,
                "expires_at": "2027-03-04T00:00:00Z",
            },
        }
    )
    done = host.client().subscriptions.assign_covering(
        user_id=1, group_id=2, validity_days=90, now=now
    )
    assert done.extended_by_days == 74 and done.conflict_reason == "validity_days_mismatch"
    assert host.sent[-1] == ("POST", "/api/v1/admin/subscriptions/5/extend", {"days": 74})
    assert done.subscription.expires_at == datetime(2027, 3, 4, tzinfo=UTC)


def test_assign_covering_reuses_one_that_lasts_long_enough():
    existing = {
        "id": 5,
        "user_id": 1,
        "group_id": 2,
        "status": "active",
        "starts_at": "2026-12-04T00:00:00Z",
        "expires_at": "2027-01-03T00:00:00Z",
    }
    host = FakeHost(
        {
            ("GET", "/api/v1/admin/subscriptions"): {"items": [], "pages": 1},
            ("POST", "/api/v1/admin/subscriptions/assign"): existing,
        }
    )
    done = host.client().subscriptions.assign_covering(
        user_id=1, group_id=2, validity_days=30, now=datetime(2026, 12, 4, 0, 5, tzinfo=UTC)
    )
    assert done.extended_by_days == 0 and done.subscription.id == 5 and done.created
    assert [s[1] for s in host.sent] == [
        "/api/v1/admin/subscriptions",
        "/api/v1/admin/subscriptions/assign",
    ]


def test_assign_covering_counts_an_expired_one_from_now_and_checks_the_answer():
    """[OLD] refuses the re-assign; an expired subscription is extended by what is missing
    from now, and again if the host counted from its past end."""
    expired = {
        "id": 5,
        "user_id": 1,
        "group_id": 2,
        "status": "expired",
        "starts_at": "2026-10-01T00:00:00Z",
        "expires_at": "2026-10-31T00:00:00Z",
    }
    ends = iter(["2026-11-30T00:00:00Z", "2027-01-03T00:00:00Z"])
    host = FakeHost(
        {
            ("GET", "/api/v1/admin/subscriptions"): {"items": [expired], "pages": 1},
            ("POST", "/api/v1/admin/subscriptions/assign"): httpx.Response(
                409,
                json={"code": 409, "message": "exists", "reason": "SUBSCRIPTION_ALREADY_EXISTS"},
            ),
            ("POST", "/api/v1/admin/subscriptions/5/extend"): lambda: {
                **expired,
                "status": "active",
                "expires_at": next(ends),
            },
        }
    )
    done = host.client().subscriptions.assign_covering(
        user_id=1, group_id=2, validity_days=30, now=datetime(2026, 12, 4, tzinfo=UTC)
    )
    extends = [body for method, path, body in host.sent if path.endswith("/extend")]
    assert extends == [{"days": 30}, {"days": 30}]  # the second: the host counted from October
    assert done.extended_by_days == 60 and not done.created
    assert done.subscription.expires_at == datetime(2027, 1, 3, tzinfo=UTC)
