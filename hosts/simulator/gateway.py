"""Gateway of the simulator (§9): API-key middleware, ``GET /v1/models`` and
``POST /v1/chat/completions`` ([NEW] only) that really forwards to the account's upstream."""

from __future__ import annotations

import itertools
import json
import math
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import httpx

from hosts.simulator.routes_accounts import model_object
from hosts.simulator.rows import (
    SimAccount,
    SimGroup,
    SimKey,
    SimUser,
    iso,
    resolve_mapping,
    utcnow,
)
from hosts.simulator.upstream import (
    Forwarded,
    as_sse,
    chat_request_from_messages,
    forward_chat,
    forward_responses,
    message_from_chat,
)
from hosts.simulator.wire import Ctx, anthropic_error, flat, gateway_error, json_response
from relay_project.loopback_http import Abort, Response, Router

router: Router[Ctx] = Router()
CLAUDE_DEFAULT_MODELS = ("claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5")
# Upstream statuses that make the host try another account of the group (§9.4;
# OpenAIGatewayService.shouldFailoverUpstreamError).
FAILOVER_STATUSES = frozenset({401, 402, 403, 429, 529})


def authenticate(ctx: Ctx) -> tuple[SimKey, SimUser]:
    """The API-key middleware with its pre-checks, in the host's order (§9.2)."""
    req, state = ctx.req, ctx.state
    in_query = (req.query.get("key") or req.query.get("api_key") or "").strip()
    if in_query and not ctx.old:
        # [NEW] refuses a query key first, whatever the headers say (§13).
        raise flat(
            400,
            "api_key_in_query_deprecated",
            "API key in query parameter is deprecated. Please use Authorization header instead.",
        )
    # "Bearer" compared without case (strings.EqualFold), or exactly on older builds; then
    # x-api-key, x-goog-api-key.
    scheme, space, token = req.header("Authorization").partition(" ")
    if state.quirks.bearer_exact:
        raw = token if space and scheme == "Bearer" else ""
    else:
        raw = token.strip() if scheme.lower() == "bearer" else ""
    raw = raw or req.header("x-api-key") or req.header("x-goog-api-key") or in_query
    if not raw:
        raise flat(401, "API_KEY_REQUIRED", "API key is required")
    with state.lock:
        key = state.keys.by_value(raw)
        if key is None:
            raise flat(401, "INVALID_API_KEY", "Invalid API key")
        if key.status != "active":
            raise flat(401, "API_KEY_DISABLED", "API key is disabled")
        user = state.users.get(key.user_id)
        if user is None:
            raise flat(401, "USER_NOT_FOUND", "User not found")
        if user.status != "active":
            raise flat(401, "USER_INACTIVE", "User is not active")
        group = state.groups.get(key.group_id) if key.group_id else None
        if key.group_id and not ctx.old:
            if group is None:
                raise flat(403, "GROUP_DELETED", "The group of this API key has been deleted")
            if group.status != "active":
                raise flat(403, "GROUP_DISABLED", "The group of this API key is disabled")
        if key.group_id is None and not ctx.old:
            # Anthropic error format, even on OpenAI routes (§9.1).
            raise anthropic_error(
                403,
                "permission_error",
                "API Key is not assigned to any group and cannot be used. Please contact the "
                "administrator to assign it to a group.",
            )
        if group is not None and group.subscription_type == "subscription":
            sub = state.subscription_for(user.id, group.id)
            if sub is None:
                raise flat(
                    403, "SUBSCRIPTION_NOT_FOUND", "No active subscription found for this group"
                )
            if sub.current_status() != "active":
                raise flat(403, "SUBSCRIPTION_INVALID", "Subscription is not active")
        elif user.balance <= 0:
            raise flat(403, "INSUFFICIENT_BALANCE", "Insufficient account balance")
    return key, user


def _group(ctx: Ctx) -> SimGroup | None:
    assert ctx.api_key is not None
    return ctx.state.groups.get(ctx.api_key.group_id) if ctx.api_key.group_id else None


