from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from pytest_django import Settings

from probe.client import UpstreamClient
from probe.errors import ProbeError, ProbeErrorKind
from relay_project.crypto import Secret
from tests.fixtures_upstream import UpstreamFactory

KEY = "sk-live-0123456789abcdef"
Handler = Callable[[httpx.Request], httpx.Response]


def make_client(handler: Handler, **options: object) -> UpstreamClient:
    options = {"retries": 0, "backoff": 0.0, "timeout": 1.0, **options}
    return UpstreamClient(
        "https://relay.example.com/v1",
        Secret(KEY),
        transport=httpx.MockTransport(handler),
        **options,  # type: ignore[arg-type]
    )


def error_of(client: UpstreamClient, path: str = "/v1/models") -> ProbeError:
    with pytest.raises(ProbeError) as caught:
        client.get_json(path)
    return caught.value


@pytest.mark.parametrize(
    "base_url",
    [
        "https://x.com",
        "https://x.com/",
        "https://x.com/v1",
        "https://x.com/v1/",
        " https://x.com/V1 ",
    ],
)
def test_client_base_url_variants_hit_v1_models(base_url: str) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"data": []})

    client = UpstreamClient(base_url, KEY, transport=httpx.MockTransport(handler), retries=0)
    client.get_json("/v1/models")
    assert seen == ["https://x.com/v1/models"]


