"""Account routes of the simulator (§4): CRUD, schedulable, clear-error, models, SSE test,
and the [NEW] Responses probe run on create/update."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from hosts.simulator.rows import SENSITIVE_CREDENTIALS, SimAccount, iso, utcnow
from hosts.simulator.upstream import account_test_events, probe_responses
from hosts.simulator.wire import (
    Ctx,
    bad_request,
    fail,
    internal_error,
    ok,
    paginate,
    parse_id,
    required_tag,
)
from relay_project.loopback_http import Response, Router

router: Router[Ctx] = Router()
PREFIX = "/api/v1/admin/accounts"
OLD_TYPES = ("oauth", "setup-token", "apikey")
NEW_TYPES = (*OLD_TYPES, "upstream", "bedrock", "service_account")


def _account(ctx: Ctx, raw_id: str) -> SimAccount:
    account = ctx.state.accounts.get(parse_id(raw_id, "account"))
    if account is None:
        raise fail(404, "account not found", "ACCOUNT_NOT_FOUND")
    return account


def _group_ids(ctx: Ctx, value: Any) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(g, int) for g in value):
        raise bad_request("group_ids must be an array of integers")
    if any(g not in ctx.state.groups for g in value):
        raise internal_error()  # the bind step fails with an untyped error
    return list(value)


def _missing_group(ctx: Ctx, value: Any) -> bool:
    return isinstance(value, list) and any(
        isinstance(g, int) and g not in ctx.state.groups for g in value
    )


def _snapshot(account: SimAccount) -> SimAccount:
    return replace(account, credentials=dict(account.credentials), extra=dict(account.extra))


def _probes_at_once(ctx: Ctx) -> bool:
    """Whether a create or update with credentials probes the upstream before it answers (no
    probe delay): the call blocks, so the request is answered off the server's loop."""
    quirks = ctx.state.quirks
    return not quirks.old and quirks.responses_probe and quirks.responses_probe_seconds <= 0


def _probe_if_new(ctx: Ctx, account_id: int) -> None:
    """[NEW] probes the upstream's /v1/responses after answering a create/update with
    credentials (§4.10, §13), in the background: until it settles, the account has no
    ``openai_responses_supported`` and its tests go to /v1/responses."""
    state = ctx.state
    if ctx.old or not state.quirks.responses_probe:
        return
    with state.lock:
        account = state.accounts.get(account_id)
        if account is None or (account.platform, account.type) != ("openai", "apikey"):
            return
        if not account.credentials.get("api_key"):
            return
        snapshot = _snapshot(account)
    delay = state.quirks.responses_probe_seconds
    if delay <= 0:
        _settle_probe(ctx, account_id, snapshot)
        return
    ctx.sim.scheduler.call_later(delay, _settle_probe, ctx, account_id, snapshot)


def _settle_probe(ctx: Ctx, account_id: int, snapshot: SimAccount) -> None:
    try:
        verdict = probe_responses(ctx.sim.upstream, snapshot)
    except RuntimeError:  # the simulator stopped (its client closed) while we waited
        return
    if verdict is None:
        return
    with ctx.state.lock:
        if account_id in ctx.state.accounts:
            ctx.state.accounts[account_id].extra["openai_responses_supported"] = verdict


def _reply(ctx: Ctx, account_id: int) -> Response:
    with ctx.state.lock:
        return ok(_account(ctx, str(account_id)).dto(old=ctx.old))


@router.route("GET", PREFIX, auth="admin")
def accounts_list(ctx: Ctx) -> Response:
    q = ctx.req.query
    search = q.get("search", "").strip().lower()[:100]
    group = "" if ctx.old else q.get("group", "")
    if group and group != "ungrouped" and not group.isdigit():
        raise fail(400, "invalid group filter", "INVALID_GROUP_FILTER")
    fields = [f for f in ("platform", "type", "status") if q.get(f)]
    with ctx.state.lock:
        accounts = ctx.state.accounts
        # The rows the name or the group index offers (every row else), then the filters:
        # a lookup by name costs the same at 10,000 accounts as at 10. Filtered, then sorted:
        # the same page as sorting every account first, at the cost of the matches.
        if search:
            rows: Iterable[SimAccount] = accounts.named(search)
        elif group.isdigit():
            rows = accounts.in_group(int(group))
        else:
            rows = accounts.values()
        matches = [
            a
            for a in rows
            if all(getattr(a, f) == q[f] for f in fields)
            and (not search or search in a.name.lower())
            and (
                not group
                or (group == "ungrouped" and not a.group_ids)
                or (group.isdigit() and int(group) in a.group_ids)
            )
        ]
        matches.sort(key=(lambda a: a.id) if ctx.old else (lambda a: (a.name, a.id)))
        items = [a.dto(old=ctx.old) for a in matches]
    return ok(paginate(items, q, ctx.state.quirks.page_size_max))


