"""Run-request validation and the entry-line parser, shared by the API, the form and the CLI.

Errors name the field the way a caller wrote it ("entries[3].base_url: …"), and validation
writes nothing: a request is either wholly valid or refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from batch_import.errors import InvalidRequest, UnknownHost
from batch_import.models import ImportRun
from hosts.models import Host
from relay_project.crypto import Secret
from relay_project.inputs import key_problem, text_problem, url_problem

MAX_ENTRIES = 10_000
MAX_REQUESTED_MODELS = 20
MAX_MODEL_NAME_LENGTH = 200
MAX_CONFIRM_WAIT_SEC = 600
MAX_SUBSCRIPTION_DAYS = 36500


@dataclass(frozen=True)
class EntryInput:
    base_url: str
    api_key: Secret
    requested_models: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunRequest:
    host_id: int
    mode: str
    access_mode: str
    entries: tuple[EntryInput, ...]
    subscription_users: tuple[str, ...] = ()
    subscription_days: int | None = None
    probe_api_key: Secret | None = None
    confirm_wait_timeout_sec: int = 0
    dry_run: bool = False


@dataclass
class ParsedLines:
    """Entries parsed from pasted text or a batch file, with what was skipped and why."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    duplicate_lines: list[int] = field(default_factory=list)
    skipped_lines: int = 0


def parse_entry_line(line: str) -> dict[str, Any]:
    """``url,key[,model|model]`` → an entry dict (not validated yet)."""
    parts = [part.strip() for part in line.split(",")]
    if len(parts) < 2 or len(parts) > 3:
        raise ValueError(_("expected url,key[,model|model]"))
    models = [m.strip() for m in parts[2].split("|") if m.strip()] if len(parts) == 3 else []
    return {"base_url": parts[0], "api_key": parts[1], "requested_models": models}


def parse_entry_lines(text: str) -> ParsedLines:
    """One entry per line; ``#`` comments, blank lines, a BOM, CRLF, surrounding white space
    and duplicate lines are handled. Line numbers in errors are 1-based."""
    parsed = ParsedLines()
    seen: set[str] = set()
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            parsed.skipped_lines += 1
            continue
        if line in seen:
            parsed.duplicate_lines.append(number)
            continue
        seen.add(line)
        try:
            parsed.entries.append(parse_entry_line(line))
        except ValueError as exc:
            parsed.errors[f"line {number}"] = str(exc)
    return parsed


def validate_run_request(data: Mapping[str, Any]) -> RunRequest:
    """Check a run request; raise ``InvalidRequest`` naming every bad field."""
    errors: dict[str, str] = {}
    host_id = _host_id(data.get("host_id"), errors)
    mode = _choice(data, "mode", ImportRun.Mode.values, errors)
    access_mode = _choice(data, "access_mode", ImportRun.AccessMode.values, errors)
    users: tuple[str, ...] = ()
    days: int | None = None
    probe_key: Secret | None = None
    if access_mode == ImportRun.AccessMode.SUBSCRIPTION:
        users = _emails(data.get("subscription_users"), errors)
        days = _int(data, "subscription_days", errors, low=1, high=MAX_SUBSCRIPTION_DAYS)
    elif access_mode == ImportRun.AccessMode.SELF_SERVICE:
        probe_key = _secret(data.get("probe_api_key"), "probe_api_key", errors)
    wait = data.get("confirm_wait_timeout_sec")
    wait_sec = 0
    if wait not in (None, ""):
        wait_sec = _int(data, "confirm_wait_timeout_sec", errors, low=0, high=MAX_CONFIRM_WAIT_SEC)
    entries = _entries(data.get("entries"), errors)
    dry_run = data.get("dry_run", False)
    if not isinstance(dry_run, bool):
        errors["dry_run"] = "must be true or false"
    if errors:
        unknown_host = set(errors) == {"host_id"} and host_id > 0
        raise (UnknownHost if unknown_host else InvalidRequest)(errors)
    return RunRequest(
        host_id=host_id,
        mode=mode,
        access_mode=access_mode,
        entries=tuple(entries),
        subscription_users=users,
        subscription_days=days,
        probe_api_key=probe_key,
        confirm_wait_timeout_sec=wait_sec or 0,
        dry_run=dry_run,
    )


