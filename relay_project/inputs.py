"""The rules every input path applies to pasted URLs and keys (API, form, CLI, host registration).

Each function returns the problem in words (``None`` when the value is fine), so each caller
reports it under its own field name or line number. They never echo a key back.
"""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.utils.translation import gettext as _

MAX_URL_LENGTH = 500  # the base_url columns
MAX_KEY_LENGTH = 512
MAX_HOSTNAME_LENGTH = 253


def _describe(char: str) -> str:
    if char.isspace():
        return _("white space")
    if unicodedata.category(char) in ("Cc", "Cf"):
        return _("an invisible control character (U+%(code)04X)") % {"code": ord(char)}
    return _("a non-ASCII character (U+%(code)04X)") % {"code": ord(char)}


def key_problem(value: Any, *, max_length: int = MAX_KEY_LENGTH) -> str | None:
    """An API key travels in an HTTP header: printable ASCII, no white space inside."""
    if not isinstance(value, str) or not value.strip():
        return _("is required")
    text = value.strip()
    if len(text) > max_length:
        return _("is longer than %(n)d characters") % {"n": max_length}
    for position, char in enumerate(text, start=1):
        if not ("!" <= char <= "~"):
            return _(
                "contains %(what)s at position %(position)d: keys are printable ASCII "
                "(often a copy-paste artefact; paste the key again)"
            ) % {"what": _describe(char), "position": position}
    return None


def url_problem(value: Any, *, max_length: int = MAX_URL_LENGTH) -> str | None:
    """An http(s) base URL: parseable, a valid host and port, no credentials, query or fragment."""
    if not isinstance(value, str) or not value.strip():
        return _("is required")
    text = value.strip()
    if len(text) > max_length:
        return _("is longer than %(n)d characters") % {"n": max_length}
    for char in text:
        if char.isspace() or unicodedata.category(char) in ("Cc", "Cf"):
            return _("contains %(what)s") % {"what": _describe(char)}
    try:
        parts = urlsplit(text)
    except ValueError:
        return _("is not a valid URL")
    try:
        port = parts.port
    except ValueError:
        return _("port must be a number between 1 and 65535")
    if parts.scheme not in ("http", "https"):
        return _("must start with http:// or https://")
    if not parts.hostname:
        return _("has no host name")
    if port == 0:
        return _("port must be a number between 1 and 65535")
    if parts.username is not None or parts.password is not None:
        return _("must not contain user:password@ (a key belongs in its own field)")
    if parts.query or parts.fragment:
        return _("must not have a query string or fragment")
    return _hostname_problem(parts)


def _hostname_problem(parts: SplitResult) -> str | None:
    hostname = parts.hostname or ""
    if hostname.startswith("[") or ":" in hostname:  # an IPv6 literal, checked by urlsplit
        return None
    try:
        ascii_name = hostname.encode("idna").decode("ascii")
    except UnicodeError:
        return _("has a host name that is not valid")
    if len(ascii_name) > MAX_HOSTNAME_LENGTH or any(
        not label or len(label) > 63 for label in ascii_name.rstrip(".").split(".")
    ):
        return _("has a host name that is not valid")
    return None


def text_problem(value: str, *, max_length: int) -> str | None:
    """Free text stored as is (a model name): bounded, no control characters."""
    if len(value) > max_length:
        return _("is longer than %(n)d characters") % {"n": max_length}
    if any(unicodedata.category(char) == "Cc" for char in value):
        return _("contains a control character")
    return None
