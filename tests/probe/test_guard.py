from __future__ import annotations

import socket
import ssl

import httpx
import pytest
from pytest_django import Settings

from probe import guard
from probe.guard import UnsafeUpstream, check_upstream_url

DOCUMENTATION_NET = "203.0.113.7"  # TEST-NET-3: Python counts it as private, so do we
GLOBAL_V4 = "8.8.8.8"
GLOBAL_V6 = "2606:4700:4700::1111"


def resolver_for(*addresses: str) -> guard.Resolver:
    def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


def refusal(base_url: str, *addresses: str, allow_insecure: bool = False) -> UnsafeUpstream:
    with pytest.raises(UnsafeUpstream) as caught:
        check_upstream_url(
            base_url, allow_insecure=allow_insecure, resolver=resolver_for(*addresses)
        )
    return caught.value


def test_check_upstream_url_accepts_https_public_hosts() -> None:
    resolver = resolver_for(GLOBAL_V4, GLOBAL_V6)
    url = "https://api.deepseek.com/v1"
    assert check_upstream_url(url, allow_insecure=False, resolver=resolver) is None
    assert check_upstream_url("https://8.8.8.8:8443/v1", allow_insecure=False) is None


def test_check_upstream_url_refuses_plain_http() -> None:
    error = refusal("http://api.deepseek.com/v1", GLOBAL_V4)
    assert error.reason == "insecure_scheme"
    assert "https" in str(error) and "api.deepseek.com" in str(error)


@pytest.mark.parametrize(
    ("address", "word"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.10", "private"),
        ("fd00::5", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:1::1", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 wrapping the cloud metadata address
        ("64:ff9b::a00:1", "private"),  # NAT64 wrapping 10.0.0.1
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 wrapping 127.0.0.1
        ("100.64.0.1", "non-public"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        (DOCUMENTATION_NET, "private"),
    ],
)
def test_check_upstream_url_refuses_non_public_addresses(address: str, word: str) -> None:
    error = refusal("https://relay.example.com/v1", address)
    assert error.reason == "private_address"
    assert f"{word} address" in str(error)
    assert "relay.example.com" in str(error)


def test_check_upstream_url_refuses_ip_literals_in_the_url() -> None:
    assert refusal("https://127.0.0.1:8443/v1").reason == "private_address"
    assert refusal("https://[::1]/v1").reason == "private_address"


def test_check_upstream_url_refuses_when_any_address_is_private() -> None:
    """One private answer among public ones is enough to refuse (round-robin DNS)."""
    assert refusal("https://relay.example.com", GLOBAL_V4, "10.0.0.8").reason == "private_address"


def test_check_upstream_url_unresolvable_host() -> None:
    def failing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(UnsafeUpstream) as caught:
        check_upstream_url("https://no-such-host.example", allow_insecure=False, resolver=failing)
    assert caught.value.reason == "unresolvable"
    assert refusal("https://empty.example").reason == "unresolvable"


@pytest.mark.parametrize(
    ("base_url", "reason"),
    [
        ("ftp://relay.example.com/v1", "scheme"),
        ("relay.example.com/v1", "scheme"),
        ("https://user:sk-secret@relay.example.com/v1", "credentials"),
        ("https:///v1", "no_host"),
    ],
)
def test_check_upstream_url_refuses_malformed_urls_even_when_insecure(
    base_url: str, reason: str
) -> None:
    error = refusal(base_url, GLOBAL_V4, allow_insecure=True)
    assert error.reason == reason
    assert "sk-secret" not in str(error)


def test_check_upstream_url_insecure_mode_allows_http_and_loopback() -> None:
    def must_not_resolve(host: str, port: int) -> list[str]:
        raise AssertionError("insecure mode needs no DNS")

    assert (
        check_upstream_url(
            "http://127.0.0.1:9000/v1", allow_insecure=True, resolver=must_not_resolve
        )
        is None
    )


def test_check_upstream_url_follows_the_setting(settings: Settings) -> None:
    settings.RELAY_ALLOW_INSECURE_UPSTREAMS = False
    with pytest.raises(UnsafeUpstream):
        check_upstream_url("http://localhost:9000")
    settings.RELAY_ALLOW_INSECURE_UPSTREAMS = True
    assert check_upstream_url("http://localhost:9000") is None


def test_check_upstream_url_uses_the_patchable_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int]] = []

    def fake(host: str, port: int) -> list[str]:
        seen.append((host, port))
        return ["192.168.0.2"]

    monkeypatch.setattr(guard, "resolve_host", fake)
    with pytest.raises(UnsafeUpstream, match=r"private address 192\.168\.0\.2"):
        check_upstream_url("https://relay.example.com:8443/v1", allow_insecure=False)
    assert seen == [("relay.example.com", 8443)]


