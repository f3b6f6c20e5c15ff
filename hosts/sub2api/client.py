"""The only way to the host: transport, admin auth, the ``{code,message,data}`` envelope.

``Sub2ApiClient`` is the public entry. It owns one ``HostHTTP`` (a timeout on every call, an
injectable ``httpx`` transport, a per-host concurrency bound, retries of transient *reads*) and
hangs one small API object per resource on it: ``client.groups``, ``.channels``, ``.accounts``,
``.users``, ``.subscriptions``, ``.keys``, ``.gateway``.

Secrets (admin key, admin password, user JWTs and keys) are held as ``Secret`` and revealed only
while a request's headers or body are built; nothing here logs headers or bodies.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import getproxies

import httpx
from django.conf import settings

from hosts.sub2api.accounts import AccountsAPI
from hosts.sub2api.capabilities import probe_capabilities
from hosts.sub2api.channels import ChannelsAPI
from hosts.sub2api.errors import (
    HostError,
    parse_error_body,
    protocol_error,
    transport_error,
)
from hosts.sub2api.gateway import GatewayAPI
from hosts.sub2api.groups import GroupsAPI
from hosts.sub2api.keys import KeysAPI
from hosts.sub2api.subscriptions import SubscriptionsAPI
from hosts.sub2api.types import HostCapabilities, User, UserSession
from hosts.sub2api.users import UsersAPI
from relay_project.base_urls import host_root
from relay_project.branches import locked
from relay_project.crypto import Secret, reveal
from relay_project.limits import Slot, slot
from relay_project.pooled_http import PooledTransport, send_plainly, without_cookies
from relay_project.tls import client_tls_context

if TYPE_CHECKING:
    from hosts.models import Host

logger = logging.getLogger(__name__)

ADMIN_PREFIX = "/api/v1/admin"
LOGIN_PATH = "/api/v1/auth/login"
# The [OLD] maximum page size; larger values silently fall back to 20 there (§1.5).
PAGE_SIZE = 100
MAX_PAGES = 10_000
# A JWT that stopped working mid-session: log in again once, then give up.
RELOGIN_REASONS = frozenset({"TOKEN_EXPIRED", "TOKEN_REVOKED"})


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default) if settings.configured else default


def _host_slot(base_url: str, size: int) -> Slot:
    """The bound on calls toward one host (scheme + netloc), shared by every client of every
    process, so concurrent items never exceed RELAY_HOST_CONCURRENCY calls toward one host."""
    parts = urlsplit(base_url)
    return slot(f"host:{parts.scheme}://{parts.netloc}", size)


# Request URLs kept (see ``endpoint_url``): a path with an id is one entry per id, the fixed
# paths every item calls stay among the recent ones.
ENDPOINT_URLS_MAX = 1024


@lru_cache(maxsize=ENDPOINT_URLS_MAX)
def endpoint_url(prefix: str, path: str) -> httpx.URL:
    """The absolute URL of ``path`` under a client's ``base_url`` (``prefix``, as text), as httpx
    would merge them. Building one parses and checks the whole URL, which httpx did twice per
    request given a relative path (the path, then the merged URL)."""
    return httpx.URL(prefix + path.lstrip("/"))


class HostHTTP:
    """Transport + auth + envelope for one host. Resource modules call ``admin``/``user``."""

    def __init__(
        self,
        base_url: str,
        *,
        admin_api_key: Secret | str | None = None,
        admin_email: str | None = None,
        admin_password: Secret | str | None = None,
        timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
        retries: int | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        self.base_url = host_root(base_url)
        self.timeout = float(timeout if timeout is not None else _setting("RELAY_HTTP_TIMEOUT", 15))
        self.retries = int(retries if retries is not None else _setting("RELAY_HTTP_RETRIES", 2))
        self._admin_key = Secret(admin_api_key) if admin_api_key else None
        self._admin_email = admin_email or ""
        self._admin_password = Secret(admin_password) if admin_password else None
        self._admin_token: Secret | None = None
        self._token_lock = threading.Lock()
        size = max_concurrency or _setting("RELAY_HOST_CONCURRENCY", 4)
        self._slot = _host_slot(self.base_url, int(size))
        if transport is None and not getproxies():
            # As many connections kept open as calls may run at once (the host slot bounds
            # the calls). With a proxy in the environment httpx's own transport goes through
            # it (below), as it always did.
            transport = PooledTransport(ssl_context=client_tls_context(), max_keepalive=int(size))
        # Plain calls go straight to our transport (``send_plainly``); httpx's own (a proxy)
        # only through the client.
        self._plain_transport = transport
        self._client = httpx.Client(
            verify=client_tls_context(),
            base_url=self.base_url,
            timeout=self.timeout,
            transport=transport,
            # For httpx's own transport (the proxy case): as many kept as above.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=int(size)),
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": "relay-manager"},
        )
        # The host's API authenticates by header. A cookie an answer sets is never sent back:
        # one client serves the calls of many items and users (``shared_client_for_host``).
        # Not even read: httpx builds a urllib request per answer to look for one.
        without_cookies(self._client)
        # Requests name absolute URLs (``_url``), so httpx merges nothing per call. The prefix is
        # the base as httpx merges a path into it (lower-case scheme, no default port, "/" last).
        base = self._client.base_url
        self._url_prefix = str(base.copy_with(raw_path=base.raw_path))

    def close(self) -> None:
        self._client.close()

    # --- auth -----------------------------------------------------------------------------

    @property
    def uses_password(self) -> bool:
        return self._admin_key is None

    def _admin_headers(self) -> dict[str, str]:
        # x-api-key wins on the host even beside a valid Bearer token (§1.2), so send one only.
        if self._admin_key is not None:
            return {"x-api-key": self._admin_key.reveal()}
        with locked(self._token_lock):  # its holder may be logging in
            if self._admin_token is None:
                self._admin_token = self.login(self._admin_email, self._admin_password)[0]
            return {"Authorization": f"Bearer {self._admin_token.reveal()}"}

    def _forget_admin_token(self) -> None:
        with locked(self._token_lock):
            self._admin_token = None

    def login(self, email: str, password: Secret | str | None) -> tuple[Secret, dict[str, Any]]:
        """``POST /api/v1/auth/login`` → (JWT, user DTO)."""
        data = self._data(
            self._send("POST", LOGIN_PATH, json={"email": email, "password": reveal(password)}),
            "POST",
            LOGIN_PATH,
        )
        token = data.get("access_token") if isinstance(data, Mapping) else None
        if not isinstance(token, str) or not token:
            raise protocol_error(
                "login answer has no access_token", status=200, method="POST", path=LOGIN_PATH
            )
        user = data.get("user")
        return Secret(token), dict(user) if isinstance(user, Mapping) else {}

    def _should_relogin(self, response: httpx.Response, already: bool) -> bool:
        if already or response.status_code != 401 or not self.uses_password:
            return False
        return parse_error_body(401, response.content).reason in RELOGIN_REASONS

    # --- sending ----------------------------------------------------------------------------

    def _url(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.URL:
        url = endpoint_url(self._url_prefix, path)
        return url.copy_merge_params(params) if params else url

    def _send(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One HTTP exchange; transport failures become transient ``HostError``s."""
        started = time.monotonic()
        url = self._url(path, params)
        with self._slot:
            try:
                if self._plain_transport is not None:
                    response = send_plainly(
                        self._client, self._plain_transport, method, url, **kwargs
                    )
                else:
                    response = self._client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                logger.info("host %s %s: %s", method, path, type(exc).__name__)
                raise transport_error(exc, method=method, path=path, timeout=self.timeout) from exc
        logger.debug(
            "host %s %s -> %s (%.0f ms)",
            method,
            path,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """``_send`` plus retries of transient failures, for reads only: writes are never
        repeated, because the host does not deduplicate accounts (§4.2)."""
        attempts = self.retries + 1 if method == "GET" else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._send(method, path, **kwargs)
            except HostError:
                if last:
                    raise
            else:
                if last or not (response.status_code == 429 or response.status_code >= 500):
                    return response
            time.sleep(min(0.2 * 2**attempt, 2.0))
        raise AssertionError("unreachable")  # pragma: no cover

    def _data(self, response: httpx.Response, method: str, path: str) -> Any:
        """Unwrap ``{"code":0,"data":…}``; raise ``HostError`` for anything else."""
        status = response.status_code
        if not 200 <= status < 300:
            raise parse_error_body(status, response.content, method=method, path=path)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, Mapping) or not isinstance(body.get("code"), int):
            ctype = response.headers.get("content-type", "?")
            raise protocol_error(
                f"not a sub2api envelope ({ctype})", status=status, method=method, path=path
            )
        if body["code"] != 0:
            raise parse_error_body(status, response.content, method=method, path=path)
        return body.get("data")

    def admin(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """An admin call (``/api/v1/admin`` + path); returns the envelope's ``data``."""
        full = ADMIN_PREFIX + path
        relogged = False
        while True:
            response = self.send(
                method,
                full,
                headers={**self._admin_headers(), **(headers or {})},
                json=json,
                params=params,
            )
            if self._should_relogin(response, relogged):
                self._forget_admin_token()
                relogged = True
                continue
            return self._data(response, method, full)

    def user(
        self,
        token: Secret | str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """A user-JWT call (``/api/v1`` + path); returns the envelope's ``data``."""
        full = "/api/v1" + path
        headers = {"Authorization": f"Bearer {reveal(token)}"}
        response = self.send(method, full, headers=headers, json=json, params=params)
        return self._data(response, method, full)

    @contextmanager
    def admin_stream(self, method: str, path: str, *, json: Any = None) -> Iterator[httpx.Response]:
        """An admin call whose 2xx body is read incrementally (the SSE account test)."""
        full = ADMIN_PREFIX + path
        relogged = False
        while True:
            # Headers first: a login takes a place of its own, and places are not reentrant.
            headers = self._admin_headers()
            with self._slot:
                request = self._client.build_request(
                    method, self._url(full), headers=headers, json=json
                )
                try:
                    response = self._client.send(request, stream=True)
                except httpx.TransportError as exc:
                    raise transport_error(
                        exc, method=method, path=full, timeout=self.timeout
                    ) from exc
                try:
                    if response.status_code >= 300:
                        response.read()
                        if self._should_relogin(response, relogged):
                            self._forget_admin_token()
                            relogged = True
                            continue
                        raise parse_error_body(
                            response.status_code, response.content, method=method, path=full
                        )
                    yield response
                    return
                finally:
                    response.close()

    def iter_admin_pages(
        self, path: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[Mapping[str, Any]]:
        """Every item of a paginated admin list, page by page (``items/total/page/pages``)."""
        query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        for page in range(1, MAX_PAGES + 1):
            data = self.admin("GET", path, params={**query, "page": page, "page_size": PAGE_SIZE})
            if not isinstance(data, Mapping) or not isinstance(data.get("items"), list):
                raise protocol_error(
                    "not a paginated list", status=200, method="GET", path=ADMIN_PREFIX + path
                )
            items = data["items"]
            yield from (item for item in items if isinstance(item, Mapping))
            pages = data.get("pages")
            if not items or not isinstance(pages, int) or page >= pages:
                return


class Sub2ApiClient:
    """Typed access to one sub2api host.

    Admin auth is either ``admin_api_key`` (sent as ``x-api-key``) or ``admin_email`` +
    ``admin_password`` (login for a JWT, logged in again once when it expires).
    """

    def __init__(
        self,
        base_url: str,
        *,
        admin_api_key: Secret | str | None = None,
        admin_email: str | None = None,
        admin_password: Secret | str | None = None,
        timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
        retries: int | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        if not admin_api_key and not (admin_email and admin_password):
            raise ValueError("either admin_api_key or admin_email + admin_password is required")
        self.http = HostHTTP(
            base_url,
            admin_api_key=admin_api_key,
            admin_email=admin_email,
            admin_password=admin_password,
            timeout=timeout,
            transport=transport,
            retries=retries,
            max_concurrency=max_concurrency,
        )
        self.groups = GroupsAPI(self.http)
        self.channels = ChannelsAPI(self.http)
        self.accounts = AccountsAPI(self.http)
        self.users = UsersAPI(self.http)
        self.subscriptions = SubscriptionsAPI(self.http)
        self.keys = KeysAPI(self.http)
        self.gateway = GatewayAPI(self.http)

    @property
    def base_url(self) -> str:
        return self.http.base_url

    def version(self) -> str:
        """``GET /admin/system/version``: "0.1.1" on [OLD] builds, e.g. "0.1.115.1" on [NEW]."""
        data = self.http.admin("GET", "/system/version")
        if not isinstance(data, Mapping) or not isinstance(data.get("version"), str):
            raise protocol_error(
                "version answer has no version",
                status=200,
                method="GET",
                path=ADMIN_PREFIX + "/system/version",
            )
        return data["version"]

    def probe_capabilities(self) -> HostCapabilities:
        """Which features the host has, using list endpoints only (no side effects)."""
        return probe_capabilities(self.http, self.version())

    def login(self, email: str, password: Secret | str) -> UserSession:
        """Log in as a (normally non-admin) host user, e.g. to create their API keys."""
        token, user = self.http.login(email, password)
        return UserSession(user=User.from_api(user), access_token=token)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Sub2ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def client_for_host(
    host: Host,
    *,
    transport: httpx.BaseTransport | None = None,
    timeout: float | None = None,
    retries: int | None = None,
) -> Sub2ApiClient:
    """A client for a registered ``Host`` row, authenticated the way the row says."""
    if host.auth_type == "password":
        return Sub2ApiClient(
            host.base_url,
            admin_email=host.admin_email,
            admin_password=host.admin_credential,
            timeout=timeout,
            transport=transport,
            retries=retries,
        )
    return Sub2ApiClient(
        host.base_url,
        admin_api_key=host.admin_credential,
        timeout=timeout,
        transport=transport,
        retries=retries,
    )


# Clients the pipeline shares within this process, newest last (see ``shared_client_for_host``).
SHARED_CLIENTS_MAX = 32
_shared_lock = threading.Lock()
_shared_clients: dict[tuple, Sub2ApiClient] = {}


def shared_client_for_host(
    host: Host, *, transport: httpx.BaseTransport | None = None
) -> Sub2ApiClient:
    """A long-lived client for ``host``, shared by this process's threads: its connections are
    pooled and a password host's admin login serves every call, where a client per stage
    connected (and logged in) again each time. Callers never close it.

    Whatever the client is built from is part of the key: a changed row (URL, auth,
    credential) or changed settings get a client of their own. A forked worker starts with
    none (the parent's connections are not its own).
    """
    key = (
        host.pk,
        host.base_url,
        host.auth_type,
        host.admin_email,
        host.admin_credential,  # a Secret: compared and hashed by value, never shown
        id(transport) if transport is not None else None,
        _setting("RELAY_HTTP_TIMEOUT", 15),
        _setting("RELAY_HTTP_RETRIES", 2),
        _setting("RELAY_HOST_CONCURRENCY", 4),
    )
    with _shared_lock:
        client = _shared_clients.pop(key, None)
        if client is None:
            client = client_for_host(host, transport=transport)
        _shared_clients[key] = client  # newest last; the client holds the transport alive
        while len(_shared_clients) > SHARED_CLIENTS_MAX:
            # Dropped, not closed: another thread may be using it (its pool goes with it).
            _shared_clients.pop(next(iter(_shared_clients)))
        return client


os.register_at_fork(after_in_child=_shared_clients.clear)
