"""Typed views of what the host returns; nothing past the adapter sees a raw response dict.

Parsing is tolerant of both [OLD] and [NEW] DTO shapes: unknown fields are ignored and missing
ones take neutral defaults. Secrets the host hands back (an [OLD] account's ``api_key``, user
keys, JWTs) are wrapped in ``Secret`` so they never print.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from relay_project.crypto import Secret, reveal

# Credential keys the [NEW] host strips from responses (§4.3); we drop them the same way.
SENSITIVE_CREDENTIAL_KEYS = frozenset(
    {"api_key", "access_token", "refresh_token", "id_token", "session_key", "cookie"}
)


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _float(value: Any, default: float | None = 0.0) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _str_map(value: Any) -> dict[str, str]:
    """A ``{str: str}`` map; the host ignores non-string values in mappings, and so do we."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def _ids(value: Any) -> tuple[int, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return ()
    return tuple(_int(v) for v in value)


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Group:
    id: int
    name: str
    platform: str
    status: str
    subscription_type: str
    rate_multiplier: float
    is_exclusive: bool
    description: str = ""
    daily_limit_usd: float | None = None
    weekly_limit_usd: float | None = None
    monthly_limit_usd: float | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Group:
        return cls(
            id=_int(data.get("id")),
            name=str(data.get("name") or ""),
            platform=str(data.get("platform") or ""),
            status=str(data.get("status") or ""),
            subscription_type=str(data.get("subscription_type") or "standard"),
            rate_multiplier=_float(data.get("rate_multiplier")) or 0.0,
            is_exclusive=bool(data.get("is_exclusive")),
            description=str(data.get("description") or ""),
            daily_limit_usd=_float(data.get("daily_limit_usd"), None),
            weekly_limit_usd=_float(data.get("weekly_limit_usd"), None),
            monthly_limit_usd=_float(data.get("monthly_limit_usd"), None),
        )


@dataclass(frozen=True)
class PricingEntry:
    """One ``model_pricing`` entry of a channel. Prices are USD per token (§5.2)."""

    platform: str
    models: tuple[str, ...]
    billing_mode: str = "token"
    input_price: float | None = None
    output_price: float | None = None
    cache_write_price: float | None = None
    cache_read_price: float | None = None
    per_request_price: float | None = None

    def to_api(self) -> dict[str, Any]:
        # The host defaults an omitted platform to "anthropic", so it is always sent.
        return {
            "platform": self.platform,
            "models": list(self.models),
            "billing_mode": self.billing_mode,
            "input_price": self.input_price,
            "output_price": self.output_price,
            "cache_write_price": self.cache_write_price,
            "cache_read_price": self.cache_read_price,
            "per_request_price": self.per_request_price,
        }

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> PricingEntry:
        return cls(
            platform=str(data.get("platform") or "anthropic"),
            models=tuple(str(m) for m in data.get("models") or ()),
            billing_mode=str(data.get("billing_mode") or "token"),
            input_price=_float(data.get("input_price"), None),
            output_price=_float(data.get("output_price"), None),
            cache_write_price=_float(data.get("cache_write_price"), None),
            cache_read_price=_float(data.get("cache_read_price"), None),
            per_request_price=_float(data.get("per_request_price"), None),
        )


@dataclass(frozen=True)
class Channel:
    id: int
    name: str
    status: str
    billing_model_source: str
    restrict_models: bool
    group_ids: tuple[int, ...]
    # Nested by platform: {"openai": {"alias": "canonical"}} (§5.2).
    model_mapping: dict[str, dict[str, str]] = field(default_factory=dict)
    model_pricing: tuple[PricingEntry, ...] = ()
    description: str = ""

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Channel:
        mapping = data.get("model_mapping")
        return cls(
            id=_int(data.get("id")),
            name=str(data.get("name") or ""),
            status=str(data.get("status") or ""),
            billing_model_source=str(data.get("billing_model_source") or "channel_mapped"),
            restrict_models=bool(data.get("restrict_models")),
            group_ids=_ids(data.get("group_ids")),
            model_mapping={
                str(platform): _str_map(pairs)
                for platform, pairs in (mapping.items() if isinstance(mapping, Mapping) else ())
            },
            model_pricing=tuple(
                PricingEntry.from_api(p)
                for p in data.get("model_pricing") or ()
                if isinstance(p, Mapping)
            ),
            description=str(data.get("description") or ""),
        )


