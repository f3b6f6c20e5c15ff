"""Admin routes of the simulator: version, groups (§3), users (§6), subscriptions (§7)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from hosts.simulator.state import SimGroup, SimUser, iso, utcnow
from hosts.simulator.wire import (
    Ctx,
    Response,
    Router,
    bad_request,
    fail,
    internal_error,
    json_response,
    ok,
    paginate,
    parse_id,
    required_tag,
)

router = Router()
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
OLD_PLATFORMS = ("anthropic", "openai", "gemini")
NEW_PLATFORMS = (*OLD_PLATFORMS, "antigravity")


@router.route("GET", "/health", auth="none")
def health(ctx: Ctx) -> Response:
    return json_response({"status": "ok"})  # no envelope


@router.route("GET", "/setup/status", auth="none")
def setup_status(ctx: Ctx) -> Response:
    return ok({"needs_setup": False, "step": "completed"})


@router.route("GET", "/api/v1/admin/system/version", auth="admin")
def version(ctx: Ctx) -> Response:
    return ok({"version": ctx.state.quirks.effective_version})


# --- groups ----------------------------------------------------------------------------------


def _group(ctx: Ctx, raw_id: str) -> SimGroup:
    group = ctx.state.groups.get(parse_id(raw_id, "group"))
    if group is None:
        raise fail(404, "group not found", "GROUP_NOT_FOUND")
    return group


def _group_dto(ctx: Ctx, group: SimGroup) -> dict[str, Any]:
    count = sum(1 for a in ctx.state.accounts.values() if group.id in a.group_ids)
    return group.dto(account_count=count)


def _limit(value: Any, field: str) -> float | None:
    if value is None or value == "":
        return None
    try:  # [NEW] also accepts numeric strings
        return float(value)
    except (TypeError, ValueError):
        raise bad_request(f"{field} must be a number") from None


def _check_choice(value: Any, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise bad_request(
            f"Key: 'Request.{field}' Error:Field validation for '{field}' failed on the 'oneof' tag"
        )
    return value


def _rate(ctx: Ctx, value: Any) -> float:
    try:
        rate = float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        raise bad_request("rate_multiplier must be a number") from None
    if rate <= 0 and not ctx.old:
        raise internal_error()  # [NEW] rejects it with an untyped error (§3.2)
    return rate


@router.route("GET", "/api/v1/admin/groups/all", auth="admin")
def groups_all(ctx: Ctx) -> Response:
    platform = ctx.req.query.get("platform")
    with ctx.state.lock:
        groups = [
            _group_dto(ctx, g)
            for g in sorted(ctx.state.groups.values(), key=lambda g: g.id)
            if g.status == "active" and (not platform or g.platform == platform)
        ]
    return ok(groups)  # a bare array, not paginated


@router.route("GET", "/api/v1/admin/groups", auth="admin")
def groups_list(ctx: Ctx) -> Response:
    q = ctx.req.query
    search = "" if ctx.old else q.get("search", "").strip().lower()[:100]
    with ctx.state.lock:
        groups = [
            _group_dto(ctx, g)
            for g in sorted(ctx.state.groups.values(), key=lambda g: g.id)
            if (not q.get("platform") or g.platform == q["platform"])
            and (not q.get("status") or g.status == q["status"])
            and (not q.get("is_exclusive") or str(g.is_exclusive).lower() == q["is_exclusive"])
            and (not search or search in g.name.lower())
        ]
    return ok(paginate(groups, q, ctx.state.quirks.page_size_max))


@router.route("GET", "/api/v1/admin/groups/{id}", auth="admin")
def groups_get(ctx: Ctx) -> Response:
    with ctx.state.lock:
        return ok(_group_dto(ctx, _group(ctx, ctx.params["id"])))


@router.route("POST", "/api/v1/admin/groups", auth="admin")
def groups_create(ctx: Ctx) -> Response:
    body = ctx.req.json_object()
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise required_tag("CreateGroupRequest", "name")
    platforms = OLD_PLATFORMS if ctx.old else NEW_PLATFORMS
    platform = _check_choice(body.get("platform") or "anthropic", platforms, "Platform")
    sub_type = _check_choice(
        body.get("subscription_type") or "standard",
        ("standard", "subscription"),
        "SubscriptionType",
    )
    rate = _rate(ctx, body.get("rate_multiplier"))
    with ctx.state.lock:
        if any(g.name == name for g in ctx.state.groups.values()):
            raise fail(409, "group name already exists", "GROUP_EXISTS")
        group = SimGroup(
            id=ctx.state.new_id("group"),
            name=name,
            platform=platform,
            description=str(body.get("description") or ""),
            rate_multiplier=rate,
            is_exclusive=bool(body.get("is_exclusive")),
            subscription_type=sub_type,
            daily_limit_usd=_limit(body.get("daily_limit_usd"), "daily_limit_usd"),
            weekly_limit_usd=_limit(body.get("weekly_limit_usd"), "weekly_limit_usd"),
            monthly_limit_usd=_limit(body.get("monthly_limit_usd"), "monthly_limit_usd"),
        )
        ctx.state.groups[group.id] = group
        return ok(_group_dto(ctx, group))


@router.route("PUT", "/api/v1/admin/groups/{id}", auth="admin")
def groups_update(ctx: Ctx) -> Response:
    body = ctx.req.json_object()
    with ctx.state.lock:
        group = _group(ctx, ctx.params["id"])
        name = body.get("name")
        if name and name != group.name:
            if any(g.name == name for g in ctx.state.groups.values()):
                raise fail(409, "group name already exists", "GROUP_EXISTS")
            group.name = name
        if body.get("description"):
            group.description = body["description"]
        if body.get("platform"):
            platforms = OLD_PLATFORMS if ctx.old else NEW_PLATFORMS
            group.platform = _check_choice(body["platform"], platforms, "Platform")
        if body.get("rate_multiplier") is not None:
            group.rate_multiplier = _rate(ctx, body["rate_multiplier"])
        if body.get("is_exclusive") is not None:
            group.is_exclusive = bool(body["is_exclusive"])
        if body.get("status"):
            group.status = _check_choice(body["status"], ("active", "inactive"), "Status")
        if body.get("subscription_type"):
            group.subscription_type = _check_choice(
                body["subscription_type"], ("standard", "subscription"), "SubscriptionType"
            )
        for field in ("daily_limit_usd", "weekly_limit_usd", "monthly_limit_usd"):
            if field in body:
                setattr(group, field, _limit(body[field], field))
        group.updated_at = iso(utcnow())
        return ok(_group_dto(ctx, group))


@router.route("DELETE", "/api/v1/admin/groups/{id}", auth="admin")
def groups_delete(ctx: Ctx) -> Response:
    state = ctx.state
    with state.lock:
        group = _group(ctx, ctx.params["id"])
        del state.groups[group.id]
        # Cascade: bindings and subscriptions go; keys keep the dangling id (GROUP_DELETED).
        for account in state.accounts.values():
            account.group_ids = [g for g in account.group_ids if g != group.id]
        for channel in state.channels.values():
            channel.group_ids = [g for g in channel.group_ids if g != group.id]
        for sub_id in [s.id for s in state.subscriptions.values() if s.group_id == group.id]:
            del state.subscriptions[sub_id]
    return ok({"message": "Group deleted successfully"})


# --- users -----------------------------------------------------------------------------------


def _user(ctx: Ctx, raw_id: str) -> SimUser:
    user = ctx.state.users.get(parse_id(raw_id, "user"))
    if user is None:
        raise fail(404, "user not found", "USER_NOT_FOUND")
    return user


def _user_dto(ctx: Ctx, user: SimUser) -> dict[str, Any]:
    return user.dto(old=ctx.old)


def _group_ids(value: Any, field: str) -> list[int] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
        raise bad_request(f"{field} must be an array of integers")
    return list(value)


@router.route("GET", "/api/v1/admin/users", auth="admin")
def users_list(ctx: Ctx) -> Response:
    q = ctx.req.query
    search = q.get("search", "").strip().lower()
    with ctx.state.lock:
        users = [
            {**_user_dto(ctx, u), "current_concurrency": 0}
            for u in sorted(ctx.state.users.values(), key=lambda u: u.id)
            if (not q.get("status") or u.status == q["status"])
            and (not q.get("role") or u.role == q["role"])
            and (not search or search in u.email.lower() or search in u.username.lower())
        ]
    return ok(paginate(users, q, ctx.state.quirks.page_size_max))


@router.route("GET", "/api/v1/admin/users/{id}", auth="admin")
def users_get(ctx: Ctx) -> Response:
    with ctx.state.lock:
        return ok(_user_dto(ctx, _user(ctx, ctx.params["id"])))


@router.route("POST", "/api/v1/admin/users", auth="admin")
def users_create(ctx: Ctx) -> Response:
    body = ctx.req.json_object()
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not email:
        raise required_tag("CreateUserRequest", "email")
    if not EMAIL_RE.match(email):
        raise bad_request(
            "Key: 'CreateUserRequest.Email' Error:Field validation for 'Email' failed on the "
            "'email' tag"
        )
    if not isinstance(password, str) or len(password) < 6:
        raise bad_request(
            "Key: 'CreateUserRequest.Password' Error:Field validation for 'Password' failed on "
            "the 'min' tag"
        )
    with ctx.state.lock:
        if ctx.state.user_by_email(email) is not None:
            raise fail(409, "email already exists", "EMAIL_EXISTS")
        user = SimUser(
            id=ctx.state.new_id("user"),
            email=email,
            password=password,
            username=str(body.get("username") or ""),
            notes=str(body.get("notes") or ""),
            balance=float(body.get("balance") or 0.0),
            concurrency=int(body.get("concurrency") or 5),
            allowed_groups=_group_ids(body.get("allowed_groups"), "allowed_groups"),
        )  # the role is always "user", whatever the body says
        ctx.state.users[user.id] = user
        return ok(_user_dto(ctx, user))


@router.route("PUT", "/api/v1/admin/users/{id}", auth="admin")
def users_update(ctx: Ctx) -> Response:
    body = ctx.req.json_object()
    with ctx.state.lock:
        user = _user(ctx, ctx.params["id"])
        if body.get("username") is not None:
            user.username = str(body["username"])
        if body.get("notes") is not None:
            user.notes = str(body["notes"])
        if body.get("status"):
            user.status = _check_choice(body["status"], ("active", "disabled"), "Status")
        if body.get("concurrency") is not None:
            user.concurrency = int(body["concurrency"])
        if body.get("password"):
            user.password = str(body["password"])
        if body.get("role") and not ctx.old:
            user.role = _check_choice(body["role"], ("admin", "readonly", "user"), "Role")
        if "allowed_groups" in body:
            user.allowed_groups = _group_ids(body["allowed_groups"], "allowed_groups")
        user.updated_at = iso(utcnow())
        return ok(_user_dto(ctx, user))


@router.route("DELETE", "/api/v1/admin/users/{id}", auth="admin")
def users_delete(ctx: Ctx) -> Response:
    state = ctx.state
    with state.lock:
        user = _user(ctx, ctx.params["id"])
        if user.role == "admin":
            raise fail(400, "cannot delete admin user")
        del state.users[user.id]
        for key_id in [k.id for k in state.keys.values() if k.user_id == user.id]:
            del state.keys[key_id]
        for sub_id in [s.id for s in state.subscriptions.values() if s.user_id == user.id]:
            del state.subscriptions[sub_id]
    return ok({"message": "User deleted successfully"})


@router.route("POST", "/api/v1/admin/users/{id}/balance", auth="admin")
def users_balance(ctx: Ctx) -> Response:
    body = ctx.req.json_object()
    amount = body.get("balance")
    if not isinstance(amount, int | float) or isinstance(amount, bool) or amount <= 0:
        raise bad_request(
            "Key: 'UpdateBalanceRequest.Balance' Error:Field validation for 'Balance' failed on "
            "the 'gt' tag"
        )
    operation = _check_choice(body.get("operation"), ("set", "add", "subtract"), "Operation")
    with ctx.state.lock:
        user = _user(ctx, ctx.params["id"])
        if operation == "set":
            user.balance = float(amount)
        elif operation == "add":
            user.balance += float(amount)
        else:
            if user.balance < amount:
                raise fail(400, "insufficient balance", "INSUFFICIENT_BALANCE")
            user.balance -= float(amount)
        return ok(_user_dto(ctx, user))


@router.route("GET", "/api/v1/admin/users/{id}/subscriptions", auth="admin")
def users_subscriptions(ctx: Ctx) -> Response:
    with ctx.state.lock:
        user = _user(ctx, ctx.params["id"])
        subs = [s.dto() for s in ctx.state.subscriptions.values() if s.user_id == user.id]
    return ok(subs)  # not paginated


@router.route("GET", "/api/v1/admin/users/{id}/api-keys", auth="admin")
def users_keys(ctx: Ctx) -> Response:
    with ctx.state.lock:
        user = _user(ctx, ctx.params["id"])
        keys = [k.dto() for k in ctx.state.keys.values() if k.user_id == user.id]
    return ok(paginate(keys, ctx.req.query, ctx.state.quirks.page_size_max))


# --- subscriptions ---------------------------------------------------------------------------


@router.route("GET", "/api/v1/admin/subscriptions", auth="admin")
def subscriptions_list(ctx: Ctx) -> Response:
    q = ctx.req.query
    with ctx.state.lock:
        subs = [
            s.dto()
            for s in sorted(ctx.state.subscriptions.values(), key=lambda s: s.id)
            if (not q.get("user_id") or str(s.user_id) == q["user_id"])
            and (not q.get("group_id") or str(s.group_id) == q["group_id"])
            and (not q.get("status") or s.current_status() == q["status"])
        ]
    return ok(paginate(subs, q, ctx.state.quirks.page_size_max))


@router.route("GET", "/api/v1/admin/subscriptions/{id}", auth="admin")
def subscriptions_get(ctx: Ctx) -> Response:
    with ctx.state.lock:
        sub = ctx.state.subscriptions.get(parse_id(ctx.params["id"], "subscription"))
        if sub is None:
            raise fail(404, "subscription not found", "SUBSCRIPTION_NOT_FOUND")
        return ok(sub.dto())


@router.route("POST", "/api/v1/admin/subscriptions/assign", auth="admin")
def subscriptions_assign(ctx: Ctx) -> Response:
    body = ctx.req.json_object()
    user_id, group_id = body.get("user_id"), body.get("group_id")
    if not isinstance(user_id, int) or not user_id:
        raise required_tag("AssignSubscriptionRequest", "user_id")
    if not isinstance(group_id, int) or not group_id:
        raise required_tag("AssignSubscriptionRequest", "group_id")
    days = body.get("validity_days")
    days = days if isinstance(days, int) and days > 0 else 30
    state = ctx.state
    with state.lock:
        if user_id not in state.users:
            raise fail(404, "user not found", "USER_NOT_FOUND")
        group = state.groups.get(group_id)
        if group is None:
            raise fail(404, "group not found", "GROUP_NOT_FOUND")
        if group.subscription_type != "subscription":
            raise fail(400, "group is not a subscription type", "GROUP_NOT_SUBSCRIPTION_TYPE")
        existing = state.subscription_for(user_id, group_id)
        if existing is not None:
            if ctx.old:
                raise fail(409, "subscription already exists", "SUBSCRIPTION_ALREADY_EXISTS")
            if existing.current_status() == "active":
                return ok(existing.dto())  # [NEW] assign-with-reuse
            existing.status, existing.expires_at = "active", utcnow() + timedelta(days=days)
            return ok(existing.dto())  # an expired one is renewed
        notes = str(body.get("notes") or "")
        sub = state.new_subscription(user_id, group_id, days, notes, ctx.user and ctx.user.id)
        return ok(sub.dto())


@router.route("POST", "/api/v1/admin/subscriptions/{id}/extend", auth="admin")
def subscriptions_extend(ctx: Ctx) -> Response:
    body = ctx.req.json_object()
    days = body.get("days")
    if not isinstance(days, int) or days == 0 or (ctx.old and days < 1):
        raise bad_request("days is invalid")
    with ctx.state.lock:
        sub = ctx.state.subscriptions.get(parse_id(ctx.params["id"], "subscription"))
        if sub is None:
            raise fail(404, "subscription not found", "SUBSCRIPTION_NOT_FOUND")
        sub.expires_at += timedelta(days=days)
        return ok(sub.dto())


@router.route("DELETE", "/api/v1/admin/subscriptions/{id}", auth="admin")
def subscriptions_revoke(ctx: Ctx) -> Response:
    with ctx.state.lock:
        sub_id = parse_id(ctx.params["id"], "subscription")
        if ctx.state.subscriptions.pop(sub_id, None) is None:
            raise fail(404, "subscription not found", "SUBSCRIPTION_NOT_FOUND")
    return ok({"message": "Subscription revoked successfully"})
