"""The rules every input path applies to pasted URLs and keys (API, form, CLI, host registration).

Each function returns the problem in words (``None`` when the value is fine), so each caller
reports it under its own field name or line number. They never echo a key back.
"""

from __future__ import annotations

import re
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
    if len(ascii_name) > MAX_HOSTNAME_LENGTH or not all(
        _HOST_LABEL.fullmatch(label) for label in ascii_name.rstrip(".").split(".")
    ):
        return _("has a host name that is not valid")
    return None


# A host name label in its ASCII form: letters, digits and inner hyphens, 1..63 (RFC 1123).
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def text_problem(value: str, *, max_length: int) -> str | None:
    """Free text stored as is (a model name): bounded, no control characters."""
    if len(value) > max_length:
        return _("is longer than %(n)d characters") % {"n": max_length}
    if any(unicodedata.category(char) == "Cc" for char in value):
        return _("contains a control character")
    return None


# --- the same rules as JSON Schema patterns, for the OpenAPI document -------------------------
# The API publishes these on its input fields so that a schema-valid request is one the server
# accepts (tests/relay_project/test_input_patterns.py holds each pattern to its function).
# Where the server is more lenient than a regular expression can say (internationalized or IPv6
# host names, http for loopback or allowed upstreams), a pattern describes the common subset.

# What ``str.strip()`` removes (``str.isspace()``), spelled out: regex engines disagree on \s.
SPACE = "\\t-\\r\\x1c- \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
# Control characters (Unicode category Cc).
CONTROL = "\\x00-\\x1f\\x7f-\\x9f"


def stripped_pattern(first_last: str, inner: str, max_length: int) -> str:
    """A value that, once stripped, is 1..max_length characters: ``first_last`` at both ends,
    ``inner`` in between; surrounding white space is allowed (the server strips it)."""
    return f"^[{SPACE}]*{first_last}(?:{inner}{{0,{max_length - 2}}}{first_last})?[{SPACE}]*$"


# A key: printable ASCII without white space (``key_problem``).
KEY_PATTERN = f"^[{SPACE}]*[!-~]{{1,{MAX_KEY_LENGTH}}}[{SPACE}]*$"
# A sub2api admin API key (``hosts.services.validate_registration``).
ADMIN_KEY_PATTERN = f"^[{SPACE}]*admin-[!-~]{{0,{MAX_KEY_LENGTH - len('admin-')}}}[{SPACE}]*$"
# Free text (``text_problem``): no control characters, not blank.
_TEXT_END = f"[^{SPACE}{CONTROL}]"
_TEXT_INNER = f"[^{CONTROL}]"


def text_pattern(max_length: int) -> str:
    return stripped_pattern(_TEXT_END, _TEXT_INNER, max_length)


# Any non-blank text without NUL (what a strict DRF CharField takes), for fields whose content
# the server does not judge further.
_ANY_END = f"[^{SPACE}\\x00]"


def any_text_pattern(max_length: int) -> str:
    return stripped_pattern(_ANY_END, "[^\\x00]", max_length)


# An https base URL (``url_problem``): an ASCII host name of at most three labels, a port in
# 1..65535, a path; no credentials, query or fragment.
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT = "(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
URL_PATTERN = (
    f"^https://{_LABEL}(?:\\.{_LABEL}){{0,2}}(?::{_PORT})?(?:/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?$"
)
# An email address Django's ``validate_email`` accepts (dot-atom local part, a TLD of letters).
_ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
EMAIL_PATTERN = f"^{_ATOM}(?:\\.{_ATOM})*@(?:{_LABEL}\\.){{1,3}}[A-Za-z]{{2,63}}$"
