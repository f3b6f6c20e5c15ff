"""In-memory state of the host simulator: its rows (``rows.py``), quirks, request log.

Nothing here touches the Django database; tests read ``sim.state.accounts`` and friends (dicts
keyed by host id) directly. Every mutation happens under ``SimState.lock``.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hosts.simulator.rows import (
    RecordedRequest,
    SimChannel,
    SimGroup,
    SimSubscription,
    SimToken,
    SimUser,
    utcnow,
)
from hosts.simulator.tables import AccountTable, ChannelTable, KeyTable, SubscriptionTable

NEW_VERSION = "0.1.115.1"
OLD_VERSION = "0.1.1"  # what the [OLD] build (tagged v0.1.27) reports
# openai.DefaultModels of each era (§4.8); emitted when an account or group has no mapping.
NEW_DEFAULT_MODELS = ("gpt-5.5", "gpt-5.4", "gpt-5.4-mini", "gpt-5.3-codex", "gpt-5.2")
OLD_DEFAULT_MODELS = (
    "gpt-5.2",
    "gpt-5.2-codex",
    "gpt-5.1-codex-max",
    "gpt-5.1-codex",
    "gpt-5.1",
    "gpt-5.1-codex-mini",
    "gpt-5",
)
NEW_DEFAULT_TEST_MODEL = "gpt-5.4"
OLD_DEFAULT_TEST_MODEL = "gpt-5.1-codex"
REQUEST_LOG_SIZE = 5000


@dataclass
class Quirks:
    """Switchable behaviour; change attributes at any time (``sim.quirks.probe_403 = True``)."""

    old: bool = False  # [OLD] build: no channels, no chat completions, full credentials, 409s
    # Fault injection (not the host's behaviour): the first test of every account fails with
    # SSE error "API returned 403: Forbidden", whatever the upstream says.
    probe_403: bool = False
    warmup_seconds: float = 0.0  # gateway 503 this long after an account appears/reactivates
    responses_probe: bool = True  # [NEW] /v1/responses probe on account create/update
    # How long that probe takes in the background after the answer (§13): until it settles,
    # the account test and the gateway still send the account's requests to /v1/responses.
    responses_probe_seconds: float = 0.5
    # What the gateway answers when no account can take a request (§13, build-dependent):
    # "generic" (current [NEW] chat handler: 503 api_error "Service temporarily unavailable"),
    # "detailed" (older builds: 503 "No available accounts: …"), "classified" (builds with
    # classifyNoAccountError: 404 model_not_found when the group's accounts do not map the
    # model, 429 when every account that maps it is rate-limited, else 503).
    no_account: str = "generic"
    # How long an upstream 429 met while forwarding pauses the account (ratelimit_service
    # handle429 → SetRateLimited; builds read the upstream's reset headers, else a fixed
    # cooldown of 5 s to 5 min).
    rate_limit_cooldown_seconds: float = 60.0
    # Builds with admin_service.applyMaskedKeys list group keys masked (§13): "sk-abc...wxyz".
    masked_group_keys: bool = False
    # Builds before the current API-key middleware take only exactly "Bearer <key>" (the
    # scheme compared with ==, the key not trimmed); the current one folds the scheme's case
    # and trims the key (§13). Anything else falls through to x-api-key.
    bearer_exact: bool = False
    version: str = ""  # override the reported version
    jwt_ttl_seconds: float = 3600.0

    @property
    def effective_version(self) -> str:
        return self.version or (OLD_VERSION if self.old else NEW_VERSION)

    @property
    def page_size_max(self) -> int:
        return 100 if self.old else 1000

    @property
    def default_models(self) -> tuple[str, ...]:
        return OLD_DEFAULT_MODELS if self.old else NEW_DEFAULT_MODELS

    @property
    def default_test_model(self) -> str:
        return OLD_DEFAULT_TEST_MODEL if self.old else NEW_DEFAULT_TEST_MODEL


@dataclass
class FailRule:
    """Fail (or delay) the next ``remaining`` requests matching method + path prefix."""

    method: str
    path_prefix: str
    remaining: int = 1
    status: int | None = None
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and self.method in ("*", method)
            and path.startswith(self.path_prefix)
        )


class SimState:
    def __init__(
        self, *, admin_key: str, admin_email: str, admin_password: str, quirks: Quirks
    ) -> None:
        self.lock = threading.RLock()
        self.quirks = quirks
        self.admin_key = admin_key
        self.groups: dict[int, SimGroup] = {}
        self.channels = ChannelTable()
        self.accounts = AccountTable()
        self.users: dict[int, SimUser] = {}
        self.subscriptions = SubscriptionTable()
        self.keys = KeyTable()
        self.tokens: dict[str, SimToken] = {}
        # Idempotency-Key → the answer it got (None while the first request is served).
        self.idempotent_replies: dict[str, Any] = {}
        self.requests: deque[RecordedRequest] = deque(maxlen=REQUEST_LOG_SIZE)
        self.fail_rules: list[FailRule] = []
        self._counters: dict[str, itertools.count[int]] = {}
        admin = SimUser(
            id=self.new_id("user"), email=admin_email, password=admin_password, role="admin"
        )
        admin.username, admin.balance = "admin", 0.0
        self.users[admin.id] = admin

    def new_id(self, kind: str) -> int:
        return next(self._counters.setdefault(kind, itertools.count(1)))

    def issue_token(self, user: SimUser) -> str:
        token = "simjwt." + secrets.token_hex(24)
        self.tokens[token] = SimToken(user.id, time.monotonic() + self.quirks.jwt_ttl_seconds)
        return token

    def expire_tokens(self) -> None:
        """Every JWT issued so far answers 401 TOKEN_EXPIRED from now on."""
        with self.lock:
            for token in self.tokens.values():
                token.expires_at = 0.0

    def take_fail_rule(self, method: str, path: str) -> FailRule | None:
        with self.lock:
            for rule in self.fail_rules:
                if rule.matches(method, path):
                    rule.remaining -= 1
                    return rule
        return None

    def user_by_email(self, email: str) -> SimUser | None:
        wanted = email.strip().lower()
        return next((u for u in self.users.values() if u.email.lower() == wanted), None)

    def channel_for_group(self, group_id: int) -> SimChannel | None:
        return self.channels.for_group(group_id)

    def subscription_for(self, user_id: int, group_id: int) -> SimSubscription | None:
        found = self.subscriptions.of(user_id, group_id)
        found.sort(key=lambda s: (s.current_status() != "active", -s.id))
        return found[0] if found else None

    def new_subscription(
        self, user_id: int, group_id: int, days: int, notes: str, assigned_by: int | None
    ) -> SimSubscription:
        now = utcnow()
        sub = SimSubscription(
            id=self.new_id("subscription"),
            user_id=user_id,
            group_id=group_id,
            starts_at=now,
            expires_at=now + timedelta(days=days),
            notes=notes,
            assigned_by=assigned_by,
        )
        self.subscriptions[sub.id] = sub
        return sub
