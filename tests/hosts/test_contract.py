"""Contract of a sub2api host, written from docs/sub2api-host-api.md (not from the adapter).

Raw HTTP only. Every test runs against the simulator in [NEW] and [OLD] mode and, when
``SUB2API_BASE_URL`` and ``SUB2API_ADMIN_KEY`` are set, against a real host (optionally
``SUB2API_ADMIN_EMAIL`` / ``SUB2API_ADMIN_PASSWORD`` for the JWT checks). The test suite only
allows loopback connections, so reach a remote host through a tunnel, e.g.
``ssh -L 18080:127.0.0.1:8080 host`` and ``SUB2API_BASE_URL=http://127.0.0.1:18080``.

On a real host every resource is named ``rm-contract-<run>-…`` and deleted afterwards; accounts
point at ``http://127.0.0.1:9`` so that nothing is ever sent to a real upstream.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest

DEAD_UPSTREAM = "http://127.0.0.1:9"
ADMIN = "/api/v1/admin"


@dataclass
class Target:
    base_url: str
    admin_key: str
    old: bool
    kind: str
    admin_email: str = ""
    admin_password: str = ""
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    created: list[str] = field(default_factory=list)  # admin DELETE paths, undone in reverse
    user_keys: list[tuple[str, int]] = field(default_factory=list)  # (user JWT, key id)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, self.base_url + path, **kwargs)

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"x-api-key": self.admin_key, **kwargs.pop("headers", {})}
        return self.call(method, ADMIN + path, headers=headers, **kwargs)

    def name(self, label: str) -> str:
        return f"rm-contract-{self.run}-{label}"

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.admin("POST", path, json=body)
        data = envelope(response)
        self.created.append(f"{path}/{data['id']}")
        return data

    def group(self, label: str = "g", **fields: Any) -> dict[str, Any]:
        body = {"name": self.name(label), "platform": "openai", "rate_multiplier": 1.0, **fields}
        return self.create("/groups", body)

    def account(self, label: str = "a", **fields: Any) -> dict[str, Any]:
        credentials = {"api_key": "sk-contract-upstream", "base_url": DEAD_UPSTREAM}
        credentials.update(fields.pop("credentials", {}))
        body = {
            "name": self.name(label),
            "platform": "openai",
            "type": "apikey",
            "credentials": credentials,
            "concurrency": 1,
            "priority": 50,
            **fields,
        }
        return self.create("/accounts", body)

    def user(self, label: str = "u", **fields: Any) -> dict[str, Any]:
        body = {"email": f"{self.name(label)}@example.com", "password": "contract-pw", **fields}
        return self.create("/users", body)

    def login(self, email: str, password: str = "contract-pw") -> str:
        response = self.call(
            "POST", "/api/v1/auth/login", json={"email": email, "password": password}
        )
        return envelope(response)["access_token"]

    def user_key(self, user: dict[str, Any], group_id: int | None) -> dict[str, Any]:
        token = self.login(user["email"])
        response = self.call(
            "POST",
            "/api/v1/keys",
            json={"name": self.name("key"), "group_id": group_id},
            headers={"Authorization": f"Bearer {token}"},
        )
        key = envelope(response)
        self.user_keys.append((token, key["id"]))
        return key

    def cleanup(self) -> None:
        for token, key_id in self.user_keys:
            self.call(
                "DELETE", f"/api/v1/keys/{key_id}", headers={"Authorization": f"Bearer {token}"}
            )
        for path in reversed(self.created):
            self.admin("DELETE", path)
        self.http.close()


def envelope(response: httpx.Response) -> Any:
    """Assert the handler success envelope (§1.4) and return ``data``."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 0 and body["message"] == "success", body
    return body.get("data")


def handler_error(response: httpx.Response, status: int, reason: str | None = None) -> dict:
    """Assert the handler error envelope: numeric code equal to the HTTP status."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status and isinstance(body["message"], str)
    if reason is not None:
        assert body.get("reason") == reason, body
    return body


def flat_error(response: httpx.Response, status: int, code: str) -> None:
    """Assert the middleware shape: a string code and no data (§1.3)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and isinstance(body["message"], str) and "data" not in body