@dataclass(frozen=True)
class OpenAICredentials:
    """``credentials`` of an openai/apikey account.

    Always complete: an [OLD] host replaces the stored map with whatever a PUT sends, so an
    update must carry the key, the base URL and the mapping together (§4.5).
    """

    api_key: Secret | str
    base_url: str
    model_mapping: Mapping[str, str] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        return {
            "api_key": reveal(self.api_key),
            "base_url": self.base_url,
            "model_mapping": dict(self.model_mapping),
        }


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    platform: str
    type: str
    status: str  # active | inactive/disabled | error
    schedulable: bool
    error_message: str
    base_url: str
    model_mapping: dict[str, str]
    has_api_key: bool
    # [OLD] hosts return the key in full; [NEW] hosts redact it (then only has_api_key tells).
    api_key: Secret | None
    extra: dict[str, Any]
    group_ids: tuple[int, ...]
    concurrency: int = 0
    priority: int = 0
    created_at: datetime | None = None

    @property
    def responses_supported(self) -> bool | None:
        """``extra.openai_responses_supported``: None while unknown (probe not run/failed)."""
        value = self.extra.get("openai_responses_supported")
        return value if isinstance(value, bool) else None

    @property
    def is_schedulable(self) -> bool:
        """What the scheduler needs: active and switched on (§4.3)."""
        return self.status == "active" and self.schedulable

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Account:
        credentials = data.get("credentials")
        credentials = credentials if isinstance(credentials, Mapping) else {}
        status_map = data.get("credentials_status")
        raw_key = credentials.get("api_key")
        has_key = bool(raw_key) or bool(
            isinstance(status_map, Mapping) and status_map.get("has_api_key")
        )
        groups = data.get("group_ids")
        if groups is None and isinstance(data.get("groups"), Sequence):
            groups = [g.get("id") for g in data["groups"] if isinstance(g, Mapping)]
        extra = data.get("extra")
        return cls(
            id=_int(data.get("id")),
            name=str(data.get("name") or ""),
            platform=str(data.get("platform") or ""),
            type=str(data.get("type") or ""),
            status=str(data.get("status") or ""),
            schedulable=bool(data.get("schedulable")),
            error_message=str(data.get("error_message") or ""),
            base_url=str(credentials.get("base_url") or ""),
            model_mapping=_str_map(credentials.get("model_mapping")),
            has_api_key=has_key,
            api_key=Secret(raw_key) if isinstance(raw_key, str) and raw_key else None,
            extra=dict(extra) if isinstance(extra, Mapping) else {},
            group_ids=_ids(groups),
            concurrency=_int(data.get("concurrency")),
            priority=_int(data.get("priority")),
            created_at=parse_time(data.get("created_at")),
        )


@dataclass(frozen=True)
class TestEvent:
    """One ``data:`` line of the account-test stream (§4.7)."""

    __test__ = False  # not a pytest class, despite the name

    type: str
    text: str = ""
    model: str = ""
    success: bool | None = None
    error: str = ""

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> TestEvent:
        success = data.get("success")
        return cls(
            type=str(data.get("type") or ""),
            text=str(data.get("text") or ""),
            model=str(data.get("model") or ""),
            success=success if isinstance(success, bool) else None,
            error=str(data.get("error") or ""),
        )


UPSTREAM_STATUS_IN_TEST_ERROR = re.compile(r"API returned (\d{3})\b")


@dataclass(frozen=True)
class AccountTestResult:
    success: bool
    model: str  # the model sent upstream (after the account's mapping)
    text: str  # concatenated content deltas
    error: str
    events: tuple[TestEvent, ...]

    @property
    def upstream_status(self) -> int | None:
        """The upstream's HTTP status in the host's error text ("API returned 404: …")."""
        found = UPSTREAM_STATUS_IN_TEST_ERROR.search(self.error)
        return int(found.group(1)) if found else None


@dataclass(frozen=True)
class HostModel:
    """A model entry of ``/admin/accounts/:id/models`` or the gateway's ``/v1/models``."""

    id: str
    display_name: str = ""
    owned_by: str = ""

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> HostModel:
        return cls(
            id=str(data.get("id") or ""),
            display_name=str(data.get("display_name") or ""),
            owned_by=str(data.get("owned_by") or ""),
        )


@dataclass(frozen=True)
class User:
    id: int
    email: str
    username: str
    role: str
    status: str
    balance: float
    concurrency: int
    allowed_groups: tuple[int, ...]

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> User:
        return cls(
            id=_int(data.get("id")),
            email=str(data.get("email") or ""),
            username=str(data.get("username") or ""),
            role=str(data.get("role") or ""),
            status=str(data.get("status") or ""),
            balance=_float(data.get("balance")) or 0.0,
            concurrency=_int(data.get("concurrency")),
            allowed_groups=_ids(data.get("allowed_groups")),
        )