@router.route("GET", "/v1/models", auth="gateway")
def models(ctx: Ctx) -> Response:
    """[OLD] static defaults; [NEW] the union of mapping keys of the group's schedulable
    accounts, defaults when that is empty (§9.3). Never wrapped in the envelope."""
    state = ctx.state
    with state.lock:
        group = _group(ctx)
        if group is None or group.platform != "openai":
            data = [
                {"id": m, "type": "model", "display_name": m, "created_at": "2024-01-01T00:00:00Z"}
                for m in CLAUDE_DEFAULT_MODELS
            ]
            return json_response({"object": "list", "data": data})
        # Kept current by the account table on every write: the host scans the group's
        # accounts per call, which in Python cost ~0.5 µs per account on every item.
        names = [] if ctx.old else state.accounts.offered_models(group.id)
    if names:
        # [NEW] builds the list from a Go map, its order changing from call to call, with
        # Claude-style objects (§13).
        data = [
            {"id": m, "type": "model", "display_name": m, "created_at": "2024-01-01T00:00:00Z"}
            for m in random.sample(sorted(names), len(names))
        ]
    else:
        ids = list(state.quirks.default_models)
        data = [model_object(m, created=1704067200, owned_by="openai") for m in ids]
    return json_response({"object": "list", "data": data})


NO_ACCOUNT_STYLES = ("generic", "detailed", "classified")


def _no_accounts(
    ctx: Ctx, model: str, *, restricted: bool = False, group: SimGroup | None = None
) -> Abort:
    style = ctx.state.quirks.no_account
    if style == "classified" and group is not None and not restricted:
        mapping = [a for a in _group_accounts(ctx, group) if a.supports(model)]
        if not mapping and _group_accounts(ctx, group):
            return gateway_error(
                404,
                "model_not_found",
                f'Model "{model}" is not supported by any configured account in this group',
            )
        now = time.monotonic()
        if mapping and all(a.rate_limited_until > now for a in mapping):
            limited = gateway_error(
                429,
                "rate_limit_error",
                "All available accounts are currently rate-limited. Please retry later.",
            )
            # Builds that classify this answer say when the first account is free again.
            soonest = min(a.rate_limited_until for a in mapping) - now
            limited.response.headers["Retry-After"] = str(max(1, math.ceil(soonest)))
            return limited
    if style == "detailed":
        if restricted:
            detail = (
                f"no available accounts supporting model: {model} (channel pricing restriction)"
            )
        else:
            detail = f"no available OpenAI accounts supporting model: {model}"
        return gateway_error(503, "api_error", f"No available accounts: {detail}")
    return gateway_error(503, "api_error", "Service temporarily unavailable")


def _group_accounts(ctx: Ctx, group: SimGroup) -> list[SimAccount]:
    """The group's openai accounts that are switched on (warmed up or not)."""
    return [
        a
        for a in ctx.state.accounts.in_group(group.id)
        if a.platform == "openai" and a.status == "active" and a.schedulable
    ]


def _exhausted(last_status: int) -> Abort:
    """Every candidate failed upstream: report from the last status ([OLD] mapping, §9.5)."""
    if last_status in (401, 403):
        return gateway_error(
            502,
            "upstream_error",
            "Upstream authentication failed / access forbidden, please contact administrator",
        )
    if last_status == 429:
        return gateway_error(
            429, "rate_limit_error", "Upstream rate limit exceeded, please retry later"
        )
    if last_status == 529:
        return gateway_error(
            503, "upstream_error", "Upstream service overloaded, please retry later"
        )
    if last_status in (500, 502, 503, 504):
        return gateway_error(502, "upstream_error", "Upstream service temporarily unavailable")
    return gateway_error(502, "upstream_error", "Upstream request failed")


def _read_body(ctx: Ctx) -> dict[str, Any]:
    if not ctx.req.body.strip():
        raise gateway_error(400, "invalid_request_error", "Request body is empty")
    try:
        body = json.loads(ctx.req.body)
    except ValueError:
        raise gateway_error(400, "invalid_request_error", "Failed to parse request body") from None
    if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body["model"]:
        raise gateway_error(400, "invalid_request_error", "model is required")
    return body