REAL_HOST = bool(os.environ.get("SUB2API_BASE_URL") and os.environ.get("SUB2API_ADMIN_KEY"))
TARGETS = ["simulator", "simulator-old", *(["real-host"] if REAL_HOST else [])]


def _real_target() -> Target:
    target = Target(
        os.environ["SUB2API_BASE_URL"].rstrip("/"),
        os.environ["SUB2API_ADMIN_KEY"],
        old=False,
        kind="real",
        admin_email=os.environ.get("SUB2API_ADMIN_EMAIL", ""),
        admin_password=os.environ.get("SUB2API_ADMIN_PASSWORD", ""),
    )
    target.old = target.admin("GET", "/channels").status_code == 404  # channels are [NEW] only
    return target


@pytest.fixture(params=TARGETS)
def host(request, host_simulator_factory) -> Iterator[Target]:
    if request.param == "real-host":
        target = _real_target()
    else:
        sim = host_simulator_factory(old=request.param == "simulator-old")
        target = Target(
            sim.url,
            sim.admin_key,
            old=sim.quirks.old,
            kind="simulator",
            admin_email=sim.admin_email,
            admin_password=sim.admin_password,
        )
    yield target
    target.cleanup()


@pytest.mark.skipif(REAL_HOST, reason="a real host is configured")
def test_contract_real_host_not_configured():
    pytest.skip("set SUB2API_BASE_URL and SUB2API_ADMIN_KEY to run this suite against a real host")


# --- §1 conventions -------------------------------------------------------------------------


def test_contract_health_has_no_envelope(host):
    response = host.call("GET", "/health")
    assert response.json() == {"status": "ok"}


def test_contract_admin_without_credentials_is_unauthorized(host):
    flat_error(host.call("GET", ADMIN + "/groups"), 401, "UNAUTHORIZED")


def test_contract_admin_bad_key_is_rejected_even_with_valid_bearer(host):
    headers = {"x-api-key": "admin-" + "0" * 64}
    if host.admin_email and host.admin_password:
        token = host.login(host.admin_email, host.admin_password)
        headers["Authorization"] = f"Bearer {token}"
    flat_error(host.call("GET", ADMIN + "/groups", headers=headers), 401, "INVALID_ADMIN_KEY")


def test_contract_admin_jwt_is_accepted(host):
    if not (host.admin_email and host.admin_password):
        pytest.skip("no admin email/password for this host")
    token = host.login(host.admin_email, host.admin_password)
    response = host.call(
        "GET", ADMIN + "/system/version", headers={"Authorization": f"Bearer {token}"}
    )
    assert isinstance(envelope(response)["version"], str)


def test_contract_version_is_a_plain_string(host):
    version = envelope(host.admin("GET", "/system/version"))["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.\d+)?(-\w+)?", version)
    assert (version == "0.1.1") == host.old or host.kind == "real"