@dataclass(frozen=True)
class Subscription:
    id: int
    user_id: int
    group_id: int
    status: str  # active | expired | suspended
    starts_at: datetime | None
    expires_at: datetime | None
    notes: str = ""

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Subscription:
        return cls(
            id=_int(data.get("id")),
            user_id=_int(data.get("user_id")),
            group_id=_int(data.get("group_id")),
            status=str(data.get("status") or ""),
            starts_at=parse_time(data.get("starts_at")),
            expires_at=parse_time(data.get("expires_at")),
            notes=str(data.get("notes") or ""),
        )


@dataclass(frozen=True)
class UserSession:
    """A logged-in host user: the JWT for ``/api/v1/keys`` (§8.1)."""

    user: User
    access_token: Secret


@dataclass(frozen=True)
class ApiKey:
    id: int
    user_id: int
    name: str
    group_id: int | None
    status: str
    key: Secret

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ApiKey:
        group_id = data.get("group_id")
        return cls(
            id=_int(data.get("id")),
            user_id=_int(data.get("user_id")),
            name=str(data.get("name") or ""),
            group_id=_int(group_id) if group_id not in (None, 0) else None,
            status=str(data.get("status") or ""),
            key=Secret(str(data.get("key") or "")),
        )


@dataclass(frozen=True)
class ChatCompletion:
    """Outcome of one gateway ``POST /v1/chat/completions``, success or not.

    ``error_type`` is the gateway envelope's ``error.type`` (``api_error``, ``upstream_error``…)
    or, for the key/billing pre-checks, the flat code (``INSUFFICIENT_BALANCE``…).
    """

    status: int
    content: str = ""
    model: str = ""
    finish_reason: str = ""
    error_type: str = ""
    error_message: str = ""
    retry_after: float = 0.0  # seconds the gateway asked us to wait (Retry-After), if any

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error_type

    @property
    def transient(self) -> bool:
        if self.refusal in GatewayRefusal.LASTING:
            return False
        return self.status in (408, 429) or self.status >= 500

    @property
    def no_available_accounts(self) -> bool:
        return self.status == 503 and self.error_type == "api_error"

    @property
    def refusal(self) -> str:
        """Why the gateway found no account for the model, the same on every build (§9.5, §13);
        ``""`` for any other answer."""
        if self.no_available_accounts:
            if "channel pricing restriction" in self.error_message:
                return GatewayRefusal.CHANNEL_RESTRICTED
            return GatewayRefusal.NO_ACCOUNT
        if self.status == 404 and self.error_type == "model_not_found":
            return GatewayRefusal.MODEL_NOT_FOUND
        if self.status == 429:
            if self.error_type in KEY_QUOTA_ANSWERS:
                return GatewayRefusal.KEY_QUOTA
            return GatewayRefusal.RATE_LIMITED
        return ""


class GatewayRefusal:
    """The "no account" answers of the gateway, by what they mean rather than by build:
    generic 503 "Service temporarily unavailable" and detailed 503 "No available accounts…"
    are both ``NO_ACCOUNT`` (nothing schedulable yet: a new account warming up);
    ``CHANNEL_RESTRICTED`` is the detailed 503 of a channel that prices none of the model
    (waiting will not help); ``MODEL_NOT_FOUND`` (404 ``model_not_found``) says the group has
    accounts but none maps the model; ``RATE_LIMITED`` (429) that every one that does is
    rate-limited for now. ``KEY_QUOTA`` is a 429 about the key itself (its quota, or its
    subscription's daily/weekly/monthly limit): it lasts until a window resets, hours away."""

    NO_ACCOUNT = "no_account"
    CHANNEL_RESTRICTED = "channel_restricted"
    MODEL_NOT_FOUND = "model_not_found"
    RATE_LIMITED = "rate_limited"
    KEY_QUOTA = "key_quota"
    LASTING = frozenset({CHANNEL_RESTRICTED, MODEL_NOT_FOUND, KEY_QUOTA})


# 429s about the key, not the accounts: the middleware's flat codes and the gateway's
# "rate_limit_exceeded" for a key's own 5h/daily/7d limits (API-key middleware, billing).
KEY_QUOTA_ANSWERS = frozenset(
    {"API_KEY_QUOTA_EXHAUSTED", "USAGE_LIMIT_EXCEEDED", "rate_limit_exceeded"}
)


@dataclass(frozen=True)
class HostCapabilities:
    """Result of the side-effect-free capability probe.

    ``capabilities`` maps each name of ``capabilities.CAPABILITIES`` to True/False.
    """

    version: str
    capabilities: dict[str, bool]

    @property
    def missing(self) -> list[str]:
        return [name for name, present in self.capabilities.items() if not present]

    @property
    def supported(self) -> bool:
        return not self.missing
