"""Adapter transport, auth and error handling, faked at the httpx transport."""

from __future__ import annotations

import json
import logging
import pickle

import httpx
import pytest

from hosts.sub2api import HostError, Sub2ApiClient
from relay_project.crypto import Secret

BASE = "http://host.test"
ADMIN_KEY = "admin-" + "ab" * 32
OK_VERSION = {"code": 0, "message": "success", "data": {"version": "0.1.115.1"}}


def client_with(handler, **options) -> Sub2ApiClient:
    options.setdefault("admin_api_key", ADMIN_KEY)
    options.setdefault("retries", 0)
    return Sub2ApiClient(BASE, transport=httpx.MockTransport(handler), timeout=2, **options)


def answering(status: int, body, content_type: str = "application/json"):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers={"content-type": content_type})

    return handler


ERROR_SHAPES = [
    # (status, body, reason, message, kind)
    (
        409,
        {"code": 409, "message": "group name already exists", "reason": "GROUP_EXISTS"},
        "GROUP_EXISTS",
        "group name already exists",
        "handler",
    ),
    (500, {"code": 500, "message": "internal error"}, "", "internal error", "handler"),
    (
        401,
        {"code": "INVALID_ADMIN_KEY", "message": "Invalid admin API key"},
        "INVALID_ADMIN_KEY",
        "Invalid admin API key",
        "middleware",
    ),
    (
        503,
        {"error": {"type": "api_error", "message": "No available accounts"}},
        "api_error",
        "No available accounts",
        "gateway",
    ),
    (
        403,
        {"type": "error", "error": {"type": "permission_error", "message": "no group"}},
        "permission_error",
        "no group",
        "gateway",
    ),
    (
        409,
        {"error": "mixed_channel_warning", "message": "mixes platforms"},
        "mixed_channel_warning",
        "mixes platforms",
        "handler",
    ),
    (404, b"404 page not found", "", "404 page not found", "protocol"),
]


@pytest.mark.parametrize(("status", "body", "reason", "message", "kind"), ERROR_SHAPES)
def test_client_error_shapes_become_host_error(status, body, reason, message, kind):
    client = client_with(answering(status, body))
    with pytest.raises(HostError) as caught:
        client.version()
    error = caught.value
    assert (error.status, error.reason, error.message, error.kind) == (
        status,
        reason,
        message,
        kind,
    )
    assert error.path == "/api/v1/admin/system/version"


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
    ],
)
def test_client_error_transient_flag_follows_status(status, transient):
    client = client_with(answering(status, {"code": status, "message": "x"}))
    with pytest.raises(HostError) as caught:
        client.version()
    assert caught.value.transient is transient
    assert caught.value.permanent is not transient


def test_client_timeout_is_transient_host_error():
    def handler(request):
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(HostError) as caught:
        client_with(handler).version()
    assert (caught.value.status, caught.value.reason, caught.value.transient) == (
        None,
        "TIMEOUT",
        True,
    )


def test_client_connect_error_is_transient_host_error():
    def handler(request):
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(HostError) as caught:
        client_with(handler).version()
    assert caught.value.reason == "CONNECT_ERROR"
    assert caught.value.transient


def test_client_non_envelope_success_is_permanent_protocol_error():
    client = client_with(answering(200, b"<html>login</html>", "text/html"))
    with pytest.raises(HostError) as caught:
        client.version()
    assert caught.value.reason == "UNEXPECTED_RESPONSE"
    assert caught.value.permanent


def test_client_sends_admin_key_header_only():
    seen: list[httpx.Request] = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json=OK_VERSION)

    assert client_with(handler).version() == "0.1.115.1"
    assert seen[0].headers["x-api-key"] == ADMIN_KEY
    assert "authorization" not in seen[0].headers