def test_contract_pagination_shape_and_size_fallback(host):
    for label in ("p1", "p2", "p3"):
        host.group(label)
    data = envelope(host.admin("GET", "/groups", params={"page": 1, "page_size": 2}))
    assert set(data) >= {"items", "total", "page", "page_size", "pages"}
    assert (len(data["items"]), data["page_size"]) == (2, 2)
    assert data["pages"] == -(-data["total"] // 2)
    too_big = envelope(host.admin("GET", "/groups", params={"page_size": 5000}))
    assert too_big["page_size"] == 20  # above the maximum falls back to the default
    empty = envelope(host.admin("GET", "/groups", params={"page": 10_000, "page_size": 100}))
    assert empty["items"] == [] and empty["pages"] >= 1


def test_contract_bad_path_id_is_400(host):
    handler_error(host.admin("GET", "/accounts/abc"), 400)


# --- §3 groups ------------------------------------------------------------------------------


def test_contract_group_create_answers_200_with_dto(host):
    group = host.group(subscription_type="subscription")
    assert group["name"] == host.name("g")
    assert (group["platform"], group["status"], group["subscription_type"]) == (
        "openai",
        "active",
        "subscription",
    )
    assert group["rate_multiplier"] == 1


def test_contract_group_platform_defaults_to_anthropic(host):
    group = host.create("/groups", {"name": host.name("anth"), "rate_multiplier": 1})
    assert group["platform"] == "anthropic"


def test_contract_group_duplicate_name_is_409(host):
    host.group()
    response = host.admin("POST", "/groups", json={"name": host.name("g"), "rate_multiplier": 1})
    handler_error(response, 409, "GROUP_EXISTS")


def test_contract_group_nonpositive_rate_is_internal_error_on_new(host):
    if host.old:
        pytest.skip("[OLD] stores the value as sent")
    response = host.admin("POST", "/groups", json={"name": host.name("zero"), "rate_multiplier": 0})
    body = handler_error(response, 500)
    assert body["message"] == "internal error"


def test_contract_group_not_found_is_404_with_reason(host):
    handler_error(host.admin("GET", "/groups/999999999"), 404, "GROUP_NOT_FOUND")


def test_contract_groups_all_is_a_bare_array(host):
    group = host.group()
    data = envelope(host.admin("GET", "/groups/all"))
    assert isinstance(data, list)
    assert group["id"] in [g["id"] for g in data]


def test_contract_group_update_is_partial(host):
    group = host.group(description="keep me")
    data = envelope(host.admin("PUT", f"/groups/{group['id']}", json={"is_exclusive": True}))
    assert data["is_exclusive"] is True and data["description"] == "keep me"


# --- §4 accounts ----------------------------------------------------------------------------


def test_contract_account_starts_active_and_schedulable(host):
    account = host.account()
    assert (account["status"], account["schedulable"]) == ("active", True)
    assert account["credentials"]["base_url"] == DEAD_UPSTREAM


def test_contract_account_credentials_redacted_on_new_full_on_old(host):
    credentials = host.account()["credentials"]
    if host.old:
        assert credentials["api_key"] == "sk-contract-upstream"
    else:
        assert "api_key" not in credentials
        fetched = envelope(host.admin("GET", host.created[-1].removeprefix(ADMIN)))
        assert fetched["credentials_status"]["has_api_key"] is True


def test_contract_account_names_are_not_unique(host):
    first, second = host.account("same"), host.account("same")
    assert first["id"] != second["id"]


def test_contract_account_not_found_is_404_with_reason(host):
    handler_error(host.admin("GET", "/accounts/999999999"), 404, "ACCOUNT_NOT_FOUND")


def test_contract_account_models_follow_mapping_keys(host):
    mapped = host.account(credentials={"model_mapping": {"alias-a": "up-a", "alias-b": "up-b"}})
    models = envelope(host.admin("GET", f"/accounts/{mapped['id']}/models"))
    assert sorted(m["id"] for m in models) == ["alias-a", "alias-b"]
    assert set(models[0]) >= {"id", "object", "created", "owned_by", "type", "display_name"}


def test_contract_account_models_default_without_mapping(host):
    plain = host.account()
    models = envelope(host.admin("GET", f"/accounts/{plain['id']}/models"))
    assert models and all(m["id"].startswith("gpt-") for m in models)


def test_contract_account_test_is_sse_with_terminal_event(host):
    account = host.account()
    response = host.admin("POST", f"/accounts/{account['id']}/test", json={})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in response.text.split("\n") if line]
    assert all(line.startswith("data: ") for line in lines)
    events = [httpx.Response(200, content=line[6:]).json() for line in lines]
    assert events[0]["type"] == "test_start"
    assert events[-1]["type"] in ("test_complete", "error")
    assert events[-1]["type"] == "error"  # the upstream is dead


def test_contract_account_schedulable_and_clear_error_return_the_account(host):
    account = host.account()
    off = envelope(
        host.admin("POST", f"/accounts/{account['id']}/schedulable", json={"schedulable": False})
    )
    cleared = envelope(host.admin("POST", f"/accounts/{account['id']}/clear-error"))
    assert (off["id"], off["schedulable"]) == (account["id"], False)
    assert (cleared["status"], cleared["error_message"]) == ("active", "")


