"""The host's side of the simulator's HTTP: what a route function gets (``Ctx``), the host's
error dialects and pagination. Requests, responses and the router are the shared
``relay_project.loopback_http``; route modules build on both, ``server.py`` runs them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hosts.simulator.rows import SimKey, SimUser
    from hosts.simulator.server import HostSimulator
from hosts.simulator.state import SimState
from relay_project.loopback_http import Abort, Request, Response


@dataclass
class Ctx:
    """What a route handler gets: the simulator, the request, who is calling."""

    sim: HostSimulator
    req: Request
    params: dict[str, str]
    user: SimUser | None = None
    api_key: SimKey | None = None
    auth: str = ""  # how the caller authenticated, for the request log

    @property
    def state(self) -> SimState:
        return self.sim.state

    @property
    def old(self) -> bool:
        return self.sim.state.quirks.old

    def json(self) -> Any:
        """The JSON body; a missing or malformed body is a binding failure (400)."""
        if not self.req.body.strip():
            raise bad_request("EOF")
        try:
            return json.loads(self.req.body)
        except ValueError:
            raise bad_request("invalid character in JSON body") from None

    def json_object(self, *, optional: bool = False) -> dict[str, Any]:
        if optional and not self.req.body.strip():
            return {}
        data = self.json()
        if not isinstance(data, dict):
            raise bad_request("json: cannot unmarshal into an object")
        return data


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(status=status, body=json.dumps(payload).encode())


def ok(data: Any = None) -> Response:
    """The handler success envelope; HTTP 200 even for creates (§1.4)."""
    payload: dict[str, Any] = {"code": 0, "message": "success"}
    if data is not None:
        payload["data"] = data
    return json_response(payload)


def fail(
    status: int, message: str, reason: str | None = None, metadata: dict[str, str] | None = None
) -> Abort:
    """Handler error envelope ``{"code": <status>, "message", "reason"?, "metadata"?}``."""
    payload: dict[str, Any] = {"code": status, "message": message}
    if reason:
        payload["reason"] = reason
    if metadata:
        payload["metadata"] = metadata
    return Abort(json_response(payload, status))


def internal_error() -> Abort:
    """What any untyped Go error becomes."""
    return fail(500, "internal error")


def bad_request(detail: str) -> Abort:
    return fail(400, f"Invalid request: {detail}")


def flat(status: int, code: str, message: str) -> Abort:
    """Auth-middleware shape: the code is a string and there is no data (§1.3)."""
    return Abort(json_response({"code": code, "message": message}, status))


def gateway_error(status: int, error_type: str, message: str) -> Abort:
    return Abort(json_response({"error": {"type": error_type, "message": message}}, status))


def anthropic_error(status: int, error_type: str, message: str) -> Abort:
    payload = {"type": "error", "error": {"type": error_type, "message": message}}
    return Abort(json_response(payload, status))


def not_found_route() -> Response:
    """gin's default answer for an unregistered route."""
    return Response(status=404, body=b"404 page not found", content_type="text/plain")


def required_tag(struct: str, name: str) -> Abort:
    """Mimic the validator text gin produces for a missing required field."""
    go_name = "".join(part.capitalize() for part in name.split("_"))
    return bad_request(
        f"Key: '{struct}.{go_name}' Error:Field validation for '{go_name}' failed on the "
        "'required' tag"
    )


def check_choice(value: Any, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise bad_request(
            f"Key: 'Request.{field}' Error:Field validation for '{field}' failed on the 'oneof' tag"
        )
    return value


def parse_id(raw: str, label: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise fail(400, f"Invalid {label} ID") from None
    if value <= 0:
        raise fail(400, f"Invalid {label} ID")
    return value


def _positive_int(raw: str | None, default: int) -> int:
    try:
        value = int(raw or "")
    except ValueError:
        return 0
    return value if raw else default


def paginate(items: Sequence[Any], query: Mapping[str, str], max_size: int) -> dict[str, Any]:
    """``items/total/page/page_size/pages`` with the host's fallbacks (§1.5): non-numeric or
    out-of-range values fall back to the defaults (page 1, size 20)."""
    page = _positive_int(query.get("page"), 1)
    size = _positive_int(query.get("page_size") or query.get("limit"), 20)
    page = page if page >= 1 else 1
    size = size if 1 <= size <= max_size else 20
    total = len(items)
    start = (page - 1) * size
    return {
        "items": list(items[start : start + size]),
        "total": total,
        "page": page,
        "page_size": size,
        "pages": max(1, -(-total // size)),
    }