def test_client_calls_a_version_rooted_base_like_the_openai_sdk() -> None:
    """Zhipu's base ends in /v4: its models are at /api/paas/v4/models, not .../v4/v1/models."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"data": []})

    client = UpstreamClient(
        "https://open.bigmodel.cn/api/paas/v4/",
        KEY,
        transport=httpx.MockTransport(handler),
        retries=0,
    )
    client.get_json("/v1/models")
    client.post_json("/v1/chat/completions", {"model": "glm-4.6"})
    assert seen == [
        "https://open.bigmodel.cn/api/paas/v4/models",
        "https://open.bigmodel.cn/api/paas/v4/chat/completions",
    ]


def test_client_refuses_a_non_http_base_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="http") as caught:
        UpstreamClient("ftp://x.com/?key=sk-secret-value", KEY)
    assert "sk-secret" not in str(caught.value)


def test_client_sends_the_key_as_bearer_token() -> None:
    headers: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        headers.append(request.headers["Authorization"])
        return httpx.Response(200, json={"data": []})

    make_client(handler).get_json("/v1/models")
    assert headers == [f"Bearer {KEY}"]


def test_client_repr_does_not_show_the_key() -> None:
    client = make_client(lambda request: httpx.Response(200, json={}))
    assert KEY not in repr(client)
    assert "relay.example.com" in repr(client)


@pytest.mark.parametrize("status", [401, 403])
def test_client_auth_failure_is_permanent(status: int) -> None:
    body = {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}
    error = error_of(make_client(lambda request: httpx.Response(status, json=body)))
    assert (error.kind, error.status, error.permanent) == ("auth_failed", status, True)
    assert "Incorrect API key provided" in str(error)


def test_client_timeout_is_a_transient_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    error = error_of(make_client(handler))
    assert (error.kind, error.transient, error.status) == ("timeout", True, None)


def test_client_connection_refused_is_unreachable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    error = error_of(make_client(handler))
    assert (error.kind, error.transient) == ("unreachable", True)
    assert "Connection refused" in str(error)


def test_client_rate_limit_is_transient_but_exhausted_quota_is_not() -> None:
    throttled = error_of(make_client(lambda request: httpx.Response(429, json={"error": {}})))
    quota = {"error": {"message": "You exceeded your quota", "code": "insufficient_quota"}}
    exhausted = error_of(make_client(lambda request: httpx.Response(429, json=quota)))
    assert (throttled.kind, throttled.transient) == ("rate_limited", True)
    assert (exhausted.kind, exhausted.transient) == ("rate_limited", False)


def test_client_server_error_is_a_transient_http_error() -> None:
    error = error_of(make_client(lambda request: httpx.Response(502, text="bad gateway")))
    assert (error.kind, error.status, error.transient) == ("http_error", 502, True)


def test_client_not_found_keeps_the_upstream_error_code() -> None:
    body = {"error": {"message": "The model `x` does not exist", "code": "model_not_found"}}
    error = error_of(make_client(lambda request: httpx.Response(404, json=body)))
    assert (error.kind, error.code, error.permanent) == ("http_error", "model_not_found", True)


def test_client_non_json_success_is_a_bad_response() -> None:
    page = httpx.Response(200, text="<html>login</html>", headers={"content-type": "text/html"})
    error = error_of(make_client(lambda request: page))
    assert (error.kind, error.status) == ("bad_response", 200)
    assert "text/html" in str(error)


def test_client_error_envelope_inside_a_200_is_an_error() -> None:
    """Some relays answer 200 with an error body; that must not pass for a model list."""
    body = {"error": {"message": "invalid token", "type": "authentication_error"}}
    error = error_of(make_client(lambda request: httpx.Response(200, json=body)))
    assert error.kind == "auth_failed"


def test_client_redirect_is_not_followed() -> None:
    moved = httpx.Response(301, headers={"location": "http://10.0.0.1/v1/models"})
    error = error_of(make_client(lambda request: moved))
    assert (error.kind, error.status) == ("http_error", 301)
    assert "redirect" in str(error)


def test_client_retries_transient_errors_then_succeeds() -> None:
    answers = [httpx.Response(503, json={}), httpx.Response(429, json={})]
    answers.append(httpx.Response(200, json={"data": ["m"]}))
    sleeps: list[float] = []
    client = make_client(lambda request: answers.pop(0), retries=2, sleep=sleeps.append)
    assert client.get_json("/v1/models").data == {"data": ["m"]}
    assert len(sleeps) == 2


def test_client_retries_are_bounded() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(500, json={"error": {"message": "boom"}})

    error = error_of(make_client(handler, retries=2, sleep=lambda seconds: None))
    assert error.kind == "http_error"
    assert len(calls) == 3


def test_client_does_not_retry_permanent_errors() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(400, json={"error": {"message": "bad request"}})

    error_of(make_client(handler, retries=3, sleep=lambda seconds: None))
    assert len(calls) == 1


def test_client_honours_a_short_retry_after_and_gives_up_on_a_long_one() -> None:
    sleeps: list[float] = []
    short = [httpx.Response(429, headers={"retry-after": "0.25"}), httpx.Response(200, json={})]
    make_client(lambda request: short.pop(0), retries=1, sleep=sleeps.append).get_json("/v1/m")
    long = httpx.Response(429, headers={"retry-after": "120"})
    error = error_of(make_client(lambda request: long, retries=3, sleep=sleeps.append))
    assert sleeps == [0.25]
    assert error.retry_after == 120


def test_client_error_messages_never_contain_the_key() -> None:
    """A provider that echoes the key back must not leak it into our messages."""
    body = {"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}}
    error = error_of(make_client(lambda request: httpx.Response(401, json=body)))
    assert KEY not in str(error)
    assert KEY[3:] not in repr(error)


def test_client_logs_never_contain_the_key(caplog: pytest.LogCaptureFixture) -> None:
    answers = [httpx.Response(500, json={}), httpx.Response(200, json={"data": []})]
    client = make_client(lambda request: answers.pop(0), retries=1, sleep=lambda seconds: None)
    with caplog.at_level(logging.DEBUG):
        client.get_json("/v1/models")
    assert "relay.example.com" in caplog.text
    assert KEY not in caplog.text


def test_client_timeout_defaults_come_from_settings(settings: Settings) -> None:
    settings.RELAY_HTTP_TIMEOUT = 7.5
    settings.RELAY_HTTP_RETRIES = 4
    client = UpstreamClient("https://x.com", KEY)
    assert (client.timeout, client.retries) == (7.5, 4)


def test_client_anthropic_requests_carry_anthropic_headers() -> None:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(200, json={"type": "message"})

    make_client(handler).post_json("/v1/messages", {"model": "m"}, anthropic=True)
    assert seen[0]["x-api-key"] == KEY
    assert seen[0]["anthropic-version"] == "2023-06-01"


def sse(*frames: str) -> httpx.Response:
    body = "".join(f"data: {frame}\n\n" for frame in frames)
    return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})


def test_client_stream_reads_sse_events_until_done() -> None:
    response = sse('{"choices": [{"delta": {"content": "O"}}]}', '{"choices": []}', "[DONE]")
    result = make_client(lambda request: response).post_stream("/v1/chat/completions", {})
    assert (result.is_sse, result.done, len(result.events)) == (True, True, 2)
    assert result.events[0].data["choices"][0]["delta"]["content"] == "O"


def test_client_stream_accepts_a_json_answer_to_a_stream_request() -> None:
    plain = httpx.Response(200, json={"choices": [{"message": {"content": "OK"}}]})
    result = make_client(lambda request: plain).post_stream("/v1/chat/completions", {})
    assert (result.is_sse, result.events) == (False, ())
    assert result.data["choices"][0]["message"]["content"] == "OK"


def test_client_stream_error_frame_raises() -> None:
    frame = '{"error": {"message": "Rate limit", "type": "rate_limit_error"}}'
    with pytest.raises(ProbeError) as caught:
        make_client(lambda request: sse(frame)).post_stream("/v1/chat/completions", {})
    assert caught.value.kind == ProbeErrorKind.RATE_LIMITED


def test_client_stream_error_status_is_classified() -> None:
    answer = httpx.Response(400, json={"error": {"message": "stream unsupported"}})
    with pytest.raises(ProbeError) as caught:
        make_client(lambda request: answer).post_stream("/v1/chat/completions", {})
    assert (caught.value.kind, caught.value.status) == ("http_error", 400)


def test_client_bounds_concurrent_calls_across_threads(upstream_factory: UpstreamFactory) -> None:
    """Four threads share one client; at most ``concurrency`` calls reach the upstream."""
    upstream = upstream_factory(latency=0.05)
    client = UpstreamClient(upstream.base_url, upstream.api_key, concurrency=2, retries=0)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: client.get_json("/v1/models"), range(8)))
    assert len(upstream.requests) == 8
    assert upstream.max_in_flight == 2


def test_clients_of_one_upstream_share_one_concurrency_bound():
    from probe.client import UpstreamClient

    a = UpstreamClient("https://relay.example.com/v1", "sk-a", concurrency=2)
    b = UpstreamClient("https://relay.example.com", "sk-b", concurrency=2)
    c = UpstreamClient("https://other.example.com", "sk-c", concurrency=2)
    assert a._slots.key == b._slots.key == "upstream:https://relay.example.com"
    assert c._slots.key != a._slots.key


def test_every_client_shares_one_tls_context():
    """A context per client parsed the CA bundle per stage: half of an item's CPU."""
    from hosts.sub2api.client import HostHTTP
    from probe.client import UpstreamClient
    from relay_project.tls import client_tls_context

    pools = [
        UpstreamClient("https://relay.example.com", "sk-a")._http._transport.pool,
        UpstreamClient("https://other.example.com", "sk-b")._http._transport.pool,
        HostHTTP("https://host.example.com", admin_api_key="admin-key")._client._transport,
    ]
    contexts = {id(pool.ssl_context) for pool in pools}
    assert contexts == {id(client_tls_context())}
    assert client_tls_context().verify_mode == ssl.CERT_REQUIRED


