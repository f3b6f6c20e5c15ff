"""Channel routes of the simulator (§5, [NEW] only: an [OLD] build answers 404).

Validation errors use the channel handler's own shape: 400 with ``reason`` (§5.2).
"""

from __future__ import annotations

from typing import Any

from hosts.simulator.rows import SimChannel, iso, utcnow
from hosts.simulator.wire import Ctx, fail, ok, paginate
from relay_project.loopback_http import Response, Router

router: Router[Ctx] = Router()
PREFIX = "/api/v1/admin/channels"
BILLING_SOURCES = ("requested", "upstream", "channel_mapped")
BILLING_MODES = ("token", "per_request", "image")
PRICE_FIELDS = (
    "input_price",
    "output_price",
    "cache_write_price",
    "cache_read_price",
    "image_output_price",
    "per_request_price",
)


def _invalid(message: str, reason: str = "VALIDATION_ERROR") -> Exception:
    return fail(400, message, reason)


def _channel(ctx: Ctx, raw_id: str) -> SimChannel:
    try:
        channel_id = int(raw_id)
    except ValueError:
        raise fail(400, "Invalid channel ID", "INVALID_CHANNEL_ID") from None
    channel = ctx.state.channels.get(channel_id)
    if channel is None:
        raise fail(404, "channel not found", "CHANNEL_NOT_FOUND")
    return channel


def _mapping(value: Any) -> dict[str, dict[str, str]]:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise _invalid("model_mapping must be an object of {platform: {source: target}}")
    return {str(p): {str(k): str(v) for k, v in pairs.items()} for p, pairs in value.items()}


def _pricing(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _invalid("model_pricing must be an array")
    entries: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for number, raw in enumerate(value, start=1):
        if not isinstance(raw, dict):
            raise _invalid(f"model_pricing[{number}] must be an object")
        models = raw.get("models")
        if not isinstance(models, list) or not 1 <= len(models) <= 100:
            raise _invalid(f"model_pricing[{number}].models must list 1 to 100 models")
        platform = str(raw.get("platform") or "anthropic")  # the host's default
        mode = str(raw.get("billing_mode") or "token")
        if mode not in BILLING_MODES:
            raise _invalid(f"model_pricing[{number}].billing_mode is invalid")
        entry: dict[str, Any] = {
            "id": number,
            "platform": platform,
            "models": [str(m) for m in models],
            "billing_mode": mode,
            "intervals": raw.get("intervals") or [],
        }
        for field in PRICE_FIELDS:
            price = raw.get(field)
            if price is not None and (not isinstance(price, int | float) or price < 0):
                raise _invalid(f"{field} must be >= 0", "NEGATIVE_PRICE")
            entry[field] = price
        if mode != "token" and entry["per_request_price"] is None and not entry["intervals"]:
            raise _invalid("per_request_price is required", "BILLING_MODE_MISSING_PRICE")
        for model in entry["models"]:
            if (platform, model.lower()) in seen:
                raise _invalid(f"model {model} is priced twice", "MODEL_PATTERN_CONFLICT")
            seen.add((platform, model.lower()))
        entries.append(entry)
    return entries


def _group_ids(ctx: Ctx, value: Any, channel_id: int | None) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(g, int) for g in value):
        raise _invalid("group_ids must be an array of integers")
    for other in ctx.state.channels.values():
        if other.id != channel_id and set(other.group_ids) & set(value):
            raise fail(
                409,
                "one or more groups already belong to another channel",
                "GROUP_ALREADY_IN_CHANNEL",
            )
    return list(value)


def _source(value: Any) -> str:
    source = value or "channel_mapped"  # empty is stored as channel_mapped
    if source not in BILLING_SOURCES:
        raise _invalid("billing_model_source must be requested, upstream or channel_mapped")
    return source


def _name_taken(ctx: Ctx, name: str, channel_id: int | None) -> bool:
    return any(c.name == name and c.id != channel_id for c in ctx.state.channels.values())


@router.route("GET", PREFIX, auth="admin", new_only=True)
def channels_list(ctx: Ctx) -> Response:
    q = ctx.req.query
    search = q.get("search", "").strip().lower()[:100]
    with ctx.state.lock:
        channels = [
            c.dto()
            for c in sorted(ctx.state.channels.values(), key=lambda c: -c.id)  # newest first
            if (not q.get("status") or c.status == q["status"])
            and (not search or search in c.name.lower())
        ]
    return ok(paginate(channels, q, ctx.state.quirks.page_size_max))


@router.route("GET", PREFIX + "/{id}", auth="admin", new_only=True)
def channels_get(ctx: Ctx) -> Response:
    with ctx.state.lock:
        return ok(_channel(ctx, ctx.params["id"]).dto())


@router.route("POST", PREFIX, auth="admin", new_only=True)
def channels_create(ctx: Ctx) -> Response:
    body = ctx.json_object()
    name = body.get("name")
    if not isinstance(name, str) or not name or len(name) > 100:
        raise _invalid("name is required (at most 100 characters)")
    with ctx.state.lock:
        if _name_taken(ctx, name, None):
            raise fail(409, "channel name already exists", "CHANNEL_EXISTS")
        channel = SimChannel(
            id=ctx.state.new_id("channel"),
            name=name,
            description=str(body.get("description") or ""),
            billing_model_source=_source(body.get("billing_model_source")),
            restrict_models=bool(body.get("restrict_models")),
            group_ids=_group_ids(ctx, body.get("group_ids") or [], None),
            model_mapping=_mapping(body.get("model_mapping") or {}),
            model_pricing=_pricing(body.get("model_pricing") or []),
        )
        ctx.state.channels[channel.id] = channel
        return ok(channel.dto())


@router.route("PUT", PREFIX + "/{id}", auth="admin", new_only=True)
def channels_update(ctx: Ctx) -> Response:
    """Partial update (§5.3): null or absent leaves a field alone; arrays and the mapping
    (even ``{}``) replace what is stored."""
    body = ctx.json_object()
    with ctx.state.lock:
        channel = _channel(ctx, ctx.params["id"])
        name = body.get("name")
        if name:
            if _name_taken(ctx, name, channel.id):
                raise fail(409, "channel name already exists", "CHANNEL_EXISTS")
            channel.name = name
        if body.get("description") is not None:
            channel.description = str(body["description"])
        if body.get("status"):
            if body["status"] not in ("active", "disabled"):
                raise _invalid("status must be active or disabled")
            channel.status = body["status"]
        if body.get("group_ids") is not None:
            channel.group_ids = _group_ids(ctx, body["group_ids"], channel.id)
        if body.get("model_mapping") is not None:
            channel.model_mapping = _mapping(body["model_mapping"])
        if body.get("model_pricing") is not None:
            channel.model_pricing = _pricing(body["model_pricing"])
        if body.get("billing_model_source"):
            channel.billing_model_source = _source(body["billing_model_source"])
        if body.get("restrict_models") is not None:
            channel.restrict_models = bool(body["restrict_models"])
        channel.updated_at = iso(utcnow())
        return ok(channel.dto())


@router.route("DELETE", PREFIX + "/{id}", auth="admin", new_only=True)
def channels_delete(ctx: Ctx) -> Response:
    with ctx.state.lock:
        channel = _channel(ctx, ctx.params["id"])
        del ctx.state.channels[channel.id]
    return ok({"message": "Channel deleted successfully"})
