"""Secrets at rest: a masked value type, a Fernet-encrypted model field and keyed digests.

A ``Secret`` never shows its value in ``str``/``repr``/f-strings, so it cannot leak into a log
line, an exception message or an admin page by accident; code that really needs the value
calls ``reveal()`` at the last moment (the HTTP adapters).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

MASK = "********"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        self._value = str(value)

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return hmac.compare_digest(self._value, other._value)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._value)

    def __str__(self) -> str:
        return MASK if self._value else ""

    def __repr__(self) -> str:
        return f"Secret({MASK!r})" if self._value else "Secret('')"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def reveal(value: Secret | str | None) -> str:
    if value is None:
        return ""
    return value.reveal() if isinstance(value, Secret) else str(value)


@lru_cache(maxsize=4)
def _fernet(key: str) -> Fernet:
    if not key:
        # Dev/test only (settings refuse an empty key when DEBUG is off): derive a stable key.
        digest = hashlib.sha256(f"relay-dev-key:{settings.SECRET_KEY}".encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode()
    try:
        return Fernet(key.encode())
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            "RELAY_ENCRYPTION_KEY: not a valid Fernet key (32 url-safe base64-encoded bytes)"
        ) from None


def fernet() -> Fernet:
    return _fernet(settings.RELAY_ENCRYPTION_KEY)


def encrypt(plain: str) -> str:
    return fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "RELAY_ENCRYPTION_KEY: cannot decrypt a stored secret (was the key changed?)"
        ) from None


def display_fingerprint(secret: Secret | str) -> str:
    """``sha256:<first 8 hex>``: safe to show, too short to match on."""
    return "sha256:" + hashlib.sha256(reveal(secret).encode()).hexdigest()[:8]


def matching_digest(secret: Secret | str) -> str:
    """Full HMAC-SHA256 with a server pepper, stored for matching the same key across runs."""
    pepper = hashlib.sha256(
        f"relay-fingerprint:{settings.RELAY_ENCRYPTION_KEY or settings.SECRET_KEY}".encode()
    ).digest()
    return hmac.new(pepper, reveal(secret).encode(), hashlib.sha256).hexdigest()


class EncryptedTextField(models.TextField):
    """Stores a ``Secret`` Fernet-encrypted; the database never holds the plain value."""

    description = "Fernet-encrypted secret"

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return Secret("") if value == "" else None
        return Secret(decrypt(value))

    def to_python(self, value):
        if value is None or isinstance(value, Secret):
            return value
        return Secret(value)

    def get_prep_value(self, value):
        if value is None:
            return None
        plain = reveal(value)
        return encrypt(plain) if plain else ""

    def value_to_string(self, obj) -> str:  # serialisation (dumpdata) never shows the value
        return MASK
