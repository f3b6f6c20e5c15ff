"""Admin routes of the simulator: users (§6) and subscriptions (§7)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from hosts.simulator.rows import SimSubscription, SimUser, iso, utcnow
from hosts.simulator.wire import (
    Ctx,
    bad_request,
    check_choice,
    fail,
    ok,
    paginate,
    parse_id,
    required_tag,
)
from relay_project.loopback_http import Response, Router

router: Router[Ctx] = Router()
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


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
    body = ctx.json_object()
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
    body = ctx.json_object()
    with ctx.state.lock:
        user = _user(ctx, ctx.params["id"])
        if body.get("username") is not None:
            user.username = str(body["username"])
        if body.get("notes") is not None:
            user.notes = str(body["notes"])
        if body.get("status"):
            user.status = check_choice(body["status"], ("active", "disabled"), "Status")
        if body.get("concurrency") is not None:
            user.concurrency = int(body["concurrency"])
        if body.get("password"):
            user.password = str(body["password"])
        if body.get("role") and not ctx.old:
            user.role = check_choice(body["role"], ("admin", "readonly", "user"), "Role")
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
    body = ctx.json_object()
    amount = body.get("balance")
    if not isinstance(amount, int | float) or isinstance(amount, bool) or amount <= 0:
        raise bad_request(
            "Key: 'UpdateBalanceRequest.Balance' Error:Field validation for 'Balance' failed on "
            "the 'gt' tag"
        )
    operation = check_choice(body.get("operation"), ("set", "add", "subtract"), "Operation")
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


MAX_VALIDITY_DAYS = 36500  # [NEW] caps validity_days (binding max)
MAX_EXPIRES_AT = datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)  # [NEW] latest expiry


def assign_conflict(existing: SimSubscription, *, days: int, notes: str) -> str:
    """[NEW] ``detectAssignSemanticConflict``: the term compared in whole days of
    ``expires_at - starts_at`` (an extended subscription no longer matches), then the notes."""
    if (existing.expires_at - existing.starts_at).days != days:
        return "validity_days_mismatch"
    if existing.notes != notes:
        return "notes_mismatch"
    return ""


@router.route("POST", "/api/v1/admin/subscriptions/assign", auth="admin")
def subscriptions_assign(ctx: Ctx) -> Response:
    body = ctx.json_object()
    user_id, group_id = body.get("user_id"), body.get("group_id")
    if not isinstance(user_id, int) or not user_id:
        raise required_tag("AssignSubscriptionRequest", "user_id")
    if not isinstance(group_id, int) or not group_id:
        raise required_tag("AssignSubscriptionRequest", "group_id")
    days = body.get("validity_days")
    days = days if isinstance(days, int) and days > 0 else 30
    if not ctx.old:
        days = min(days, MAX_VALIDITY_DAYS)
    state = ctx.state
    with state.lock:
        if user_id not in state.users:
            raise fail(404, "user not found", "USER_NOT_FOUND")
        group = state.groups.get(group_id)
        if group is None:
            raise fail(404, "group not found", "GROUP_NOT_FOUND")
        if group.subscription_type != "subscription":
            raise fail(400, "group is not a subscription type", "GROUP_NOT_SUBSCRIPTION_TYPE")
        notes = str(body.get("notes") or "")
        existing = state.subscription_for(user_id, group_id)
        if existing is not None:
            if ctx.old:
                raise fail(409, "subscription already exists", "SUBSCRIPTION_ALREADY_EXISTS")
            if existing.current_status() == "expired":  # renewed with the request's terms
                now = utcnow()
                existing.status, existing.starts_at = "active", now
                existing.expires_at, existing.notes = now + timedelta(days=days), notes
                return ok(existing.dto())
            # [NEW] assign-with-reuse (§13): the existing one only when the request agrees.
            conflict = assign_conflict(existing, days=days, notes=notes)
            if conflict:
                raise fail(
                    409,
                    "subscription already exists with different parameters",
                    "SUBSCRIPTION_ASSIGN_CONFLICT",
                    metadata={"conflict_reason": conflict},
                )
            return ok(existing.dto())
        sub = state.new_subscription(user_id, group_id, days, notes, ctx.user and ctx.user.id)
        return ok(sub.dto())


@router.route("POST", "/api/v1/admin/subscriptions/{id}/extend", auth="admin")
def subscriptions_extend(ctx: Ctx) -> Response:
    body = ctx.json_object()
    days = body.get("days")
    if not isinstance(days, int) or days == 0 or (ctx.old and days < 1):
        raise bad_request("days is invalid")
    with ctx.state.lock:
        sub = ctx.state.subscriptions.get(parse_id(ctx.params["id"], "subscription"))
        if sub is None:
            raise fail(404, "subscription not found", "SUBSCRIPTION_NOT_FOUND")
        if ctx.old:
            sub.expires_at += timedelta(days=days)
            return ok(sub.dto())
        # [NEW] ExtendSubscription: days clamped; an expired one counts from now and may not
        # be shortened; the result capped and never already over.
        days = max(-MAX_VALIDITY_DAYS, min(days, MAX_VALIDITY_DAYS))
        now = utcnow()
        expired = sub.expires_at <= now
        if expired and days < 0:
            raise fail(400, "cannot shorten an expired subscription", "CANNOT_SHORTEN_EXPIRED")
        expires_at = min(
            (now if expired else sub.expires_at) + timedelta(days=days), MAX_EXPIRES_AT
        )
        if expires_at <= now:
            raise fail(400, "adjustment would expire subscription", "ADJUST_WOULD_EXPIRE")
        sub.expires_at = expires_at
        if sub.status == "expired":
            sub.status = "active"
        return ok(sub.dto())


@router.route("DELETE", "/api/v1/admin/subscriptions/{id}", auth="admin")
def subscriptions_revoke(ctx: Ctx) -> Response:
    with ctx.state.lock:
        sub_id = parse_id(ctx.params["id"], "subscription")
        if ctx.state.subscriptions.pop(sub_id, None) is None:
            raise fail(404, "subscription not found", "SUBSCRIPTION_NOT_FOUND")
    return ok({"message": "Subscription revoked successfully"})
