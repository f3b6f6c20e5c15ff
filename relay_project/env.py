"""Typed readers for environment variables.

Every reader names the variable in its error, so a bad deployment value stops start-up with one
line that says what to fix (manage.py and the WSGI entry print ``ConfigError`` without a trace).

Every variable can also come from a file: ``NAME_FILE=/run/secrets/name`` is read when ``NAME``
itself is unset (the Docker/Kubernetes secrets convention); the file's content, without its
trailing newline, is the value. Setting both is an error, so a stale value never wins silently.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import dj_database_url

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


class ConfigError(Exception):
    """A configuration value from the environment is missing or malformed.

    Deliberately not ``ImproperlyConfigured``: Django's command runner swallows that one while
    it looks for a command name, which would hide the message behind a later traceback.
    """


def env_raw(name: str) -> str | None:
    """The variable's value, from ``NAME`` or from the file ``NAME_FILE`` names; None if unset."""
    direct = os.environ.get(name)
    path = os.environ.get(f"{name}_FILE")
    if path is None:
        return direct
    if direct is not None:
        raise ConfigError(f"{name}: set either {name} or {name}_FILE, not both")
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{name}_FILE: cannot read {path!r} ({reason})") from None


def env_str(name: str, default: str = "") -> str:
    raw = env_raw(name)
    return default if raw is None else raw


def env_bool(name: str, default: bool = False) -> bool:
    raw = env_raw(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name}: expected a boolean (1/0, true/false, yes/no, on/off), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = env_raw(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = env_raw(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = env_raw(name)
    if raw is None:
        return list(default)
    return [part.strip() for part in raw.split(",") if part.strip()]


SUPPORTED_DB_SCHEMES = {"sqlite", "postgres", "postgresql", "pgsql"}


def env_database(name: str, default_url: str, *, conn_max_age: int = 0) -> dict:
    """Parse a database URL into Django's DATABASES entry, rejecting what Django cannot use.
    Its connections live ``conn_max_age`` seconds (0: one request), each checked before its
    first use in a request."""
    raw = env_raw(name) or default_url
    scheme = urlsplit(raw).scheme.split("+")[0].lower()
    if not scheme or scheme not in SUPPORTED_DB_SCHEMES:
        raise ConfigError(
            f"{name}: expected sqlite:///path or postgres://user@host:port/db, "
            f"got {_mask_url(raw)!r}"
        )
    try:
        config = dj_database_url.parse(raw, conn_max_age=conn_max_age, conn_health_checks=True)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{name}: cannot parse database URL ({exc})") from None
    if scheme != "sqlite" and not config.get("NAME"):
        raise ConfigError(f"{name}: the URL names no database ({_mask_url(raw)!r})")
    return config


def _mask_url(url: str) -> str:
    """Hide a password in a URL before it goes into an error message."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