@router.route("GET", PREFIX + "/{id}", auth="admin")
def accounts_get(ctx: Ctx) -> Response:
    with ctx.state.lock:
        return ok(_account(ctx, ctx.params["id"]).dto(old=ctx.old))


@router.route("POST", PREFIX, auth="admin", blocks=_probes_at_once)
def accounts_create(ctx: Ctx) -> Response:
    """[NEW] runs account create through its idempotency coordinator (§1.6): a completed key
    replays its answer, a key still being served is 409 IDEMPOTENCY_IN_PROGRESS."""
    key = ctx.req.header("Idempotency-Key")
    if not key or ctx.old:
        return _create_account(ctx)
    with ctx.state.lock:
        if key in ctx.state.idempotent_replies:
            earlier = ctx.state.idempotent_replies[key]
            if earlier is None:
                raise fail(
                    409, "idempotent request is still in progress", "IDEMPOTENCY_IN_PROGRESS"
                )
            return replace(earlier, headers={**earlier.headers, "X-Idempotency-Replayed": "true"})
        ctx.state.idempotent_replies[key] = None
    try:
        response = _create_account(ctx)
    except BaseException:
        with ctx.state.lock:
            ctx.state.idempotent_replies.pop(key, None)
        raise
    with ctx.state.lock:
        ctx.state.idempotent_replies[key] = response
    return response


def _create_account(ctx: Ctx) -> Response:
    body = ctx.json_object()
    for field in ("name", "platform", "type"):
        if not isinstance(body.get(field), str) or not body[field]:
            raise required_tag("CreateAccountRequest", field)
    if not isinstance(body.get("credentials"), dict):
        raise required_tag("CreateAccountRequest", "credentials")
    if body["type"] not in (OLD_TYPES if ctx.old else NEW_TYPES):
        raise bad_request(
            "Key: 'CreateAccountRequest.Type' Error:Field validation for 'Type' "
            "failed on the 'oneof' tag"
        )
    rate = body.get("rate_multiplier")
    if not ctx.old and isinstance(rate, int | float) and rate < 0:
        raise fail(400, "rate_multiplier must be >= 0")
    extra = body.get("extra")
    requested_groups = body.get("group_ids") or []
    with ctx.state.lock:
        if ctx.old and _missing_group(ctx, requested_groups):
            # [OLD] inserts the row, then binds the groups outside a transaction: a bad group
            # id leaves an orphan account behind the 500 (§13).
            orphan_id = ctx.state.new_id("account")
            ctx.state.accounts[orphan_id] = SimAccount(
                id=orphan_id,
                name=body["name"],
                platform=body["platform"],
                type=body["type"],
                credentials=dict(body["credentials"]),
                extra=dict(extra) if isinstance(extra, dict) else {},
            )
            raise internal_error()
        account = SimAccount(
            id=ctx.state.new_id("account"),
            name=body["name"],
            platform=body["platform"],
            type=body["type"],
            credentials=dict(body["credentials"]),
            extra=dict(extra) if isinstance(extra, dict) else {},
            # The handler passes 0 when these are omitted (§4.2).
            concurrency=int(body.get("concurrency") or 0),
            priority=int(body.get("priority") or 0),
            group_ids=_group_ids(ctx, body.get("group_ids") or []),
            notes=body.get("notes") if not ctx.old else None,
            proxy_id=body.get("proxy_id"),
        )
        ctx.state.accounts[account.id] = account
    _probe_if_new(ctx, account.id)
    return _reply(ctx, account.id)


@router.route("PUT", PREFIX + "/{id}", auth="admin", blocks=_probes_at_once)
def accounts_update(ctx: Ctx) -> Response:
    body = ctx.json_object()
    credentials = body.get("credentials")
    with ctx.state.lock:
        account = _account(ctx, ctx.params["id"])
        if body.get("name"):
            account.name = str(body["name"])
        if body.get("type"):
            account.type = str(body["type"])
        if isinstance(credentials, dict) and credentials:
            if ctx.old:  # a non-empty map replaces the stored one wholesale
                account.credentials = dict(credentials)
            else:  # [NEW] MergePreservingSensitiveCreds: omitted secrets survive
                kept = {
                    k: v
                    for k, v in account.credentials.items()
                    if k in SENSITIVE_CREDENTIALS and k not in credentials
                }
                account.credentials = {**dict(credentials), **kept}
        if isinstance(body.get("extra"), dict) and body["extra"]:
            account.extra = dict(body["extra"])
        if body.get("group_ids") is not None:
            account.group_ids = _group_ids(ctx, body["group_ids"])
        for field in ("concurrency", "priority"):
            if body.get(field) is not None:
                setattr(account, field, int(body[field]))
        if body.get("proxy_id") is not None:
            account.proxy_id = body["proxy_id"]
        if body.get("status"):
            allowed = ("active", "inactive") if ctx.old else ("active", "inactive", "error")
            if body["status"] not in allowed:
                raise bad_request(
                    "Key: 'UpdateAccountRequest.Status' Error:Field validation "
                    "for 'Status' failed on the 'oneof' tag"
                )
            if body["status"] == "active" and account.status != "active":
                account.reactivated()
            account.status = body["status"]
        if not ctx.old and "notes" in body:
            account.notes = body["notes"]
        account.updated_at = iso(utcnow())
        account_id = account.id
    if isinstance(credentials, dict) and credentials:
        _probe_if_new(ctx, account_id)
    return _reply(ctx, account_id)


