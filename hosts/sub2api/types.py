"""Typed views of what the host returns; nothing past the adapter sees a raw response dict.

The nine DTOs are pydantic models, tolerant of both [OLD] and [NEW] shapes: unknown fields are
ignored and missing descriptive ones take neutral defaults, but a record without its ``id`` (or
a subscription or key without its user and group) is not a record: ``from_api`` refuses it with
a ``HostError`` of kind ``protocol`` (``UNEXPECTED_RESPONSE``) instead of inventing id 0.
Secrets the host hands back (an [OLD] account's ``api_key``, user keys, JWTs) are wrapped in
``Secret`` so they never print.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from hosts.sub2api.errors import HostError, protocol_error
from relay_project.crypto import Secret, reveal

# An optional argument the caller left out: "not looked up", where None means "looked up:
# there is none" (a caller that has just asked the host passes what it found).
UNASKED: Any = object()


def _text(default: str = "") -> Callable[[Any], str]:
    return lambda value: str(value or default)


def _number(default: float | None) -> Callable[[Any], float | None]:
    def parse(value: Any) -> float | None:
        try:
            return float(value)
        except (TypeError, ValueError):
            return default

    return parse


def _count(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _str_map(value: Any) -> dict[str, str]:
    """A ``{str: str}`` map; the host ignores non-string values in mappings, and so do we."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def _id_list(value: Any) -> Any:
    return () if not isinstance(value, Sequence) or isinstance(value, str) else value


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _bool_or_none(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _secret(value: Any) -> Secret:
    return value if isinstance(value, Secret) else Secret(str(value or ""))


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


Text = Annotated[str, BeforeValidator(_text())]
Number = Annotated[float, BeforeValidator(_number(0.0))]
OptionalNumber = Annotated[float | None, BeforeValidator(_number(None))]
Count = Annotated[int, BeforeValidator(_count)]
Flag = Annotated[bool, BeforeValidator(bool)]
Ids = Annotated[tuple[int, ...], BeforeValidator(_id_list)]
StrMap = Annotated[dict[str, str], BeforeValidator(_str_map)]
Time = Annotated[datetime | None, BeforeValidator(parse_time)]
Extra = Annotated[dict[str, Any], BeforeValidator(_dict)]


class HostRecord(BaseModel):
    """A DTO read from a host answer: immutable; ``from_api`` is the one way in."""

    model_config = ConfigDict(frozen=True, extra="ignore", arbitrary_types_allowed=True)

    @classmethod
    def from_api(cls, data: Any) -> Self:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise shape_error(cls.__name__, exc) from None


def shape_error(name: str, exc: ValidationError) -> HostError:
    """What was wrong, by field, never the values (an answer may carry a key)."""
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors()[:3]
    )
    # A DTO is read from a 2xx answer; the call that got it is in the traceback.
    return protocol_error(f"{name}: {problems}", status=200, method="", path="")


class Group(HostRecord):
    id: int
    name: Text = ""
    platform: Text = ""
    status: Text = ""
    subscription_type: Annotated[str, BeforeValidator(_text("standard"))] = "standard"
    rate_multiplier: Number = 0.0
    is_exclusive: Flag = False
    description: Text = ""
    daily_limit_usd: OptionalNumber = None
    weekly_limit_usd: OptionalNumber = None
    monthly_limit_usd: OptionalNumber = None


class PricingEntry(HostRecord):
    """One ``model_pricing`` entry of a channel. Prices are USD per token (§5.2)."""

    platform: Annotated[str, BeforeValidator(_text("anthropic"))] = "anthropic"
    models: Annotated[tuple[str, ...], BeforeValidator(lambda v: tuple(str(m) for m in v or ()))]
    billing_mode: Annotated[str, BeforeValidator(_text("token"))] = "token"
    input_price: OptionalNumber = None
    output_price: OptionalNumber = None
    cache_write_price: OptionalNumber = None
    cache_read_price: OptionalNumber = None
    per_request_price: OptionalNumber = None

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


def _nested_map(value: Any) -> dict[str, dict[str, str]]:
    if not isinstance(value, Mapping):
        return {}
    return {str(platform): _str_map(pairs) for platform, pairs in value.items()}