def _candidates(
    ctx: Ctx, group: SimGroup, model: str, priced_upstream: Any
) -> Iterator[SimAccount]:
    """Active, schedulable, warmed-up accounts of the group whose mapping serves the model,
    best first (priority, then id). Each is checked and copied when its turn comes, as the
    host picks again after a failed attempt: the first costs the same at 10 accounts as at
    10,000, and a later one reflects what the earlier attempts did to it."""
    state = ctx.state
    with state.lock:
        ordered = state.accounts.by_gateway_order(group.id)
    for account in ordered:  # never changed in place: the table replaces the list
        with state.lock:
            if not state.accounts.holds(account) or group.id not in account.group_ids:
                continue  # deleted or moved since the list was taken
            now = time.monotonic()
            usable = (
                account.platform == "openai"
                and account.status == "active"
                and account.schedulable
                and now - account.available_since >= state.quirks.warmup_seconds
                and account.rate_limited_until <= now
                and account.supports(model)
                and (priced_upstream is None or priced_upstream(account.upstream_model(model)))
            )
            if not usable:
                continue
            snapshot = replace(
                account, credentials=dict(account.credentials), extra=dict(account.extra)
            )
        yield snapshot


def _route(ctx: Ctx, requested: str) -> tuple[Iterator[SimAccount], str]:
    """The group's accounts that may take ``requested`` (after the channel mapping), best
    first, and the model they are asked for; the no-account answer when there are none."""
    state = ctx.state
    with state.lock:
        group = _group(ctx)
        if group is None or group.platform != "openai":
            raise gateway_error(
                400,
                "invalid_request_error",
                "the simulator serves openai groups only",
            )
        channel = state.channel_for_group(group.id)
        model = requested
        if channel is not None:  # channel mapping runs before account selection (§5.4)
            model = resolve_mapping(channel.model_mapping.get(group.platform, {}), model) or model
        priced_upstream = None
        if channel is not None and channel.restrict_models:
            source = channel.billing_model_source
            if source == "upstream":
                platform = group.platform
                priced_upstream = lambda m: channel.priced(platform, m)  # noqa: E731
            elif not channel.priced(group.platform, requested if source == "requested" else model):
                raise _no_accounts(ctx, model, restricted=True)
        candidates = _candidates(ctx, group, model, priced_upstream)
        first = next(candidates, None)
        if first is None:
            raise _no_accounts(ctx, model, restricted=priced_upstream is not None, group=group)
    return itertools.chain([first], candidates), model


# Each forwards to the account's upstream: ``blocks``, so answered off the server's loop.
@router.route("POST", "/v1/chat/completions", auth="gateway", new_only=True, blocks=True)
# The root alias (§13).
@router.route("POST", "/chat/completions", auth="gateway", new_only=True, blocks=True)
def chat_completions(ctx: Ctx) -> Response:
    body = _read_body(ctx)
    candidates, model = _route(ctx, body["model"])
    last_status = 502
    for account in candidates:
        upstream_body = {**body, "model": account.upstream_model(model)}
        try:
            forwarded = forward_chat(
                ctx.sim.upstream, account, upstream_body, passthrough=account.chat_passthrough
            )
        except (httpx.HTTPError, ValueError):
            continue  # failover, reported as 502 if nothing else works
        if forwarded.status == 200:
            if body.get("stream") and forwarded.stream is None:
                return Response(content_type="text/event-stream", stream=as_sse(forwarded.body))
            return Response(
                body=forwarded.body, content_type=forwarded.content_type, stream=forwarded.stream
            )
        if forwarded.status in FAILOVER_STATUSES or forwarded.status >= 500:
            _note_upstream_error(ctx, account.id, forwarded)
            last_status = forwarded.status
            continue
        return Response(
            status=forwarded.status, body=forwarded.body, content_type=forwarded.content_type
        )
    raise _exhausted(last_status)


