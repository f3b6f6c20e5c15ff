"""SSRF guard for pasted upstream base_urls.

By default an upstream must be ``https`` and every address its host resolves to must be a
public (globally routable) one: loopback, private, link-local (cloud metadata), shared
carrier-grade NAT, multicast, reserved and unspecified addresses are refused. With
``RELAY_ALLOW_INSECURE_UPSTREAMS`` (demo, tests) plain http and private hosts are allowed.
URLs carrying credentials or schemes other than http/https are refused in every mode.

Name resolution goes through ``resolve_host`` (or the ``resolver`` argument), so tests replace
it instead of doing real DNS. The check runs before the probe connects; it does not pin the
address, so a hostile DNS server could still answer differently a moment later — the guard
stops mistakes and casual abuse, not a determined rebinding attack.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings

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


def _problem(address: IPAddress) -> str | None:
    """A word naming why ``address`` is refused, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
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