def _pricing(value: Any) -> tuple[Any, ...]:
    return tuple(p for p in value or () if isinstance(p, Mapping | PricingEntry))


class Channel(HostRecord):
    id: int
    name: Text = ""
    status: Text = ""
    billing_model_source: Annotated[str, BeforeValidator(_text("channel_mapped"))] = (
        "channel_mapped"
    )
    restrict_models: Flag = False
    group_ids: Ids = ()
    # Nested by platform: {"openai": {"alias": "canonical"}} (§5.2).
    model_mapping: Annotated[dict[str, dict[str, str]], BeforeValidator(_nested_map)] = Field(
        default_factory=dict
    )
    model_pricing: Annotated[tuple[PricingEntry, ...], BeforeValidator(_pricing)] = ()
    description: Text = ""

    def mapped(self, platform: str, model: str) -> str:
        """The model after the channel's mapping (exact keys first, then ``prefix*`` in
        configuration order, §5.4)."""
        pairs = self.model_mapping.get(platform) or {}
        if model in pairs:
            return pairs[model]
        for source, target in pairs.items():
            if source.endswith("*") and model.startswith(source[:-1]):
                return target
        return model

    def prices(self, platform: str, model: str) -> bool:
        """Whether ``model_pricing`` lists the model for the platform (case-insensitive,
        ``prefix*`` wildcards)."""
        name = model.lower()
        for entry in self.model_pricing:
            if entry.platform != platform:
                continue
            for pattern in (p.lower() for p in entry.models):
                if name == pattern or (pattern.endswith("*") and name.startswith(pattern[:-1])):
                    return True
        return False

    def refuses(self, platform: str, requested: str) -> bool:
        """Whether the channel's pricing restriction refuses ``requested`` whatever the
        accounts (the gateway then says "no available accounts", on some builds without the
        "(channel pricing restriction)" detail). ``upstream`` billing is decided per account:
        not told here."""
        if self.status != "active" or not self.restrict_models:
            return False
        source = self.billing_model_source
        if source == "requested":
            return not self.prices(platform, requested)
        if source == "upstream":
            return False
        return not self.prices(platform, self.mapped(platform, requested))


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


class Account(HostRecord):
    id: int
    name: Text = ""
    platform: Text = ""
    type: Text = ""
    status: Text = ""  # active | inactive/disabled | error
    schedulable: Flag = False
    error_message: Text = ""
    base_url: Text = ""
    model_mapping: StrMap = Field(default_factory=dict)
    has_api_key: Flag = False
    # [OLD] hosts return the key in full; [NEW] hosts redact it (then only has_api_key tells).
    api_key: Secret | None = None
    extra: Extra = Field(default_factory=dict)
    group_ids: Ids = ()
    concurrency: Count = 0
    priority: Count = 0
    created_at: Time = None
    # Set by the host when the upstream answered 429 (§4.3): the scheduler skips the account
    # until then. [NEW] also pauses accounts (``temp_unschedulable_*``), e.g. a Chinese
    # provider's "insufficient balance".
    rate_limit_reset_at: Time = None
    temp_unschedulable_until: Time = None
    temp_unschedulable_reason: Text = ""

    @model_validator(mode="before")
    @classmethod
    def _from_host_shape(cls, data: Any) -> Any:
        """The host nests ``base_url``, ``model_mapping`` and the key in ``credentials``; [NEW]
        says only ``credentials_status.has_api_key``; some builds list ``groups``, not ids."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if "credentials" in data:
            credentials = data.pop("credentials")
            credentials = credentials if isinstance(credentials, Mapping) else {}
            raw_key = credentials.get("api_key")
            data["api_key"] = Secret(raw_key) if isinstance(raw_key, str) and raw_key else None
            data["has_api_key"] = bool(raw_key)
            data["base_url"] = credentials.get("base_url")
            data["model_mapping"] = credentials.get("model_mapping")
        status_map = data.get("credentials_status")
        if isinstance(status_map, Mapping) and status_map.get("has_api_key"):
            data["has_api_key"] = True
        if data.get("group_ids") is None and isinstance(data.get("groups"), Sequence):
            data["group_ids"] = [g.get("id") for g in data["groups"] if isinstance(g, Mapping)]
        return data

    @property
    def responses_supported(self) -> bool | None:
        """``extra.openai_responses_supported``: None while unknown (probe not run/failed)."""
        value = self.extra.get("openai_responses_supported")
        return value if isinstance(value, bool) else None

    @property
    def is_schedulable(self) -> bool:
        """What the scheduler needs: active and switched on (§4.3)."""
        return self.status == "active" and self.schedulable

    def upstream_refusal(self, now: datetime) -> str:
        """What the host learnt from this account's upstream while forwarding (a
        ``GatewayRefusal`` value; ``""`` when the account is fine): the gateway's own answer
        hides it behind "no account" or "upstream request failed" (§9.5).

        ``status:error`` is the host's verdict on a 401/402/403 (``error_message`` says which:
        "Payment required (402): …" is a key out of balance or quota, "Authentication failed
        (401)"/"Access forbidden (403)" a refused key); ``rate_limit_reset_at`` in the future
        is a 429; a temporary pause is quota when its reason speaks of balance or quota."""
        if self.status == "error":
            if QUOTA_WORDS.search(self.error_message):
                return GatewayRefusal.UPSTREAM_QUOTA
            return GatewayRefusal.UPSTREAM_AUTH
        if self.rate_limit_reset_at is not None and _after(self.rate_limit_reset_at, now):
            return GatewayRefusal.UPSTREAM_RATE_LIMITED
        paused = self.temp_unschedulable_until
        if paused is not None and _after(paused, now):
            if QUOTA_WORDS.search(self.temp_unschedulable_reason):
                return GatewayRefusal.UPSTREAM_QUOTA
            return GatewayRefusal.UPSTREAM_RATE_LIMITED
        return ""


# How the host words an upstream's "no money left" (ratelimit_service: 402 → "Payment required
# (402): …", Chinese providers' insufficient balance, OpenAI's insufficient_quota).
QUOTA_WORDS = re.compile(r"\(402\)|payment required|insufficient|balance|quota|余额|额度", re.I)


def _after(moment: datetime, now: datetime) -> bool:
    """``moment > now``, a naive host time read as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment > now