def test_contract_account_update_binds_groups(host):
    group, account = host.group(), host.account()
    data = envelope(
        host.admin("PUT", f"/accounts/{account['id']}", json={"group_ids": [group["id"]]})
    )
    assert data["group_ids"] == [group["id"]]


# --- §5 channels ----------------------------------------------------------------------------


def test_contract_channels_absent_on_old(host):
    if not host.old:
        pytest.skip("[NEW] has channels")
    assert host.admin("GET", "/channels").status_code == 404


def test_contract_channel_defaults_and_conflicts(host):
    if host.old:
        pytest.skip("[OLD] has no channels")
    group = host.group()
    channel = host.create(
        "/channels",
        {
            "name": host.name("ch"),
            "group_ids": [group["id"]],
            "model_mapping": {"openai": {"alias": "canon"}},
            "model_pricing": [{"models": ["canon"], "input_price": 1e-7}],
        },
    )
    assert channel["billing_model_source"] == "channel_mapped"
    assert channel["model_pricing"][0]["platform"] == "anthropic"  # omitted → anthropic
    assert channel["account_stats_pricing_rules"] == []
    same_name = host.admin("POST", "/channels", json={"name": host.name("ch")})
    handler_error(same_name, 409, "CHANNEL_EXISTS")
    same_group = host.admin(
        "POST", "/channels", json={"name": host.name("ch2"), "group_ids": [group["id"]]}
    )
    handler_error(same_group, 409, "GROUP_ALREADY_IN_CHANNEL")


def test_contract_channel_put_is_partial_and_mapping_replaces(host):
    if host.old:
        pytest.skip("[OLD] has no channels")
    channel = host.create(
        "/channels",
        {"name": host.name("ch"), "restrict_models": True, "model_mapping": {"openai": {"a": "b"}}},
    )
    updated = envelope(
        host.admin(
            "PUT", f"/channels/{channel['id']}", json={"model_mapping": {"openai": {"c": "d"}}}
        )
    )
    assert updated["restrict_models"] is True
    assert updated["model_mapping"] == {"openai": {"c": "d"}}


# --- §6 users, §7 subscriptions ---------------------------------------------------------------


def test_contract_user_role_is_forced_and_email_unique(host):
    user = host.user(role="admin")
    assert (user["role"], user["status"]) == ("user", "active")
    again = host.admin("POST", "/users", json={"email": user["email"], "password": "contract-pw"})
    handler_error(again, 409, "EMAIL_EXISTS")


def test_contract_user_balance_set(host):
    user = host.user()
    data = envelope(
        host.admin(
            "POST", f"/users/{user['id']}/balance", json={"balance": 7.5, "operation": "set"}
        )
    )
    assert data["balance"] == 7.5


def test_contract_subscription_needs_subscription_group(host):
    group, user = host.group(), host.user()
    response = host.admin(
        "POST", "/subscriptions/assign", json={"user_id": user["id"], "group_id": group["id"]}
    )
    handler_error(response, 400, "GROUP_NOT_SUBSCRIPTION_TYPE")


def test_contract_subscription_defaults_to_30_days_and_reassign(host):
    group, user = host.group(subscription_type="subscription"), host.user()
    body = {"user_id": user["id"], "group_id": group["id"]}
    sub = envelope(host.admin("POST", "/subscriptions/assign", json=body))
    host.created.append(f"/subscriptions/{sub['id']}")
    days = datetime.fromisoformat(sub["expires_at"]) - datetime.fromisoformat(sub["starts_at"])
    assert round(days.total_seconds() / 86400) == 30
    again = host.admin("POST", "/subscriptions/assign", json=body)
    if host.old:
        handler_error(again, 409, "SUBSCRIPTION_ALREADY_EXISTS")
    else:
        assert envelope(again)["id"] == sub["id"]
        # §13: other terms are a conflict that names its reason, not a silent reuse.
        longer = host.admin("POST", "/subscriptions/assign", json={**body, "validity_days": 60})
        handler_error(longer, 409, "SUBSCRIPTION_ASSIGN_CONFLICT")
        assert longer.json()["metadata"] == {"conflict_reason": "validity_days_mismatch"}
    extended = envelope(host.admin("POST", f"/subscriptions/{sub['id']}/extend", json={"days": 5}))
    gained = datetime.fromisoformat(extended["expires_at"]) - datetime.fromisoformat(
        sub["expires_at"]
    )
    assert round(gained.total_seconds() / 86400) == 5