def password_host(expire_times: int):
    """A fake host whose admin JWT expires ``expire_times`` times."""
    state = {"logins": 0, "expired": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/auth/login":
            state["logins"] += 1
            assert json.loads(request.content)["password"] == "pw-secret"
            token = f"jwt-{state['logins']}"
            return httpx.Response(200, json={"code": 0, "data": {"access_token": token}})
        if state["expired"] < expire_times:
            state["expired"] += 1
            body = {"code": "TOKEN_EXPIRED", "message": "Token has expired"}
            return httpx.Response(401, json=body)
        assert request.headers["authorization"] == f"Bearer jwt-{state['logins']}"
        return httpx.Response(200, json=OK_VERSION)

    return state, handler


def test_client_password_auth_logs_in_once_and_reuses_token():
    state, handler = password_host(expire_times=0)
    client = client_with(
        handler, admin_api_key=None, admin_email="a@x.io", admin_password=Secret("pw-secret")
    )
    client.version()
    client.version()
    assert state["logins"] == 1


def test_client_password_auth_logs_in_again_once_on_token_expired():
    state, handler = password_host(expire_times=1)
    client = client_with(
        handler, admin_api_key=None, admin_email="a@x.io", admin_password="pw-secret"
    )
    assert client.version() == "0.1.115.1"
    assert state["logins"] == 2


def test_client_password_auth_gives_up_after_second_expiry():
    state, handler = password_host(expire_times=5)
    client = client_with(
        handler, admin_api_key=None, admin_email="a@x.io", admin_password="pw-secret"
    )
    with pytest.raises(HostError) as caught:
        client.version()
    assert caught.value.reason == "TOKEN_EXPIRED"
    assert state["logins"] == 2


def test_client_requires_some_admin_credential():
    with pytest.raises(ValueError, match="admin_api_key"):
        Sub2ApiClient(BASE, admin_email="a@x.io")


@pytest.mark.parametrize(
    ("base_url", "version_url"),
    [
        ("http://host.test", "http://host.test/api/v1/admin/system/version"),
        ("http://host.test/", "http://host.test/api/v1/admin/system/version"),
        ("HTTP://Host.Test:80/", "http://host.test/api/v1/admin/system/version"),
        (
            "https://host.test:8443/sub2api/",
            "https://host.test:8443/sub2api/api/v1/admin/system/version",
        ),
        ("HTTPS://Host.Test:443/Sub", "https://host.test/Sub/api/v1/admin/system/version"),
        ("http://[::1]:8080", "http://[::1]:8080/api/v1/admin/system/version"),
        ("https://bücher.example", "https://xn--bcher-kva.example/api/v1/admin/system/version"),
    ],
)
def test_client_calls_a_path_under_its_base_url_without_parsing_it_again(
    base_url, version_url, url_parses
):
    """Building a URL parses and checks all of it, which httpx did twice per call to merge a
    relative path with the client's base_url: a path called before is not built again."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=OK_VERSION)

    client = Sub2ApiClient(
        base_url, admin_api_key=ADMIN_KEY, transport=httpx.MockTransport(handler), retries=0
    )
    client.version()
    url_parses.clear()
    client.version()
    assert seen == [version_url, version_url]
    assert url_parses == []


def test_client_builds_a_lists_url_once_per_page(url_parses):
    """The path's URL is kept; the page's query is merged into it, which parses it once."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        data = {"items": [], "total": 0, "page": 1, "page_size": 100, "pages": 1}
        return httpx.Response(200, json={"code": 0, "data": data})

    client = client_with(handler)
    client.accounts.search("a b&c", platform="openai")
    url_parses.clear()
    client.accounts.search("a b&c", platform="openai")
    assert (
        seen
        == [f"{BASE}/api/v1/admin/accounts?platform=openai&search=a+b%26c&page=1&page_size=100"] * 2
    )
    assert len(url_parses) == 1


def test_client_iterates_every_page():
    requested: list[dict[str, str]] = []

    def handler(request):
        params = dict(request.url.params)
        requested.append(params)
        page = int(params["page"])
        items = [{"id": i, "name": f"g{i}"} for i in range((page - 1) * 100, min(page * 100, 250))]
        data = {"items": items, "total": 250, "page": page, "page_size": 100, "pages": 3}
        return httpx.Response(200, json={"code": 0, "data": data})

    groups = client_with(handler).groups.list()
    assert [g.id for g in groups] == list(range(250))
    assert [r["page"] for r in requested] == ["1", "2", "3"]
    assert {r["page_size"] for r in requested} == {"100"}


def test_client_retries_transient_reads_but_not_writes():
    calls: list[str] = []

    def handler(request):
        calls.append(request.method)
        if len(calls) == 1 or request.method == "POST":
            return httpx.Response(503, json={"code": 503, "message": "busy"})
        return httpx.Response(200, json=OK_VERSION)

    client = client_with(handler, retries=2)
    assert client.version() == "0.1.115.1"
    with pytest.raises(HostError):
        client.groups.create(name="g")
    assert calls == ["GET", "GET", "POST"]


def test_client_secrets_never_in_errors_or_logs(caplog):
    def handler(request):
        # A host that echoes the credential back in its message.
        body = {"code": "INVALID_ADMIN_KEY", "message": f"bad key {ADMIN_KEY}"}
        return httpx.Response(401, json=body)

    caplog.set_level(logging.DEBUG)
    with pytest.raises(HostError) as caught:
        client_with(handler).version()
    assert ADMIN_KEY not in str(caught.value)
    assert ADMIN_KEY not in repr(caught.value)
    assert ADMIN_KEY not in caplog.text


def test_host_error_survives_pickling():
    error = HostError(status=409, reason="GROUP_EXISTS", message="taken", method="POST", path="/g")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.status, copy.reason, copy.message, copy.transient) == (
        409,
        "GROUP_EXISTS",
        "taken",
        False,
    )
    assert str(copy) == str(error)