def _forward_each(ctx: Ctx, candidates: Iterable[SimAccount], send) -> Forwarded:
    """Try the accounts in order, failing over like the chat handler (§9.4)."""
    last_status = 502
    for account in candidates:
        try:
            forwarded = send(account)
        except (httpx.HTTPError, ValueError):
            continue
        if forwarded.status in FAILOVER_STATUSES or forwarded.status >= 500:
            _note_upstream_error(ctx, account.id, forwarded)
            last_status = forwarded.status
            continue
        return forwarded
    raise _exhausted(last_status)


@router.route("POST", "/v1/responses", auth="gateway", new_only=True, blocks=True)
# The root alias (§13).
@router.route("POST", "/responses", auth="gateway", new_only=True, blocks=True)
def responses(ctx: Ctx) -> Response:
    """The Responses API for openai groups: relayed to the account's upstream as it is."""
    body = _read_body(ctx)
    candidates, model = _route(ctx, body["model"])
    forwarded = _forward_each(
        ctx,
        candidates,
        lambda account: forward_responses(
            ctx.sim.upstream, account, {**body, "model": account.upstream_model(model)}
        ),
    )
    return Response(
        status=forwarded.status,
        body=forwarded.body,
        content_type=forwarded.content_type,
        stream=forwarded.stream,
    )


@router.route("POST", "/v1/messages", auth="gateway", new_only=True, blocks=True)
def messages(ctx: Ctx) -> Response:
    """Anthropic Messages on an openai group: converted to chat, answered as a message."""
    body = _read_body(ctx)
    if body.get("stream"):
        raise anthropic_error(400, "invalid_request_error", "the simulator does not stream here")
    if not isinstance(body.get("max_tokens"), int):
        raise anthropic_error(400, "invalid_request_error", "max_tokens: Field required")
    candidates, model = _route(ctx, body["model"])
    chat_body = chat_request_from_messages(body)

    def send(account: SimAccount) -> Forwarded:
        upstream_body = {**chat_body, "model": account.upstream_model(model)}
        return forward_chat(
            ctx.sim.upstream, account, upstream_body, passthrough=account.chat_passthrough
        )

    forwarded = _forward_each(ctx, candidates, send)
    if forwarded.status != 200:
        return Response(
            status=forwarded.status, body=forwarded.body, content_type=forwarded.content_type
        )
    return json_response(message_from_chat(json.loads(forwarded.body), body["model"]))


@router.route("GET", "/v1/usage", auth="gateway", new_only=True)
def usage(ctx: Ctx) -> Response:
    """What the key may still spend: its group's plan when the group is a subscription one,
    else the user's balance (the CC Switch format)."""
    with ctx.state.lock:
        group = _group(ctx)
        user = ctx.state.users.get(ctx.api_key.user_id)
        if group is not None and group.subscription_type == "subscription":
            return json_response(
                {"isValid": True, "planName": group.name, "remaining": 0, "unit": "USD"}
            )
        balance = user.balance if user is not None else 0
    return json_response({"isValid": True, "remaining": balance, "unit": "USD"})


# What the host writes on the account for an upstream error met while forwarding
# (ratelimit_service.HandleUpstreamError): 401 and 402 end its scheduling with status "error".
ACCOUNT_ERRORS = {
    401: "Authentication failed (401)",
    402: "Payment required (402)",
}


def _note_upstream_error(ctx: Ctx, account_id: int, forwarded: Forwarded) -> None:
    """The host's side effects of a failover (handleFailoverSideEffects): a 401 or 402 sets the
    account's error, a 429 rate-limits it for the cooldown; other statuses leave it alone."""
    with ctx.state.lock:
        account = ctx.state.accounts.get(account_id)
        if account is None:
            return
        if forwarded.status in ACCOUNT_ERRORS:
            message = _upstream_message(forwarded.body)
            head = ACCOUNT_ERRORS[forwarded.status]
            account.status = "error"
            account.error_message = f"{head}: {message}" if message else head
        elif forwarded.status == 429:
            account.rate_limited_until = (
                time.monotonic() + ctx.state.quirks.rate_limit_cooldown_seconds
            )
            account.rate_limited_at = iso(utcnow())


def _upstream_message(body: bytes) -> str:
    """``error.message`` of an upstream error body (or its text), as the host logs it."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:512]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"][:512]
    return ""