def _host_id(value: Any, errors: dict[str, str]) -> int:
    if value in (None, ""):
        errors["host_id"] = "is required"
        return 0
    try:
        host_id = int(value)
    except (TypeError, ValueError):
        errors["host_id"] = "must be an integer"
        return 0
    if not Host.objects.filter(pk=host_id).exists():
        errors["host_id"] = f"no registered host with id {host_id}"
    return host_id


def _choice(data: Mapping[str, Any], name: str, allowed: list[str], errors: dict) -> str:
    value = data.get(name)
    if value in (None, ""):
        errors[name] = _("is required (one of %(choices)s)") % {"choices": ", ".join(allowed)}
    elif value not in allowed:
        errors[name] = _("must be one of %(choices)s, got %(value)s") % {
            "choices": ", ".join(allowed),
            "value": repr(value),
        }
    return value or ""


def _int(data: Mapping[str, Any], name: str, errors: dict, *, low: int, high: int) -> int:
    value = data.get(name)
    if value in (None, ""):
        errors[name] = "is required"
        return 0
    if isinstance(value, bool):
        errors[name] = "must be an integer"
        return 0
    try:
        number = int(value)
    except (TypeError, ValueError):
        errors[name] = "must be an integer"
        return 0
    if not low <= number <= high:
        errors[name] = _("must be between %(low)d and %(high)d") % {"low": low, "high": high}
    return number


def _emails(value: Any, errors: dict[str, str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in value.split(",")]
    if not value:
        errors["subscription_users"] = _("is required when access_mode=subscription")
        return ()
    if not isinstance(value, list | tuple):
        errors["subscription_users"] = "must be a list of emails"
        return ()
    users: list[str] = []
    for index, email in enumerate(value):
        email = str(email).strip().lower()
        try:
            validate_email(email)
        except ValidationError:
            errors[f"subscription_users[{index}]"] = _("not a valid email")
            continue
        if email not in users:
            users.append(email)
    return tuple(users)


def _secret(value: Any, name: str, errors: dict[str, str]) -> Secret | None:
    text = value.reveal() if isinstance(value, Secret) else value
    if not isinstance(text, str) or not text.strip():
        errors[name] = _("is required when access_mode=self_service")
        return None
    problem = key_problem(text)
    if problem:
        errors[name] = problem
        return None
    return Secret(text.strip())


def _entries(value: Any, errors: dict[str, str]) -> list[EntryInput]:
    if not isinstance(value, list | tuple) or not value:
        errors["entries"] = _("at least one entry is required")
        return []
    if len(value) > MAX_ENTRIES:
        errors["entries"] = _("at most %(n)d entries per run") % {"n": MAX_ENTRIES}
        return []
    entries: list[EntryInput] = []
    for index, raw in enumerate(value):
        where = f"entries[{index}]"
        if not isinstance(raw, Mapping):
            errors[where] = "must be an object with base_url and api_key"
            continue
        url_error = base_url_error(raw.get("base_url"))
        if url_error:
            errors[f"{where}.base_url"] = url_error
        key = raw.get("api_key")
        key_text = key.reveal() if isinstance(key, Secret) else key
        key_error = key_problem(key_text)
        if key_error:
            errors[f"{where}.api_key"] = key_error
        models = _requested_models(raw.get("requested_models"), f"{where}.requested_models", errors)
        if not url_error and not key_error:
            entries.append(
                EntryInput(
                    base_url=str(raw["base_url"]).strip(),
                    api_key=Secret(key_text.strip()),
                    requested_models=models,
                )
            )
    return entries


def base_url_error(value: Any) -> str | None:
    problem = url_problem(value)
    if problem:
        return problem
    if urlsplit(value.strip()).scheme == "http" and not settings.RELAY_ALLOW_INSECURE_UPSTREAMS:
        return _("must use https (set RELAY_ALLOW_INSECURE_UPSTREAMS=1 to allow http)")
    return None


def _requested_models(value: Any, name: str, errors: dict[str, str]) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        value = value.split("|")
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        errors[name] = "must be a list of model names"
        return ()
    models = tuple(dict.fromkeys(str(m).strip() for m in value if str(m).strip()))
    if len(models) > MAX_REQUESTED_MODELS:
        errors[name] = _("at most %(n)d models") % {"n": MAX_REQUESTED_MODELS}
    for model in models:
        problem = text_problem(model, max_length=MAX_MODEL_NAME_LENGTH)
        if problem:
            errors[name] = _("a model name %(problem)s") % {"problem": problem}
            return ()
    return models
