"""SSRF guard for pasted upstream base_urls.

By default an upstream must be ``https`` and every address its host resolves to must be a
public (globally routable) one: loopback, private, link-local (cloud metadata), shared
carrier-grade NAT, multicast, reserved and unspecified addresses are refused. With
``RELAY_ALLOW_INSECURE_UPSTREAMS`` (demo, tests) plain http and private hosts are allowed.
URLs carrying credentials or schemes other than http/https are refused in every mode.

Name resolution goes through ``resolve_host`` (or the ``resolver`` argument), so tests replace
it instead of doing real DNS. ``check_upstream_url`` refuses a bad URL before anything starts;
``guarded_transport`` checks again at connect time, every address the name resolves to at that
moment, and connects to the address it checked: a DNS server that answers differently a moment
later (rebinding) gains nothing. IPv4 addresses wrapped in IPv6 (IPv4-mapped, 6to4, NAT64,
Teredo) are judged by the IPv4 address inside.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings

from relay_project.pooled_http import Connector, PooledTransport

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUpstream(ValueError):
    """The base_url may not be probed; ``reason`` is a stable code, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the default resolver; tests monkeypatch it)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_upstream_url(
    base_url: str, *, allow_insecure: bool | None = None, resolver: Resolver | None = None
) -> None:
    """Raise ``UnsafeUpstream`` when ``base_url`` must not be probed; return None otherwise."""
    parts = urlsplit(str(base_url).strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeUpstream(
            "scheme", f"base_url must start with https:// (got scheme {scheme or 'none'!r})"
        )
    if parts.username is not None or parts.password is not None:
        raise UnsafeUpstream(
            "credentials", "base_url must not carry credentials; pass the key separately"
        )
    host = parts.hostname
    if not host:
        raise UnsafeUpstream("no_host", "base_url has no host")
    if settings.RELAY_ALLOW_INSECURE_UPSTREAMS if allow_insecure is None else allow_insecure:
        return
    if scheme != "https":
        raise UnsafeUpstream(
            "insecure_scheme",
            f"base_url must use https:// (got http:// for {host}); "
            "set RELAY_ALLOW_INSECURE_UPSTREAMS=1 only for local simulators",
        )
    try:
        port = parts.port or 443
    except ValueError:
        raise UnsafeUpstream("bad_port", f"base_url has an invalid port for {host}") from None
    for address in _addresses(host, port, resolver or resolve_host):
        problem = _problem(address)
        if problem:
            raise UnsafeUpstream(
                "private_address",
                f"base_url host {host} resolves to {problem} address {address}; "
                "only public upstreams may be probed",
            )


def _addresses(host: str, port: int, resolver: Resolver) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        resolved = resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise UnsafeUpstream(
            "unresolvable", f"base_url host {host} does not resolve ({exc.__class__.__name__})"
        ) from None
    addresses = []
    for text in resolved:
        try:
            # Scoped IPv6 literals ("fe80::1%eth0") carry a zone the parser refuses.
            addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
        except ValueError:
            raise UnsafeUpstream(
                "unresolvable", f"base_url host {host} resolved to an invalid address"
            ) from None
    if not addresses:
        raise UnsafeUpstream("unresolvable", f"base_url host {host} does not resolve")
    return addresses


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, 6to4, NAT64, Teredo)."""
    if address.ipv4_mapped:
        return [address.ipv4_mapped]
    if address.sixtofour:
        return [address.sixtofour]
    if address in NAT64:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address.teredo:
        return list(address.teredo)
    return []


def _problem(address: IPAddress) -> str | None:
    """A word naming why ``address`` is refused, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        for inner in _embedded_ipv4(address):
            if problem := _problem(inner):
                return problem
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("non-public", not address.is_global),
    )
    return next((word for word, hit in checks if hit), None)


def guarded_connector(resolver: Resolver | None = None) -> Connector:
    """``socket.create_connection`` that resolves the host itself at connect time, refuses it
    when any address is not public, and connects to the address it checked (TLS still
    verifies the host name: the transport wraps the socket with the name it was given)."""

    def create_connection(address, timeout=None, source_address=None) -> socket.socket:
        host, port = address
        addresses = _addresses(host, port, resolver or resolve_host)
        for checked in addresses:
            problem = _problem(checked)
            if problem:
                raise UnsafeUpstream(
                    "private_address",
                    f"upstream host {host} resolves to {problem} address {checked} at connect "
                    "time; only public upstreams may be probed",
                )
        return socket.create_connection((str(addresses[0]), port), timeout, source_address)

    return create_connection


def guarded_transport(
    *, ssl_context: ssl.SSLContext, max_keepalive: int, resolver: Resolver | None = None
) -> PooledTransport:
    """The upstream transport for production: the connect-time check above on every
    connection (the demo and tests, with RELAY_ALLOW_INSECURE_UPSTREAMS, use a plain one)."""
    return PooledTransport(
        ssl_context=ssl_context, max_keepalive=max_keepalive, connector=guarded_connector(resolver)
    )
