"""Admin routes of the simulator: health, version, groups (§3)."""

from __future__ import annotations

from typing import Any

from hosts.simulator.rows import SimGroup, iso, utcnow
from hosts.simulator.wire import (
    Ctx,
    bad_request,
    check_choice,
    fail,
    internal_error,
    json_response,
    ok,
    paginate,
    parse_id,
    required_tag,
)
from relay_project.loopback_http import Response, Router

router: Router[Ctx] = Router()
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
    return group.dto(account_count=ctx.state.accounts.count_in_group(group.id))


def _limit(value: Any, field: str) -> float | None:
    if value is None or value == "":
        return None
    try:  # [NEW] also accepts numeric strings
        return float(value)
    except (TypeError, ValueError):
        raise bad_request(f"{field} must be a number") from None


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
    body = ctx.json_object()
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise required_tag("CreateGroupRequest", "name")
    platforms = OLD_PLATFORMS if ctx.old else NEW_PLATFORMS
    platform = check_choice(body.get("platform") or "anthropic", platforms, "Platform")
    sub_type = check_choice(
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
    body = ctx.json_object()
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
            group.platform = check_choice(body["platform"], platforms, "Platform")
        if body.get("rate_multiplier") is not None:
            group.rate_multiplier = _rate(ctx, body["rate_multiplier"])
        if body.get("is_exclusive") is not None:
            group.is_exclusive = bool(body["is_exclusive"])
        if body.get("status"):
            group.status = check_choice(body["status"], ("active", "inactive"), "Status")
        if body.get("subscription_type"):
            group.subscription_type = check_choice(
                body["subscription_type"], ("standard", "subscription"), "SubscriptionType"
            )
        for field in ("daily_limit_usd", "weekly_limit_usd", "monthly_limit_usd"):
            if field in body:
                setattr(group, field, _limit(body[field], field))
        group.updated_at = iso(utcnow())
        return ok(_group_dto(ctx, group))


@router.route("GET", "/api/v1/admin/groups/{id}/api-keys", auth="admin")
def groups_keys(ctx: Ctx) -> Response:
    """Keys bound to the group (§3.1): the full key, as [OLD] does, or masked on builds that
    mask listings (quirk ``masked_group_keys``)."""
    with ctx.state.lock:
        group = _group(ctx, ctx.params["id"])
        keys = [k.dto() for k in ctx.state.keys.values() if k.group_id == group.id]
        if ctx.state.quirks.masked_group_keys:
            keys = [{**k, "key": f"{k['key'][:6]}...{k['key'][-4:]}"} for k in keys]
    return ok(paginate(keys, ctx.req.query, ctx.state.quirks.page_size_max))


@router.route("DELETE", "/api/v1/admin/groups/{id}", auth="admin")
def groups_delete(ctx: Ctx) -> Response:
    state = ctx.state
    with state.lock:
        group = _group(ctx, ctx.params["id"])
        del state.groups[group.id]
        # Cascade: bindings and subscriptions go; [NEW] keys keep the dangling id
        # (GROUP_DELETED at the gateway), [OLD] and mid-era builds unbind them (§13).
        if ctx.old:
            for key in state.keys.values():
                if key.group_id == group.id:
                    key.group_id = None
        for account in state.accounts.in_group(group.id):
            account.group_ids = [g for g in account.group_ids if g != group.id]
        for channel in state.channels.values():
            channel.group_ids = [g for g in channel.group_ids if g != group.id]
        for sub_id in [s.id for s in state.subscriptions.values() if s.group_id == group.id]:
            del state.subscriptions[sub_id]
    return ok({"message": "Group deleted successfully"})