@router.route("DELETE", PREFIX + "/{id}", auth="admin")
def accounts_delete(ctx: Ctx) -> Response:
    with ctx.state.lock:
        account = _account(ctx, ctx.params["id"])
        del ctx.state.accounts[account.id]
    return ok({"message": "Account deleted successfully"})


@router.route("POST", PREFIX + "/{id}/schedulable", auth="admin")
def accounts_schedulable(ctx: Ctx) -> Response:
    body = ctx.json_object()
    if not isinstance(body.get("schedulable"), bool):
        raise required_tag("SetSchedulableRequest", "schedulable")
    with ctx.state.lock:
        account = _account(ctx, ctx.params["id"])
        if body["schedulable"] and not account.schedulable:
            account.reactivated()
        account.schedulable = body["schedulable"]
        return ok(account.dto(old=ctx.old))


@router.route("POST", PREFIX + "/{id}/clear-error", auth="admin")
def accounts_clear_error(ctx: Ctx) -> Response:
    with ctx.state.lock:
        account = _account(ctx, ctx.params["id"])
        if account.status != "active":
            account.reactivated()
        account.status, account.error_message = "active", ""
        return ok(account.dto(old=ctx.old))


@router.route("GET", PREFIX + "/{id}/models", auth="admin")
def accounts_models(ctx: Ctx) -> Response:
    with ctx.state.lock:
        account = ctx.state.accounts.get(parse_id(ctx.params["id"], "account"))
        if account is None:
            raise fail(404, "Account not found")  # this handler has no reason code
        keys = list(account.model_mapping) or list(ctx.state.quirks.default_models)
    return ok([model_object(key) for key in keys])


def model_object(model_id: str, *, created: int = 0, owned_by: str = "") -> dict[str, Any]:
    """The six-key OpenAI model object the host emits (§4.8)."""
    return {
        "id": model_id,
        "object": "model",
        "created": created,
        "owned_by": owned_by,
        "type": "model",
        "display_name": model_id,
    }


def _sse(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event)}\n\n".encode()


@router.route("POST", PREFIX + "/{id}/test", auth="admin")
def accounts_test(ctx: Ctx) -> Response:
    account_id = parse_id(ctx.params["id"], "account")  # a normal 400 before streaming
    body = ctx.json_object(optional=True)
    return Response(
        content_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        stream=_test_events(ctx, account_id, body),
    )


def _test_events(ctx: Ctx, account_id: int, body: dict[str, Any]) -> Iterator[bytes]:
    """Always HTTP 200; failures are ``error`` events (§4.7)."""
    state, quirks = ctx.state, ctx.state.quirks
    with state.lock:
        account = state.accounts.get(account_id)
        if account is None:
            yield _sse({"type": "error", "error": "Account not found"})
            return
        first_test = account.tests_run == 0
        account.tests_run += 1
        snapshot = _snapshot(account)
    requested = str(body.get("model_id") or quirks.default_test_model)
    if ctx.old:  # [OLD] applies the mapping on an exact key hit only
        model = snapshot.model_mapping.get(requested) or requested
    else:
        model = snapshot.upstream_model(requested)
    yield _sse({"type": "test_start", "model": model})
    if quirks.probe_403 and first_test:
        yield _sse({"type": "error", "error": "API returned 403: Forbidden"})
        return
    if not snapshot.credentials.get("api_key"):
        yield _sse({"type": "error", "error": "No API key available"})
        return
    use_chat = not ctx.old and body.get("mode") != "responses" and snapshot.chat_passthrough
    for event in account_test_events(ctx.sim.upstream, snapshot, model, use_chat=use_chat):
        if event["type"] == "_status":
            if event["status"] == 401 and not ctx.old:  # [NEW] marks the account broken
                _set_status(ctx, account_id, "error", "Authentication failed (401)")
            continue
        yield _sse(event)
        if event["type"] == "test_complete" and not ctx.old:
            _recover(ctx, account_id)


def _set_status(ctx: Ctx, account_id: int, status: str, message: str) -> None:
    with ctx.state.lock:
        account = ctx.state.accounts.get(account_id)
        if account is not None:
            account.status, account.error_message = status, message


def _recover(ctx: Ctx, account_id: int) -> None:
    """[NEW] RecoverAccountAfterSuccessfulTest: an errored account is active again."""
    with ctx.state.lock:
        account = ctx.state.accounts.get(account_id)
        if account is not None and account.status == "error":
            account.status, account.error_message = "active", ""
            account.reactivated()
