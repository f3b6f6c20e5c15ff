"""User-side routes of the simulator: login (§8.1), the user's API keys and group binding
(§8.2)."""

from __future__ import annotations

import re
import secrets
from typing import Any

from hosts.simulator.rows import SimKey, SimUser, iso, utcnow
from hosts.simulator.wire import Ctx, bad_request, fail, ok, paginate, parse_id, required_tag
from relay_project.loopback_http import Abort, Response, Router

router: Router[Ctx] = Router()
CUSTOM_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")


@router.route("POST", "/api/v1/auth/login", auth="none")
def login(ctx: Ctx) -> Response:
    body = ctx.json_object()
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not email:
        raise required_tag("LoginRequest", "email")
    if not isinstance(password, str) or not password:
        raise required_tag("LoginRequest", "password")
    state = ctx.state
    with state.lock:
        user = state.user_by_email(email)
        if user is None or not secrets.compare_digest(user.password, password):
            raise fail(401, "invalid email or password", "INVALID_CREDENTIALS")
        if user.status != "active":
            raise fail(403, "user is not active", "USER_NOT_ACTIVE")
        token = state.issue_token(user)
        return ok({"access_token": token, "token_type": "Bearer", "user": user.dto(old=ctx.old)})


@router.route("GET", "/api/v1/auth/me", auth="user")
def me(ctx: Ctx) -> Response:
    assert ctx.user is not None
    return ok(ctx.user.dto(old=ctx.old))


def may_bind(ctx: Ctx, user: SimUser, group_id: int) -> None:
    """The group-binding rules of key create/update (§8.2)."""
    group = ctx.state.groups.get(group_id)
    if group is None:
        raise fail(404, "group not found", "GROUP_NOT_FOUND")
    if group.subscription_type == "subscription":
        sub = ctx.state.subscription_for(user.id, group.id)
        allowed = sub is not None and sub.current_status() == "active"
    elif group.is_exclusive:
        allowed = group.id in (user.allowed_groups or [])
    else:
        allowed = True
    if not allowed:
        raise fail(403, "user is not allowed to bind this group", "GROUP_NOT_ALLOWED")


def _own_key(ctx: Ctx) -> SimKey:
    assert ctx.user is not None
    key = ctx.state.keys.get(parse_id(ctx.params["id"], "API key"))
    if key is None or key.user_id != ctx.user.id:
        raise fail(404, "api key not found", "API_KEY_NOT_FOUND")
    return key


def _group_id(value: Any) -> int | None:
    if value in (None, 0):
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request("group_id must be an integer")
    return value


@router.route("GET", "/api/v1/keys", auth="user")
def keys_list(ctx: Ctx) -> Response:
    assert ctx.user is not None
    with ctx.state.lock:
        keys = [
            k.dto()
            for k in sorted(ctx.state.keys.values(), key=lambda k: k.id)
            if k.user_id == ctx.user.id
        ]
    return ok(paginate(keys, ctx.req.query, ctx.state.quirks.page_size_max))


@router.route("GET", "/api/v1/keys/{id}", auth="user")
def keys_get(ctx: Ctx) -> Response:
    with ctx.state.lock:
        return ok(_own_key(ctx).dto())


@router.route("POST", "/api/v1/keys", auth="user")
def keys_create(ctx: Ctx) -> Response:
    user = ctx.user
    assert user is not None
    body = ctx.json_object()
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise required_tag("CreateAPIKeyRequest", "name")
    group_id = _group_id(body.get("group_id"))
    custom = body.get("custom_key")
    with ctx.state.lock:
        if group_id is not None:
            may_bind(ctx, user, group_id)
        if custom:
            if len(custom) < 16:
                raise fail(400, "api key must be at least 16 characters", "API_KEY_TOO_SHORT")
            if not CUSTOM_KEY_RE.match(custom):
                raise fail(400, "api key contains invalid characters", "API_KEY_INVALID_CHARS")
            if ctx.state.keys.by_value(custom) is not None:
                raise fail(409, "api key already exists", "API_KEY_EXISTS")
        key = SimKey(
            id=ctx.state.new_id("key"),
            user_id=user.id,
            key=custom or "sk-" + secrets.token_hex(32),
            name=name,
            group_id=group_id,
        )
        ctx.state.keys[key.id] = key
        return ok(key.dto())


@router.route("PUT", "/api/v1/keys/{id}", auth="user")
def keys_update(ctx: Ctx) -> Response:
    assert ctx.user is not None
    body = ctx.json_object()
    with ctx.state.lock:
        key = _own_key(ctx)
        if body.get("name"):
            key.name = str(body["name"])
        if "group_id" in body and body["group_id"] is not None:
            group_id = _group_id(body["group_id"])
            if group_id is not None and group_id != key.group_id:
                may_bind(ctx, ctx.user, group_id)
            key.group_id = group_id
        if body.get("status"):
            if body["status"] not in ("active", "inactive"):
                raise bad_request("status must be active or inactive")
            key.status = body["status"]
        key.updated_at = iso(utcnow())
        return ok(key.dto())


@router.route("DELETE", "/api/v1/keys/{id}", auth="user")
def keys_delete(ctx: Ctx) -> Response:
    with ctx.state.lock:
        key = _own_key(ctx)
        del ctx.state.keys[key.id]
    return ok({"message": "API key deleted successfully"})


@router.route("GET", "/api/v1/groups/available", auth="user")
def groups_available(ctx: Ctx) -> Response:
    user = ctx.user
    assert user is not None
    available = []
    with ctx.state.lock:
        for group in sorted(ctx.state.groups.values(), key=lambda g: g.id):
            if group.status != "active":
                continue
            try:
                may_bind(ctx, user, group.id)
            except Abort:  # not bindable for this user
                continue
            available.append(group.dto())
    return ok(available)
