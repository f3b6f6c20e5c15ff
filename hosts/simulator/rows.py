"""Rows of the simulated host and the DTOs it answers with (shapes of §3.4, §4.3, §5.5, §6,
§7, §8.2). ``old`` switches to the [OLD] shape where the two differ."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

SENSITIVE_CREDENTIALS = frozenset(
    {"api_key", "access_token", "refresh_token", "id_token", "session_key", "cookie"}
)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utcnow() -> datetime:
    return datetime.now(UTC)


def match_pattern(pattern: str, model: str, *, fold_case: bool = False) -> bool:
    """Exact name or trailing-``*`` prefix wildcard (account and channel mappings, pricing)."""
    if fold_case:
        pattern, model = pattern.lower(), model.lower()
    if pattern.endswith("*"):
        return model.startswith(pattern[:-1])
    return pattern == model


def resolve_mapping(mapping: Mapping[str, Any], model: str) -> str | None:
    """Exact keys first, then wildcards in configuration order; None when nothing matches."""
    value = mapping.get(model)
    if isinstance(value, str):
        return value
    for key, target in mapping.items():
        if key.endswith("*") and match_pattern(key, model) and isinstance(target, str):
            return target
    return None


class TableRow:
    """A row a ``tables.Table`` may hold: assigning an attribute named in ``INDEXED`` tells
    the table, which re-indexes the row; one named in ``WATCHED`` tells it what the row offers
    changed (``changing``/``changed``), and a dict named in ``WATCHED_DICTS`` is held as a
    ``RowDict`` that tells it of its own edits too. Copies and rows out of any table are plain."""

    INDEXED: ClassVar[frozenset[str]] = frozenset()
    WATCHED: ClassVar[frozenset[str]] = frozenset()
    WATCHED_DICTS: ClassVar[frozenset[str]] = frozenset()

    def __setattr__(self, name: str, value: Any) -> None:
        told = name in self.INDEXED or name in self.WATCHED
        table = self.__dict__.get("_table") if told else None
        if table is None or not table.holds(self):
            object.__setattr__(self, name, value)
        elif name in self.INDEXED:
            table.unindex(self)
            object.__setattr__(self, name, value)
            table.index(self)
        else:
            table.changing(self)
            object.__setattr__(self, name, value)
            self.watch_dicts()
            table.changed(self)

    def watch_dicts(self) -> None:
        """Hold each dict of ``WATCHED_DICTS`` as a ``RowDict`` of this row (a copy, once)."""
        for name in self.WATCHED_DICTS:
            value = self.__dict__.get(name)
            if isinstance(value, dict) and not (isinstance(value, RowDict) and value.row is self):
                object.__setattr__(self, name, RowDict.of(self, name, value))


class RowDict(dict[str, Any]):
    """A row's dict that tells the row's table of its edits, as assigning the attribute
    would (tests write ``account.credentials["model_mapping"] = …``). A dict held inside it is
    not watched: assign a new one."""

    # Built like a dict (as dataclasses.asdict and copy do), it belongs to no row.
    row: TableRow | None = None
    name = ""

    @classmethod
    def of(cls, row: TableRow, name: str, value: dict[str, Any]) -> RowDict:
        held = cls(value)
        held.row, held.name = row, name
        return held

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return dict, (dict(self),)  # a copy (copy, deepcopy, pickle) is a plain dict

    def _edit(self, edit: Any, *args: Any) -> Any:
        row = self.row
        table = row.__dict__.get("_table") if row is not None else None
        if table is None or row.__dict__.get(self.name) is not self or not table.holds(row):
            return edit(self, *args)
        table.changing(row)
        try:
            return edit(self, *args)
        finally:
            table.changed(row)

    def __setitem__(self, key: str, value: Any) -> None:
        self._edit(dict.__setitem__, key, value)

    def __delitem__(self, key: str) -> None:
        self._edit(dict.__delitem__, key)

    def __ior__(self, other: Any) -> RowDict:  # type: ignore[override,misc]
        self._edit(dict.update, other)
        return self

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._edit(lambda d: dict.update(d, *args, **kwargs))

    def pop(self, *args: Any) -> Any:
        return self._edit(dict.pop, *args)

    def popitem(self) -> tuple[str, Any]:
        return self._edit(dict.popitem)

    def setdefault(self, key: str, default: Any = None) -> Any:
        return self._edit(dict.setdefault, key, default)

    def clear(self) -> None:
        self._edit(dict.clear)


@dataclass
class SimGroup:
    id: int
    name: str
    platform: str = "anthropic"
    description: str = ""
    rate_multiplier: float = 1.0
    is_exclusive: bool = False
    status: str = "active"
    subscription_type: str = "standard"
    daily_limit_usd: float | None = None
    weekly_limit_usd: float | None = None
    monthly_limit_usd: float | None = None
    created_at: str = field(default_factory=lambda: iso(utcnow()))
    updated_at: str = field(default_factory=lambda: iso(utcnow()))

    def dto(self, account_count: int = 0) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "platform": self.platform,
            "rate_multiplier": self.rate_multiplier,
            "is_exclusive": self.is_exclusive,
            "status": self.status,
            "subscription_type": self.subscription_type,
            "daily_limit_usd": self.daily_limit_usd,
            "weekly_limit_usd": self.weekly_limit_usd,
            "monthly_limit_usd": self.monthly_limit_usd,
            "account_count": account_count,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class SimChannel(TableRow):
    INDEXED = frozenset({"group_ids"})  # tables.ChannelTable's index

    id: int
    name: str
    description: str = ""
    status: str = "active"
    billing_model_source: str = "channel_mapped"
    restrict_models: bool = False
    group_ids: list[int] = field(default_factory=list)
    model_mapping: dict[str, dict[str, str]] = field(default_factory=dict)
    model_pricing: list[dict[str, Any]] = field(default_factory=list)
    created_at: str = field(default_factory=lambda: iso(utcnow()))
    updated_at: str = field(default_factory=lambda: iso(utcnow()))

    def priced(self, platform: str, model: str) -> bool:
        """Whether ``model_pricing`` lists the model for the platform (restrict_models)."""
        return any(
            entry["platform"] == platform
            and any(match_pattern(p, model, fold_case=True) for p in entry["models"])
            for entry in self.model_pricing
        )

    def dto(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "billing_model_source": self.billing_model_source,
            "restrict_models": self.restrict_models,
            "features": "",
            "features_config": None,
            "group_ids": list(self.group_ids),
            "model_pricing": [dict(p) for p in self.model_pricing],
            "model_mapping": {k: dict(v) for k, v in self.model_mapping.items()},
            "apply_pricing_to_account_stats": False,
            "account_stats_pricing_rules": [],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class SimAccount(TableRow):
    INDEXED = frozenset({"name", "group_ids", "priority"})  # tables.AccountTable's indexes
    # What decides the models the account offers its groups' /v1/models (AccountTable).
    WATCHED = frozenset({"status", "schedulable", "credentials"})
    WATCHED_DICTS = frozenset({"credentials"})

    id: int
    name: str
    platform: str
    type: str
    credentials: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    concurrency: int = 0
    priority: int = 0
    status: str = "active"
    error_message: str = ""
    schedulable: bool = True
    group_ids: list[int] = field(default_factory=list)
    notes: str | None = None
    proxy_id: int | None = None
    # Monotonic time the account became usable (created or reactivated): gateway warm-up.
    available_since: float = field(default_factory=time.monotonic)
    # Monotonic time until which the account is rate-limited (the scheduler skips it), and
    # when that started (the DTO's rate_limited_at / rate_limit_reset_at, §4.3).
    rate_limited_until: float = 0.0
    rate_limited_at: str | None = None
    tests_run: int = 0
    created_at: str = field(default_factory=lambda: iso(utcnow()))
    updated_at: str = field(default_factory=lambda: iso(utcnow()))

    @property
    def model_mapping(self) -> dict[str, Any]:
        mapping = self.credentials.get("model_mapping")
        return mapping if isinstance(mapping, dict) else {}

    def supports(self, model: str) -> bool:
        return not self.model_mapping or resolve_mapping(self.model_mapping, model) is not None

    def upstream_model(self, model: str) -> str:
        return resolve_mapping(self.model_mapping, model) or model

    @property
    def chat_passthrough(self) -> bool:
        """Chat goes to the upstream as Chat Completions, not converted to the Responses API:
        the probe found no Responses API, or the operator forced chat (§9.4)."""
        return self.extra.get("openai_responses_supported") is False or (
            self.extra.get("openai_responses_mode") == "force_chat_completions"
        )

    def reactivated(self) -> None:
        self.available_since = time.monotonic()

    def rate_limit_left(self) -> float:
        return max(0.0, self.rate_limited_until - time.monotonic())

    def rate_limit_reset_at(self) -> str | None:
        left = self.rate_limit_left()
        return iso(utcnow() + timedelta(seconds=left)) if left else None

    def dto(self, *, old: bool) -> dict[str, Any]:
        if old:  # [OLD] returns credentials in full, api_key included
            credentials = dict(self.credentials)
        else:
            credentials = {
                k: v for k, v in self.credentials.items() if k not in SENSITIVE_CREDENTIALS
            }
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "platform": self.platform,
            "type": self.type,
            "credentials": credentials,
            "extra": dict(self.extra),
            "proxy_id": self.proxy_id,
            "concurrency": self.concurrency,
            "priority": self.priority,
            "status": self.status,
            "error_message": self.error_message,
            "last_used_at": None,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "schedulable": self.schedulable,
            "rate_limited_at": self.rate_limited_at if self.rate_limit_left() else None,
            "rate_limit_reset_at": self.rate_limit_reset_at(),
            "overload_until": None,
            "group_ids": list(self.group_ids),
            "current_concurrency": 0,
        }
        if not old:
            data["notes"] = self.notes
            data["rate_multiplier"] = 1
            data["expires_at"] = None
            data["credentials_status"] = {
                f"has_{k}": bool(self.credentials.get(k))
                for k in sorted(SENSITIVE_CREDENTIALS)
                if k in self.credentials
            }
        return data


@dataclass
class SimUser:
    id: int
    email: str
    password: str
    username: str = ""
    role: str = "user"
    status: str = "active"
    balance: float = 0.0
    concurrency: int = 5
    allowed_groups: list[int] | None = None
    notes: str = ""
    created_at: str = field(default_factory=lambda: iso(utcnow()))
    updated_at: str = field(default_factory=lambda: iso(utcnow()))

    def dto(self, *, old: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "email": self.email,
            "username": self.username,
            "notes": self.notes,
            "role": self.role,
            "balance": self.balance,
            "concurrency": self.concurrency,
            "status": self.status,
            "allowed_groups": list(self.allowed_groups) if self.allowed_groups else None,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
        if old:
            data["wechat"] = ""
        return data


@dataclass
class SimSubscription(TableRow):
    INDEXED = frozenset({"user_id", "group_id"})  # tables.SubscriptionTable's index

    id: int
    user_id: int
    group_id: int
    starts_at: datetime
    expires_at: datetime
    status: str = "active"
    notes: str = ""
    assigned_by: int | None = None
    created_at: str = field(default_factory=lambda: iso(utcnow()))

    def current_status(self) -> str:
        if self.status == "active" and self.expires_at <= utcnow():
            return "expired"
        return self.status

    def dto(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "group_id": self.group_id,
            "starts_at": iso(self.starts_at),
            "expires_at": iso(self.expires_at),
            "status": self.current_status(),
            "daily_usage_usd": 0,
            "weekly_usage_usd": 0,
            "monthly_usage_usd": 0,
            "assigned_by": self.assigned_by,
            "assigned_at": self.created_at,
            "notes": self.notes,
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }


@dataclass
class SimKey(TableRow):
    INDEXED = frozenset({"key"})  # tables.KeyTable's index

    id: int
    user_id: int
    key: str
    name: str
    group_id: int | None = None
    status: str = "active"
    created_at: str = field(default_factory=lambda: iso(utcnow()))
    updated_at: str = field(default_factory=lambda: iso(utcnow()))

    def dto(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "key": self.key,
            "name": self.name,
            "group_id": self.group_id,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class SimToken:
    user_id: int
    expires_at: float  # monotonic


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    status: int
    body: Any = None  # parsed JSON body, if any
    auth: str = ""  # admin-key | admin-jwt | user-jwt | api-key | ""