class TestEvent(HostRecord):
    """One ``data:`` line of the account-test stream (§4.7)."""

    __test__ = False  # not a pytest class, despite the name

    type: Text = ""
    text: Text = ""
    model: Text = ""
    success: Annotated[
        bool | None, BeforeValidator(lambda v: v if isinstance(v, bool) else None)
    ] = None
    error: Text = ""


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


class HostModel(HostRecord):
    """A model entry of ``/admin/accounts/:id/models`` or the gateway's ``/v1/models``."""

    id: Text
    display_name: Text = ""
    owned_by: Text = ""


class User(HostRecord):
    id: int
    email: Text = ""
    username: Text = ""
    role: Text = ""
    status: Text = ""
    balance: Number = 0.0
    concurrency: Count = 0
    allowed_groups: Ids = ()


class Subscription(HostRecord):
    id: int
    user_id: int
    group_id: int
    status: Text = ""  # active | expired | suspended
    starts_at: Time = None
    expires_at: Time = None
    notes: Text = ""


@dataclass(frozen=True)
class UserSession:
    """A logged-in host user: the JWT for ``/api/v1/keys`` (§8.1)."""

    user: User
    access_token: Secret


class ApiKey(HostRecord):
    id: int
    user_id: int
    name: Text = ""
    # A key bound to no group says null or 0.
    group_id: Annotated[int | None, BeforeValidator(lambda v: None if v in (None, 0) else v)] = None
    status: Text = ""
    key: Annotated[
        Secret, BeforeValidator(lambda v: v if isinstance(v, Secret) else Secret(str(v or "")))
    ]


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
    # Read from the admin API when the gateway's answer hides it (``Account.upstream_refusal``):
    # the account's upstream rate-limited it (passes), refused its key, or has no money left.
    UPSTREAM_RATE_LIMITED = "upstream_rate_limited"
    UPSTREAM_AUTH = "upstream_auth"
    UPSTREAM_QUOTA = "upstream_quota"
    LASTING = frozenset(
        {CHANNEL_RESTRICTED, MODEL_NOT_FOUND, KEY_QUOTA, UPSTREAM_AUTH, UPSTREAM_QUOTA}
    )


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