def test_clients_of_one_upstream_share_its_kept_alive_connections(
    upstream_factory: UpstreamFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two keys of one relay, one after another: the second finds the connection the first
    opened, and each request still carries its own key."""
    upstream = upstream_factory(api_key="sk-first")
    with UpstreamClient(upstream.base_url, "sk-first", retries=0) as client:
        client.get_json("/v1/models")
        pool = client._http._transport.pool
    opened = pool.connections_opened
    second = UpstreamClient(upstream.base_url, "sk-second", retries=0)
    with second, pytest.raises(ProbeError) as refused:
        second.get_json("/v1/models")
    assert refused.value.kind == ProbeErrorKind.AUTH_FAILED
    assert second._http._transport.pool is pool
    assert pool.connections_opened == opened
    assert [request.authorized for request in upstream.requests] == [True, False]


def test_a_cookie_one_item_was_given_is_not_sent_for_the_next_over_the_shared_pool() -> None:
    """The pool is shared, cookies are not: each item's client keeps what its answers set."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[tuple[str | None, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            seen.append((self.headers.get("Authorization"), self.headers.get("Cookie")))
            body = b'{"data": []}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Set-Cookie", "session=first-item; Path=/")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        with UpstreamClient(base, "sk-first", retries=0) as first:
            first.get_json("/v1/models")
            first.get_json("/v1/models")
        with UpstreamClient(base, "sk-second", retries=0) as second:
            second.get_json("/v1/models")
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [
        ("Bearer sk-first", None),
        ("Bearer sk-first", "session=first-item"),
        ("Bearer sk-second", None),
    ]


def test_clients_of_one_upstream_call_its_endpoints_without_parsing_their_urls_again(
    url_parses: list[str],
) -> None:
    """Building a URL parses and checks all of it: the next item's client of the same relay
    sends to the URLs the previous one built."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url}")
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": []})
        return httpx.Response(200, json={"choices": [{"message": {"content": "pong"}}]})

    for _ in range(2):
        client = make_client(handler)
        url_parses.clear()
        client.get_json("/v1/models")
        client.post_json("/v1/chat/completions", {"model": "m"})
    assert url_parses == []
    assert (
        seen
        == [
            "GET https://relay.example.com/v1/models",
            "POST https://relay.example.com/v1/chat/completions",
        ]
        * 2
    )


def test_client_reads_cookies_only_from_an_answer_that_sets_some(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """httpx builds a urllib request and response per answer to look for Set-Cookie; an answer
    without one is not looked at, and a cookie one sets still goes back with the next call.
    Without a cookie to send the client's own layers do nothing for a call: it goes straight
    to the transport (``send_plainly``); with one, through the client, which sends it."""
    from http.cookiejar import CookieJar

    looks: list[str] = []
    extract = CookieJar.extract_cookies

    def counting(self: CookieJar, response: object, request: object) -> None:
        looks.append("look")
        extract(self, response, request)

    monkeypatch.setattr(CookieJar, "extract_cookies", counting)
    through_client: list[str | None] = []
    client_send = httpx.Client.send

    def sending(self: httpx.Client, request: httpx.Request, **kwargs: object) -> httpx.Response:
        through_client.append(request.headers.get("cookie"))
        return client_send(self, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", sending)
    sent: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("cookie"))
        headers = {"set-cookie": "sid=one; Path=/"} if len(sent) == 2 else {}
        return httpx.Response(200, json={"data": []}, headers=headers)

    client = make_client(handler)
    for _ in range(3):
        client.get_json("/v1/models")
    assert sent == [None, None, "sid=one"]
    assert looks == ["look"]
    assert through_client == ["sid=one"]