@pytest.mark.timeout(5)
def test_client_account_test_logs_in_with_a_single_slot():
    # With one slot per host, the login inside the streamed call must not wait on itself.
    def handler(request):
        if request.url.path == "/api/v1/auth/login":
            return httpx.Response(200, json={"code": 0, "data": {"access_token": "jwt"}})
        text = 'data: {"type":"test_complete","success":true}\n\n'
        return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})

    client = Sub2ApiClient(
        "http://single-slot.test",
        admin_email="a@x.io",
        admin_password="pw-secret",
        transport=httpx.MockTransport(handler),
        timeout=2,
        max_concurrency=1,
    )
    assert client.accounts.test(1).success


def test_the_pipelines_shared_client_is_one_per_host_and_settings(settings):
    from hosts.models import Host
    from hosts.sub2api import shared_client_for_host

    transport = httpx.MockTransport(answering(200, OK_VERSION))
    host = Host(pk=4242, base_url=BASE, auth_type="admin_api_key", admin_credential=ADMIN_KEY)
    first = shared_client_for_host(host, transport=transport)
    assert shared_client_for_host(host, transport=transport) is first
    assert first.version() == "0.1.115.1"
    # Anything the client is built from gives a client of its own: the credential, the row's
    # URL, the settings, the transport.
    rotated = Host(pk=4242, base_url=BASE, auth_type="admin_api_key", admin_credential="other")
    assert shared_client_for_host(rotated, transport=transport) is not first
    moved = Host(
        pk=4242, base_url=BASE + ":81", auth_type="admin_api_key", admin_credential=ADMIN_KEY
    )
    assert shared_client_for_host(moved, transport=transport) is not first
    assert (
        shared_client_for_host(host, transport=httpx.MockTransport(answering(200, OK_VERSION)))
        is not first
    )
    settings.RELAY_HTTP_TIMEOUT = 3
    assert shared_client_for_host(host, transport=transport) is not first
    settings.RELAY_HTTP_TIMEOUT = 15
    assert shared_client_for_host(host, transport=transport).http.timeout == 15


def test_a_cookie_the_host_sets_is_never_sent_back():
    """One client serves many items' and users' calls: no state may ride along between them."""
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, json=OK_VERSION, headers={"set-cookie": "sid=user-a; Path=/"})

    client = client_with(handler)
    client.version()
    client.version()
    assert seen == [None, None]


def test_the_shared_clients_are_bounded_in_number():
    from hosts.models import Host
    from hosts.sub2api import client as client_module
    from hosts.sub2api import shared_client_for_host

    transport = httpx.MockTransport(answering(200, OK_VERSION))
    first = shared_client_for_host(
        Host(pk=1, base_url=BASE, admin_credential="k0"), transport=transport
    )
    for n in range(1, client_module.SHARED_CLIENTS_MAX + 1):
        shared_client_for_host(
            Host(pk=1, base_url=BASE, admin_credential=f"k{n}"), transport=transport
        )
    assert len(client_module._shared_clients) <= client_module.SHARED_CLIENTS_MAX
    again = shared_client_for_host(
        Host(pk=1, base_url=BASE, admin_credential="k0"), transport=transport
    )
    assert again is not first  # the oldest went first
