"""Validation of a pack's files (seed 002 §5.2): structure, checksums, provider schema and the
host version range. Pure: files in, a ValidatedPack or PackRejected (field → message) out."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.utils.translation import gettext as _
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from relay_project.errors import DomainError, StateConflict

SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
CHECKSUM_LINE = re.compile(r"^([0-9a-fA-F]{64})\s+\*?(\S.*)$")
PRICE_KEYS = ("input", "output", "cache_read", "cache_write")
PRICE_UNIT = "usd_per_1m_tokens"


class PackRejected(DomainError):
    """The pack breaks a rule; ``errors`` maps the file or field to the message. A 422: the
    request was well formed, the pack it carries (or names) is not."""

    http_status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)
        self.field_errors = self.errors


class PackNotFound(PackRejected):
    """No pack folder of that name under RELAY_PACKS_DIR (a 404, like an unknown id)."""

    http_status = 404


class PackConflict(PackRejected, StateConflict):
    """The pack_id + version is installed already with other content (a 409)."""

    http_status = 409

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.field_errors = None


@dataclass(frozen=True)
class ProviderSpec:
    provider_id: str
    display_name: str
    base_url: str
    hostname: str
    default_models: list[str]
    smoke_test_model: str
    aliases: dict[str, str] = field(default_factory=dict)
    prices: dict[str, dict[str, float]] = field(default_factory=dict)
    prices_as_of: str = ""
    prices_source: str = ""
    notes: str = ""


@dataclass(frozen=True)
class ValidatedPack:
    pack_id: str
    version: str
    name: str
    host_versions: str
    description: str
    notes: str
    content_digest: str
    providers: list[ProviderSpec]


def parse_version(value: str) -> Version | None:
    try:
        return Version(value.strip().removeprefix("v"))
    except InvalidVersion:
        return None


def host_version_allowed(spec: str, host_version: str) -> bool | None:
    """True/False, or None when the host version is unknown or unreadable."""
    version = parse_version(host_version or "")
    if version is None:
        return None
    return SpecifierSet(spec).contains(version, prereleases=True)


def content_digest(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def validate_pack(
    files: dict[str, bytes], *, host_version: str | None = None, host_name: str = ""
) -> ValidatedPack:
    """Every rule of seed 002 §5.2; ``host_version`` (when installing for a host) must lie in
    the pack's ``host_versions`` range."""
    if "pack.json" not in files:
        raise PackRejected({"pack.json": _("missing: a pack needs pack.json at its root")})
    manifest = _json(files, "pack.json")
    errors: dict[str, str] = {}
    pack_id = _slug(manifest, "pack_id", "pack.json", errors)
    version = _text(manifest, "version", "pack.json", errors)
    if version and parse_version(version) is None:
        errors["pack.json.version"] = _(
            "%(version)s is not a version (e.g. 2026.12.1 or 1.2.0)"
        ) % {"version": repr(version)}
    name = _text(manifest, "name", "pack.json", errors)
    host_versions = _text(manifest, "host_versions", "pack.json", errors)
    if host_versions:
        try:
            SpecifierSet(host_versions)
        except InvalidSpecifier:
            errors["pack.json.host_versions"] = _(
                "%(host_versions)s is not a version range (e.g. >=0.1.100,<0.2)"
            ) % {"host_versions": repr(host_versions)}
    if errors:
        raise PackRejected(errors)

    _check_checksums(files)
    provider_files = sorted(
        name for name in files if name.startswith("providers/") and name.endswith(".json")
    )
    provider_files = [name for name in provider_files if name.count("/") == 1]
    if not provider_files:
        raise PackRejected({"providers": _("no provider: a pack needs providers/*.json")})
    providers: list[ProviderSpec] = []
    seen: dict[str, str] = {}
    for name in provider_files:
        spec = _provider(name, _json(files, name))
        if spec.provider_id in seen:
            raise PackRejected(
                {
                    f"{name}.provider_id": _(
                        "duplicate provider_id %(provider_id)s (also in %(value)s)"
                    )
                    % {"provider_id": repr(spec.provider_id), "value": seen[spec.provider_id]}
                }
            )
        seen[spec.provider_id] = name
        providers.append(spec)

    if host_version is not None:
        allowed = host_version_allowed(host_versions, host_version)
        if allowed is None:
            raise PackRejected(
                {
                    "host_versions": _("host %(host_name)s reports no readable version to check")
                    % {"host_name": host_name}
                }
            )
        if not allowed:
            raise PackRejected(
                {
                    "host_versions": _(
                        "host %(host_name)s runs %(host_version)s, outside this pack's range "
                        "%(host_versions)s"
                    )
                    % {
                        "host_name": host_name,
                        "host_version": host_version,
                        "host_versions": host_versions,
                    }
                }
            )
    return ValidatedPack(
        pack_id=pack_id,
        version=version,
        name=name,
        host_versions=host_versions,
        description=str(manifest.get("description") or ""),
        notes=str(manifest.get("notes") or ""),
        content_digest=content_digest(files),
        providers=providers,
    )