# --- §8 login and keys ----------------------------------------------------------------------


def test_contract_login_and_generated_user_key(host):
    group, user = host.group(), host.user()
    key = host.user_key(user, group["id"])
    assert re.fullmatch(r"sk-[0-9a-f]{64}", key["key"])
    assert (key["group_id"], key["status"]) == (group["id"], "active")


def test_contract_key_binding_rules(host):
    exclusive = host.group("excl", is_exclusive=True)
    subscription = host.group("sub", subscription_type="subscription")
    user = host.user()
    token = host.login(user["email"])
    for group in (exclusive, subscription):
        response = host.call(
            "POST",
            "/api/v1/keys",
            headers={"Authorization": f"Bearer {token}"},
            json={"name": host.name("k"), "group_id": group["id"]},
        )
        handler_error(response, 403, "GROUP_NOT_ALLOWED")


# --- §9 gateway -----------------------------------------------------------------------------


def test_contract_gateway_key_errors_are_flat(host):
    flat_error(host.call("GET", "/v1/models"), 401, "API_KEY_REQUIRED")
    bad = host.call("GET", "/v1/models", headers={"Authorization": "Bearer sk-" + "0" * 64})
    flat_error(bad, 401, "INVALID_API_KEY")


def test_contract_gateway_balance_and_subscription_checks(host):
    standard, user = host.group("std"), host.user(balance=0)
    key = host.user_key(user, standard["id"])
    response = host.call("GET", "/v1/models", headers={"Authorization": f"Bearer {key['key']}"})
    flat_error(response, 403, "INSUFFICIENT_BALANCE")
    subscribed = host.group("sub", subscription_type="subscription")
    sub = envelope(
        host.admin(
            "POST",
            "/subscriptions/assign",
            json={"user_id": user["id"], "group_id": subscribed["id"]},
        )
    )
    key2 = host.user_key(user, subscribed["id"])
    host.admin("DELETE", f"/subscriptions/{sub['id']}")
    revoked = host.call("GET", "/v1/models", headers={"Authorization": f"Bearer {key2['key']}"})
    flat_error(revoked, 403, "SUBSCRIPTION_NOT_FOUND")


def test_contract_gateway_models_list_without_envelope(host):
    group = host.group(subscription_type="subscription")
    host.account(credentials={"model_mapping": {"contract-model": "up"}}, group_ids=[group["id"]])
    user = host.user()
    sub = envelope(
        host.admin(
            "POST", "/subscriptions/assign", json={"user_id": user["id"], "group_id": group["id"]}
        )
    )
    host.created.append(f"/subscriptions/{sub['id']}")
    key = host.user_key(user, group["id"])
    response = host.call("GET", "/v1/models", headers={"Authorization": f"Bearer {key['key']}"})
    body = response.json()
    assert response.status_code == 200 and body["object"] == "list" and "code" not in body
    ids = [m["id"] for m in body["data"]]
    if host.old:
        assert "contract-model" not in ids  # static defaults
    else:
        assert "contract-model" in ids


def test_contract_gateway_no_account_is_503_or_absent_route(host):
    group, user = host.group(), host.user()
    envelope(
        host.admin("POST", f"/users/{user['id']}/balance", json={"balance": 1, "operation": "set"})
    )
    key = host.user_key(user, group["id"])
    response = host.call(
        "POST",
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key['key']}"},
        json={"model": "nobody-serves-this", "messages": [{"role": "user", "content": "hi"}]},
    )
    if host.old:
        assert response.status_code == 404  # no chat-completions route on [OLD]
        return
    error = response.json()["error"]
    if response.status_code == 404:  # builds with classifyNoAccountError (§13)
        assert error["type"] == "model_not_found"
        return
    assert response.status_code == 503
    assert error["type"] == "api_error"
    assert "No available accounts" in error["message"] or error["message"] == (
        "Service temporarily unavailable"
    )
