"""The host simulator: the route modules served by ``relay_project.loopback_http`` (on its
``asyncio`` loop; the routes that call the upstream, marked ``blocks``, on a thread of its
pool), behaving like a sub2api host (sub2api-host-api.md §11 checklist, gateway of §9).

    with HostSimulator(quirks=Quirks(old=True)) as sim:
        httpx.get(sim.url + "/api/v1/admin/groups", headers={"x-api-key": sim.admin_key})

State lives in memory (``sim.state``); quirks switch at runtime (``sim.quirks``) or over HTTP
(``POST /__sim/quirks``, ``/__sim/fail``, ``/__sim/expire-tokens``) for out-of-process use.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from functools import partial

import httpx

from hosts.simulator import (
    gateway,
    routes_accounts,
    routes_admin,
    routes_channels,
    routes_keys,
    routes_users,
)
from hosts.simulator.rows import RecordedRequest, SimUser
from hosts.simulator.scheduler import Scheduler
from hosts.simulator.state import FailRule, Quirks, SimState
from hosts.simulator.upstream import probe_responses
from hosts.simulator.wire import Ctx, flat, json_response, not_found_route
from relay_project.loopback_http import (
    Abort,
    After,
    Answer,
    LoopbackServer,
    OffLoop,
    Request,
    Response,
    Route,
    match,
)
from relay_project.pooled_http import PooledTransport, without_cookies

logger = logging.getLogger(__name__)

ROUTES = [
    *routes_admin.router.routes,
    *routes_channels.router.routes,
    *routes_users.router.routes,
    *routes_accounts.router.routes,
    *routes_keys.router.routes,
    *gateway.router.routes,
]
CONTROL_PREFIX = "/__sim/"


def admin_auth(ctx: Ctx) -> tuple[SimUser, str]:
    """The admin middleware (§1.2): x-api-key first and alone, else a Bearer admin JWT."""
    state, req = ctx.state, ctx.req
    api_key = req.header("x-api-key")
    if api_key:
        expected = state.admin_key
        if not expected or not hmac.compare_digest(api_key.encode(), expected.encode()):
            raise flat(401, "INVALID_ADMIN_KEY", "Invalid admin API key")
        admin = min(
            (u for u in state.users.values() if u.role == "admin"),
            key=lambda u: u.id,
            default=None,
        )
        if admin is None:
            raise flat(500, "INTERNAL_ERROR", "No admin user found")
        return admin, "admin-key"
    header = req.header("Authorization")
    scheme, _, token = header.partition(" ")
    bearer = scheme == "Bearer" if ctx.old else scheme.lower() == "bearer"
    if not header or not bearer:
        raise flat(401, "UNAUTHORIZED", "Authorization required")
    user = token_user(ctx, token.strip())
    if user.role != "admin":
        raise flat(403, "FORBIDDEN", "Admin access required")
    return user, "admin-jwt"


def jwt_auth(ctx: Ctx) -> SimUser:
    """The user JWT middleware (§8.1)."""
    header = ctx.req.header("Authorization")
    if not header:
        raise flat(401, "UNAUTHORIZED", "Authorization header is required")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        raise flat(401, "INVALID_AUTH_HEADER", "Authorization header format must be Bearer")
    if not token.strip():
        raise flat(401, "EMPTY_TOKEN", "Token cannot be empty")
    return token_user(ctx, token.strip())


def token_user(ctx: Ctx, token: str) -> SimUser:
    state = ctx.state
    with state.lock:
        issued = state.tokens.get(token)
        if issued is None:
            raise flat(401, "INVALID_TOKEN", "Invalid token")
        if issued.expires_at <= time.monotonic():
            raise flat(401, "TOKEN_EXPIRED", "Token has expired")
        user = state.users.get(issued.user_id)
    if user is None:
        raise flat(401, "USER_NOT_FOUND", "User not found")
    if user.status != "active":
        raise flat(401, "USER_INACTIVE", "User is not active")
    return user


class HostSimulator:
    """A sub2api host double on loopback. Use as a context manager or ``start()``/``stop()``.

    ``upstream_transport`` replaces the transport of the simulator's own outbound calls (the
    account test, the Responses probe, gateway forwarding), e.g. an ``httpx.MockTransport``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_key: str | None = None,
        admin_email: str = "admin@sub2api.local",
        admin_password: str = "admin-password",  # noqa: S107 - a loopback test double
        quirks: Quirks | None = None,
        upstream_transport: httpx.BaseTransport | None = None,
        upstream_timeout: float = 10.0,
    ) -> None:
        self.admin_key = admin_key or "admin-" + secrets.token_hex(32)
        self.admin_email = admin_email
        self.admin_password = admin_password
        self.state = SimState(
            admin_key=self.admin_key,
            admin_email=admin_email,
            admin_password=admin_password,
            quirks=quirks or Quirks(),
        )
        # The host's http.Client has no cookie jar (http_upstream.go, getClientEntry): nothing
        # an upstream sets is kept or sent back.
        self.upstream = without_cookies(
            httpx.Client(
                # The host's pool toward upstreams (backend/internal/repository/
                # http_upstream.go): 120 idle connections kept per upstream, for 90 s. httpx
                # keeps 20: with more calls in flight the simulator connected to its upstreams
                # again and again.
                transport=upstream_transport
                or PooledTransport(max_keepalive=120, keepalive_expiry=90),
                timeout=upstream_timeout,
                follow_redirects=False,
                event_hooks={"request": [self._never_on_the_loop]},
            )
        )
        self.stopping = threading.Event()
        # Runs the background Responses probes on threads it keeps (one per probe in flight).
        self.scheduler = Scheduler("host-simulator-probe")
        # The host (Go's net/http) streams the account test in chunks and keeps the
        # connection: a close-delimited stream cost a new connection and thread per test.
        self._server = LoopbackServer(
            self.handle,
            host=host,
            port=port,
            name="host-simulator",
            chunked_streams=True,
            on_loop=True,
        )

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> HostSimulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.stop()
        self.upstream.close()  # a probe under way ends on the closed client
        self.scheduler.stop()

    def __enter__(self) -> HostSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server.running, "simulator not started"
        host, port = self._server.address
        return f"http://{host}:{port}"

    @property
    def quirks(self) -> Quirks:
        return self.state.quirks

    def settle_responses_probes(self) -> None:
        """Test control, as if the background Responses probes' time had come: each account
        whose probe is still pending is probed now (the host's timer then finds it settled)."""
        with self.state.lock:
            pending = [
                replace(a, credentials=dict(a.credentials))
                for a in self.state.accounts.values()
                if (a.platform, a.type) == ("openai", "apikey")
                and "openai_responses_supported" not in a.extra
            ]
        for account in pending:
            verdict = probe_responses(self.upstream, account)
            if verdict is not None:
                with self.state.lock:
                    if account.id in self.state.accounts:
                        self.state.accounts[account.id].extra["openai_responses_supported"] = (
                            verdict
                        )

    @property
    def requests(self) -> list[RecordedRequest]:
        with self.state.lock:
            return list(self.state.requests)

    # --- test helpers --------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_prefix: str,
        *,
        count: int = 1,
        status: int | None = 503,
        delay: float = 0.0,
    ) -> FailRule:
        """Fail the next ``count`` requests matching ``method`` ("*" = any) and the path
        prefix: answer ``status`` (None = answer normally) after waiting ``delay`` seconds."""
        rule = FailRule(method.upper() if method != "*" else "*", path_prefix, count, status, delay)
        with self.state.lock:
            self.state.fail_rules.append(rule)
        return rule

    def expire_tokens(self) -> None:
        self.state.expire_tokens()

    def record(self, req: Request, status: int, auth: str) -> None:
        try:
            body = json.loads(req.body) if req.body else None
        except ValueError:
            body = None
        with self.state.lock:
            self.state.requests.append(
                RecordedRequest(req.method, req.path, dict(req.query), status, body, auth)
            )

    # --- dispatch ------------------------------------------------------------------------------

    def handle(self, req: Request) -> Answer:
        """Answer one request and log it (the server's app, on its loop). A failure rule's
        delay is a wait of the loop (``After``); a route that calls the upstream (its option
        ``blocks``) answers from a thread of the server's pool (``OffLoop``)."""
        ctx = Ctx(sim=self, req=req, params={})
        if req.path.startswith(CONTROL_PREFIX):
            return self._recorded(ctx, partial(self._control, ctx))
        rule = self.state.take_fail_rule(req.method, req.path)
        if rule is not None and rule.delay:
            return After(self._waited(rule.delay), partial(self._after_rule, ctx, rule))
        return self._after_rule(ctx, rule)

    def _after_rule(self, ctx: Ctx, rule: FailRule | None) -> Answer:
        if rule is not None:
            if rule.delay and self.stopping.is_set():  # the wait ended by the stop
                return self._recorded(ctx, not_found_route)
            if rule.status is not None:
                return self._recorded(ctx, partial(_injected, ctx.req.path, rule.status))
        found = self._route(ctx)
        if found is None:
            return self._recorded(ctx, not_found_route)
        answer = partial(self._routed, ctx, found)
        blocks = found.options.get("blocks", False)
        if blocks is True or (callable(blocks) and blocks(ctx)):
            return OffLoop(partial(self._recorded, ctx, answer))
        return self._recorded(ctx, answer)

    def _route(self, ctx: Ctx) -> Route[Ctx] | None:
        old = self.state.quirks.old
        found = match(
            ROUTES,
            ctx.req.method,
            ctx.req.path,
            accept=lambda route: not (old and route.options.get("new_only")),
        )
        if found is None:
            return None
        route, ctx.params = found
        return route

    def _routed(self, ctx: Ctx, route: Route[Ctx]) -> Response:
        auth = route.options["auth"]
        if auth == "admin":
            ctx.user, ctx.auth = admin_auth(ctx)
        elif auth == "user":
            ctx.user, ctx.auth = jwt_auth(ctx), "user-jwt"
        elif auth == "gateway":
            ctx.api_key, ctx.user = gateway.authenticate(ctx)
            ctx.auth = "api-key"
        return route.handler(ctx)

    def _recorded(self, ctx: Ctx, answer: Callable[[], Response]) -> Response:
        """``answer()``, logged with its status."""
        req = ctx.req
        try:
            response = answer()
        except Abort as abort:
            response = abort.response
        except Exception:  # a simulator bug: answer like the host would, but say it loudly
            logger.error(
                "simulator error on %s %s\n%s", req.method, req.path, traceback.format_exc()
            )
            response = json_response({"code": 500, "message": "internal error"}, 500)
        self.record(req, response.status, ctx.auth)
        return response

    def _never_on_the_loop(self, request: httpx.Request) -> None:
        """A call to the upstream from the server's loop would hold every other request of
        the host for its time: a route that makes one must say it ``blocks``."""
        if self._server.in_loop():
            raise RuntimeError(f"{request.url} called on the host simulator's loop")

    def _waited(self, seconds: float) -> float:
        """How long a wait of ``seconds`` lasts: none once the simulator stops."""
        return 0.0 if self.stopping.is_set() else seconds

    def _control(self, ctx: Ctx) -> Response:
        req = ctx.req
        name = req.path[len(CONTROL_PREFIX) :]
        if req.method == "POST" and name == "quirks":
            changes = ctx.json_object()
            with self.state.lock:
                for key, value in changes.items():
                    if not hasattr(self.state.quirks, key):
                        return json_response({"error": f"unknown quirk {key}"}, 400)
                    setattr(self.state.quirks, key, value)
        elif req.method == "POST" and name == "fail":
            body = ctx.json_object()
            self.fail_next(
                body.get("method", "*"),
                body.get("path_prefix", "/"),
                count=int(body.get("count", 1)),
                status=body.get("status", 503),
                delay=float(body.get("delay", 0.0)),
            )
        elif req.method == "POST" and name == "expire-tokens":
            self.expire_tokens()
        elif req.method != "GET" or name != "quirks":
            return not_found_route()
        return json_response(vars(self.state.quirks))


def _injected(path: str, status: int) -> Response:
    """An injected failure in the dialect of the route family."""
    if path.startswith("/v1/"):
        return json_response(
            {"error": {"type": "api_error", "message": "injected failure"}}, status
        )
    return json_response({"code": status, "message": "injected failure"}, status)