def _json(files: dict[str, bytes], name: str) -> dict[str, Any]:
    try:
        data = json.loads(files[name].decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackRejected({name: _("not valid UTF-8 JSON (%(exc)s)") % {"exc": exc}}) from None
    if not isinstance(data, dict):
        raise PackRejected({name: _("must be a JSON object")})
    return data


# Column sizes of model_packs.models, so a long value is a clear 400, not a database error.
MAX_LENGTHS = {
    "pack_id": 64,
    "provider_id": 64,
    "version": 32,
    "name": 200,
    "display_name": 200,
    "host_versions": 100,
    "base_url": 500,
    "smoke_test_model": 255,
    "as_of": 200,
    "source": 500,
}


def _text(data: dict, key: str, where: str, errors: dict[str, str]) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        errors[f"{where}.{key}"] = _("required (a non-empty string)")
        return ""
    if len(value.strip()) > MAX_LENGTHS.get(key, 10_000):
        errors[f"{where}.{key}"] = _("at most %(value)s characters") % {"value": MAX_LENGTHS[key]}
        return ""
    return value.strip()


def _optional_text(data: dict, key: str, where: str, errors: dict[str, str]) -> str:
    value = data.get(key)
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        errors[f"{where}.{key}"] = _("must be a string")
        return ""
    if len(value) > MAX_LENGTHS.get(key, 10_000):
        errors[f"{where}.{key}"] = _("at most %(value)s characters") % {"value": MAX_LENGTHS[key]}
        return ""
    return value.strip()


def _slug(data: dict, key: str, where: str, errors: dict[str, str]) -> str:
    value = _text(data, key, where, errors)
    if value and not SLUG.match(value):
        errors[f"{where}.{key}"] = _("lower-case letters, digits, '.', '_' or '-' (at most 64)")
    return value


def _check_checksums(files: dict[str, bytes]) -> None:
    if "checksums.txt" not in files:
        raise PackRejected({"checksums.txt": _("missing: a pack needs checksums.txt")})
    listed: dict[str, str] = {}
    text = files["checksums.txt"].decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = CHECKSUM_LINE.match(line.strip())
        if not match:
            raise PackRejected(
                {
                    "checksums.txt": _("line %(number)s: expected '<sha256 hex>  <path>'")
                    % {"number": number}
                }
            )
        listed[match.group(2).strip().removeprefix("./")] = match.group(1).lower()
    for name, content in files.items():
        if name == "checksums.txt":
            continue
        expected = listed.get(name)
        if expected is None:
            raise PackRejected({"checksums.txt": _("%(name)s is not listed") % {"name": name}})
        if hashlib.sha256(content).hexdigest() != expected:
            raise PackRejected({"checksums.txt": _("bad checksum for %(name)s") % {"name": name}})
    for name in listed:
        if name not in files:
            raise PackRejected(
                {"checksums.txt": _("lists %(name)s, which is not in the pack") % {"name": name}}
            )


def _provider(name: str, data: dict[str, Any]) -> ProviderSpec:
    errors: dict[str, str] = {}
    provider_id = _slug(data, "provider_id", name, errors)
    base_url = _text(data, "base_url", name, errors)
    parts = urlsplit(base_url)
    if base_url and (parts.scheme != "https" or not parts.hostname):
        errors[f"{name}.base_url"] = _("must be an https:// URL with a host")
    models = data.get("default_models")
    if not isinstance(models, list) or not models:
        errors[f"{name}.default_models"] = _("must not be empty")
        models = []
    elif not all(isinstance(m, str) and m.strip() for m in models):
        errors[f"{name}.default_models"] = _("every model must be a non-empty string")
    elif len(set(models)) != len(models):
        errors[f"{name}.default_models"] = _("lists a model twice")
    smoke = _text(data, "smoke_test_model", name, errors)
    if smoke and models and smoke not in models:
        errors[f"{name}.smoke_test_model"] = _("%(smoke)s is not in default_models") % {
            "smoke": repr(smoke)
        }
    display_name = _optional_text(data, "display_name", name, errors)
    aliases = data.get("aliases") or {}
    if not isinstance(aliases, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and v for k, v in aliases.items()
    ):
        errors[f"{name}.aliases"] = _("must map an upstream model id to the name clients use")
        aliases = {}
    prices, as_of, source = _prices(name, data.get("prices"), errors)
    if errors:
        raise PackRejected(errors)
    return ProviderSpec(
        provider_id=provider_id,
        display_name=display_name or provider_id,
        base_url=base_url.rstrip("/"),
        hostname=(parts.hostname or "").lower(),
        default_models=[m.strip() for m in models],
        smoke_test_model=smoke,
        aliases=dict(aliases),
        prices=prices,
        prices_as_of=as_of,
        prices_source=source,
        notes=str(data.get("notes") or ""),
    )


def _prices(
    name: str, data: Any, errors: dict[str, str]
) -> tuple[dict[str, dict[str, float]], str, str]:
    if data is None:
        return {}, "", ""
    where = f"{name}.prices"
    if not isinstance(data, dict):
        errors[where] = _("must be an object")
        return {}, "", ""
    if data.get("unit") != PRICE_UNIT:
        errors[f"{where}.unit"] = _("must be %(price_unit)s (the host bills in USD)") % {
            "price_unit": repr(PRICE_UNIT)
        }
    as_of = _text(data, "as_of", where, errors)
    source = _optional_text(data, "source", where, errors)
    models = data.get("models")
    if not isinstance(models, dict):
        errors[f"{where}.models"] = _("must map model id → {input, output, cache_read, ...}")
        return {}, as_of, source
    prices: dict[str, dict[str, float]] = {}
    for model, entry in models.items():
        if not isinstance(entry, dict) or not entry:
            errors[f"{where}.models.{model}"] = _("must be an object of prices")
            continue
        unknown = set(entry) - set(PRICE_KEYS)
        if unknown:
            errors[f"{where}.models.{model}"] = _("unknown price keys: %(value)s") % {
                "value": ", ".join(sorted(unknown))
            }
            continue
        bad = [
            key
            for key, value in entry.items()
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0
        ]
        for key in bad:
            errors[f"{where}.models.{model}.{key}"] = _("must be a number >= 0")
        if not bad:
            prices[model] = {key: float(value) for key, value in entry.items()}
    return prices, as_of, source