def test_resolve_host_resolves_localhost_without_the_network() -> None:
    assert {"127.0.0.1", "::1"} & set(guard.resolve_host("localhost", 443))


def test_the_connect_time_check_refuses_a_name_that_rebinds_inside() -> None:
    """The URL check saw a public address; at connect time the name points at loopback. The
    guarded transport resolves again, refuses, and never opens the socket."""
    answers = iter([[GLOBAL_V4], ["127.0.0.1"]])
    connected: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    check_upstream_url("https://rebind.example/v1", allow_insecure=False, resolver=rebinding)
    transport = guard.guarded_transport(
        ssl_context=ssl.create_default_context(), max_keepalive=1, resolver=rebinding
    )
    original = guard.socket.create_connection
    try:
        guard.socket.create_connection = lambda address, *a: connected.append(address)
        with httpx.Client(transport=transport) as client, pytest.raises(UnsafeUpstream) as refused:
            client.get("https://rebind.example/v1/models")
    finally:
        guard.socket.create_connection = original
    assert "loopback address 127.0.0.1 at connect time" in str(refused.value)
    assert connected == []


def test_the_connect_time_check_connects_to_the_address_it_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connected: list[tuple[str, int]] = []
    monkeypatch.setattr(
        guard.socket, "create_connection", lambda address, *a: connected.append(address)
    )
    guard.guarded_connector(resolver_for(GLOBAL_V4))(("relay.example.com", 443), 5)
    assert connected == [(GLOBAL_V4, 443)]


def test_production_upstream_clients_use_the_guarded_transport(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's pool opens its connections through the guard (which refuses loopback)."""
    from probe.client import ProbeError, UpstreamClient

    monkeypatch.setattr(guard, "resolve_host", resolver_for("127.0.0.1"))
    settings.RELAY_ALLOW_INSECURE_UPSTREAMS = False
    with (
        UpstreamClient("https://relay.example.com/v1", "sk-a", retries=0) as client,
        pytest.raises((UnsafeUpstream, ProbeError), match=r"loopback address 127\.0\.0\.1"),
    ):
        client.get_json("/v1/models")


def test_a_shared_upstream_pool_still_checks_each_connection_of_a_rebinding_name(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients of one origin share its pool (``probe.client.shared_upstream_pool``): the pool
    an unguarded client left behind (demo, tests) is not the one a guarded client gets, and
    the guarded pool resolves again at connect time, where the name now points at loopback."""
    from probe.client import ProbeError, UpstreamClient

    connected: list[str] = []
    monkeypatch.setattr(
        guard.socket, "create_connection", lambda address, *a: connected.append(address[0])
    )
    monkeypatch.setattr(guard, "resolve_host", resolver_for("127.0.0.1"))
    settings.RELAY_ALLOW_INSECURE_UPSTREAMS = True
    UpstreamClient("https://rebind.example/v1", "sk-a", retries=0).close()
    settings.RELAY_ALLOW_INSECURE_UPSTREAMS = False
    with (
        UpstreamClient("https://rebind.example/v1", "sk-b", retries=0) as client,
        pytest.raises((UnsafeUpstream, ProbeError)) as refused,
    ):
        client.get_json("/v1/models")
    assert "loopback address 127.0.0.1 at connect time" in str(refused.value)
    assert connected == []
