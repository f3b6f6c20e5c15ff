"""The one reading of a pasted base URL, for each purpose it serves.

* ``upstream_root``: an upstream provider's root, canonical. It is the provider's identity (the
  ``provider_id`` hash covers it), the base the probe calls and the ``base_url`` given to the
  host's account: scheme and host lower-case, the host in its ASCII (IDNA) form, the default
  port, user info, query, fragment, trailing slashes and a final ``/v1`` dropped, because every
  caller appends ``/v1/...`` itself (the [OLD] host literally). A final version segment other
  than ``/v1`` (Zhipu's ``/api/paas/v4``) is part of the root.
* ``upstream_endpoint``: where an OpenAI-style path (``/v1/models``) lives under such a root. A
  root that ends in a version segment is the API base itself, as for the OpenAI SDK and current
  sub2api builds: ``/api/paas/v4`` + ``/v1/models`` → ``/api/paas/v4/models``.
* ``host_root``: a sub2api host's own address (its admin API lives under ``/api/v1/admin``), as
  the operator typed it without surrounding blanks and trailing slashes.

The URL is never echoed in an error: a pasted URL may carry a key in its query string.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
OPENAI_PREFIX = "/v1"
# v1, v4, v1.1, v1beta, v2alpha1: the last path segment of an API base.
VERSION_SEGMENT = re.compile(r"v\d+(?:\.\d+)?(?:alpha|beta|preview)?\d*", re.IGNORECASE)


def _ascii_host(hostname: str) -> str:
    if ":" in hostname:  # an IPv6 literal
        return f"[{hostname}]"
    try:
        return hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:  # refused earlier by relay_project.inputs.url_problem
        return hostname


def upstream_root(base_url: str) -> str:
    """``scheme://host[:port]/path`` of an upstream provider (module docstring).

    Raises ``ValueError`` (without the URL) when it is not an http(s) URL with a host.
    """
    parts = urlsplit(str(base_url).strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError("base_url: expected an http:// or https:// URL with a host")
    netloc = _ascii_host(parts.hostname)
    if parts.port is not None and parts.port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{parts.port}"
    path = parts.path.rstrip("/")
    if path.lower().endswith(OPENAI_PREFIX):
        path = path[: -len(OPENAI_PREFIX)].rstrip("/")
    return f"{scheme}://{netloc}{path}"


def has_version_segment(root: str) -> bool:
    """Whether the root's last path segment is an API version (``/v4``, ``/v1beta``)."""
    path = urlsplit(root).path.rstrip("/")
    return bool(path) and VERSION_SEGMENT.fullmatch(path.rsplit("/", 1)[-1]) is not None


def upstream_endpoint(root: str, path: str) -> str:
    """The URL of ``path`` (``/v1/...``) under an ``upstream_root``."""
    path = "/" + path.lstrip("/")
    if has_version_segment(root) and path.startswith(OPENAI_PREFIX + "/"):
        path = path[len(OPENAI_PREFIX) :]
    return f"{root.rstrip('/')}{path}"


def host_root(base_url: str) -> str:
    """A sub2api host's address without surrounding blanks or trailing slashes."""
    return (base_url or "").strip().rstrip("/")
