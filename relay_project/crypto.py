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

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from relay_project.logging import remember_secret

MASK = "********"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        self._value = str(value)
        remember_secret(self._value)

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self.reveal())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return hmac.compare_digest(self.reveal(), other.reveal())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.reveal())

    def __str__(self) -> str:
        return MASK if self else ""

    def __repr__(self) -> str:
        return f"Secret({MASK!r})" if self else "Secret('')"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class StoredSecret(Secret):
    """A non-empty secret as read from the database, decrypted when first revealed: most reads
    of a row never use its secrets (a worker reads an item and its run before every stage), and
    decrypting them all was ≈6 % of such a read's CPU. Masked like any ``Secret``; registered
    for log redaction once revealed, the first moment its value can reach a log line."""

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:  # not Secret.__init__: nothing to reveal yet
        self._token = token

    def reveal(self) -> str:
        try:
            return self._value
        except AttributeError:  # first reveal; two threads at once both get the same value
            value = decrypt(self._token)
            remember_secret(value)
            self._value = value
            return value

    def __bool__(self) -> bool:
        return True  # an empty secret is stored empty and read back as Secret("")


def reveal(value: Secret | str | None) -> str:
    if value is None:
        return ""
    return value.reveal() if isinstance(value, Secret) else str(value)


def _dev_key() -> str:
    # Dev/test only (settings refuse an empty key when DEBUG is off): derive a stable key.
    digest = hashlib.sha256(f"relay-dev-key:{settings.SECRET_KEY}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def encryption_keys(setting: str) -> list[str]:
    """The configured Fernet keys, primary first (``RELAY_ENCRYPTION_KEY=new,old``)."""
    return [part.strip() for part in setting.split(",") if part.strip()] or [_dev_key()]


@lru_cache(maxsize=4)
def _fernet(setting: str) -> MultiFernet:
    fernets = []
    for position, key in enumerate(encryption_keys(setting), start=1):
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"RELAY_ENCRYPTION_KEY: key {position} is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes)"
            ) from None
    return MultiFernet(fernets)


def fernet() -> MultiFernet:
    """Encrypts with the first key, decrypts with any (key rotation, docs/deployment.md)."""
    return _fernet(settings.RELAY_ENCRYPTION_KEY)


def encrypt(plain: str) -> str:
    return fernet().encrypt(plain.encode()).decode()


# A worker reads the same rows again at every stage (the host's credential, the item's key,
# the managed user's key), and each read decrypted the same token anew: ≈ 3 % of its CPU. A
# token's plaintext never changes, so the process keeps the latest ones (under the keys that
# decrypted them); the values are in its memory anyway (each revealed ``Secret`` keeps its
# own, and the log redaction's registry all of them).
DECRYPTED_KEPT = 4096


def decrypt(token: str) -> str:
    return _decrypted(settings.RELAY_ENCRYPTION_KEY, token)


@lru_cache(maxsize=DECRYPTED_KEPT)
def _decrypted(setting: str, token: str) -> str:
    try:
        return _fernet(setting).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "RELAY_ENCRYPTION_KEY: cannot decrypt a stored secret (was the key changed?)"
        ) from None


def display_fingerprint(secret: Secret | str) -> str:
    """``sha256:<first 8 hex>``: safe to show, too short to match on."""
    return "sha256:" + hashlib.sha256(reveal(secret).encode()).hexdigest()[:8]


def fingerprint_key() -> str:
    """The pepper's source. It must outlive encryption-key rotation, or stored fingerprints stop
    matching: ``RELAY_FINGERPRINT_KEY`` when set, else the (single) encryption key."""
    return (
        settings.RELAY_FINGERPRINT_KEY
        or settings.RELAY_ENCRYPTION_KEY.split(",")[0].strip()
        or settings.SECRET_KEY
    )


def matching_digest(secret: Secret | str) -> str:
    """Full HMAC-SHA256 with a server pepper, stored for matching the same key across runs."""
    pepper = hashlib.sha256(f"relay-fingerprint:{fingerprint_key()}".encode()).digest()
    return hmac.new(pepper, reveal(secret).encode(), hashlib.sha256).hexdigest()


class EncryptedTextField(models.TextField):
    """Stores a ``Secret`` Fernet-encrypted; the database never holds the plain value."""

    description = "Fernet-encrypted secret"

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return Secret("") if value == "" else None
        return StoredSecret(value)

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
