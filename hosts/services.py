"""Host registry services: register a sub2api host and re-probe it.

Both only *read* from the host (version + list endpoints, see ``hosts.sub2api.capabilities``);
registering never creates anything there.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from hosts.errors import HostNameTaken, HostRegistrationError
from hosts.models import Host, HostCapabilitySnapshot
from hosts.sub2api import HostError, Sub2ApiClient, client_for_host
from hosts.sub2api.capabilities import SUPPORTED_RANGE_TEXT, version_outside_support
from hosts.sub2api.errors import ErrorKind
from hosts.sub2api.types import HostCapabilities
from relay_project.base_urls import host_root
from relay_project.crypto import Secret, reveal
from relay_project.inputs import key_problem, text_problem, url_problem

__all__ = ["HostNameTaken", "HostRegistrationError", "register_host", "reprobe_host"]

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
# Host answers that mean "these admin credentials are not accepted".
logger = logging.getLogger(__name__)
NOT_SUB2API = gettext_lazy(
    "the host did not answer like a sub2api admin API (check the address and that it is "
    "reachable from relay-manager; the details are in the server log)"
)
CREDENTIAL_REASONS = frozenset(
    {
        "INVALID_ADMIN_KEY",
        "UNAUTHORIZED",
        "INVALID_TOKEN",
        "TOKEN_EXPIRED",
        "TOKEN_REVOKED",
        "USER_NOT_FOUND",
        "USER_INACTIVE",
        "INVALID_CREDENTIALS",
    }
)


@dataclass
class ProbeOutcome:
    """What one probe learned. ``field_errors`` set: the input is wrong (nothing to save on
    register); ``status`` unreachable: no usable answer; otherwise ``capabilities``."""

    status: str
    version: str = ""
    capabilities: HostCapabilities | None = None
    error: str = ""
    field_errors: dict[str, str] = field(default_factory=dict)


def validate_registration(
    *, name: str, base_url: str, auth_type: str, admin_credential: str, admin_email: str
) -> dict[str, str]:
    """Field → message for every problem visible without asking the host."""
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = _("a name is required")
    elif len(name) > 100:
        errors["name"] = _("at most %(n)d characters") % {"n": 100}
    elif Host.objects.filter(name=name).exists():
        errors["name"] = _("a host named %(name)s is already registered") % {"name": repr(name)}
    url_error = url_problem(base_url)
    if url_error:
        errors["base_url"] = (
            _("a base URL is required") if url_error == _("is required") else url_error
        )
    elif urlsplit(base_url).scheme == "http" and _reaches_public_address(base_url):
        errors["base_url"] = _(
            "plain http is only allowed for loopback or private addresses (a host on your "
            "own network); use https"
        )
    if auth_type not in Host.AuthType.values:
        errors["auth_type"] = _("must be one of %(choices)s") % {
            "choices": ", ".join(Host.AuthType.values)
        }
    if not admin_credential:
        errors["admin_credential"] = (
            _("the admin API key is required")
            if auth_type == Host.AuthType.ADMIN_API_KEY
            else _("the admin password is required")
        )
    elif auth_type == Host.AuthType.ADMIN_API_KEY and key_problem(admin_credential):
        errors["admin_credential"] = key_problem(admin_credential)
    elif auth_type == Host.AuthType.ADMIN_API_KEY and not admin_credential.startswith("admin-"):
        errors["admin_credential"] = _("a sub2api admin API key looks like admin-<64 hex>")
    elif auth_type == Host.AuthType.PASSWORD and text_problem(admin_credential, max_length=512):
        errors["admin_credential"] = text_problem(admin_credential, max_length=512)
    if auth_type == Host.AuthType.PASSWORD and not EMAIL_RE.match(admin_email or ""):
        errors["admin_email"] = _("an admin email address is required for password auth")
    return errors


def _reaches_public_address(base_url: str) -> bool:
    """Whether the URL's host resolves to any public address (unresolvable: no, the probe
    then answers with the generic refusal)."""
    parts = urlsplit(base_url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 80, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not (address.is_loopback or address.is_private or address.is_link_local):
            return True
    return False


def _credential_errors(host: Host, error: HostError) -> dict[str, str]:
    if host.auth_type == Host.AuthType.PASSWORD:
        if error.reason == "FORBIDDEN":
            return {"admin_email": _("this host user is not an admin")}
        return {
            "admin_credential": _("the host rejected this admin email and password (%(error)s)")
            % {"error": error}
        }
    return {
        "admin_credential": _("the host rejected the admin API key (%(error)s)") % {"error": error}
    }


def probe_host(host: Host, *, transport: httpx.BaseTransport | None = None) -> ProbeOutcome:
    """Read the version and the capabilities; classify whatever goes wrong."""
    client: Sub2ApiClient = client_for_host(host, transport=transport)
    try:
        capabilities = client.probe_capabilities()
    except HostError as exc:
        if exc.status is None or exc.transient:
            return ProbeOutcome(status=Host.Status.UNREACHABLE, error=str(exc))
        sub2api_shaped = exc.kind in (ErrorKind.HANDLER, ErrorKind.MIDDLEWARE)
        if sub2api_shaped and (exc.status in (401, 403) or exc.reason in CREDENTIAL_REASONS):
            return ProbeOutcome(
                status=Host.Status.UNREACHABLE,
                error=str(exc),
                field_errors=_credential_errors(host, exc),
            )
        message = f"no sub2api admin API answers at this address ({exc})"
        return ProbeOutcome(
            status=Host.Status.UNREACHABLE, error=str(exc), field_errors={"base_url": message}
        )
    finally:
        client.close()
    if version_outside_support(capabilities.version):
        message = unsupported_version_message(capabilities.version)
        return ProbeOutcome(
            status=Host.Status.UNSUPPORTED,
            version=capabilities.version,
            capabilities=capabilities,
            error=message,
            field_errors={"base_url": message},
        )
    status = Host.Status.SUPPORTED if capabilities.supported else Host.Status.UNSUPPORTED
    error = "" if capabilities.supported else "missing: " + ", ".join(capabilities.missing)
    return ProbeOutcome(
        status=status, version=capabilities.version, capabilities=capabilities, error=error
    )


def unsupported_version_message(version: str) -> str:
    return (
        f"this sub2api reports version {version}, outside the versions relay-manager supports "
        f"({SUPPORTED_RANGE_TEXT}); see the README, Host versions"
    )


def _apply(host: Host, outcome: ProbeOutcome) -> list[str]:
    """Copy the outcome onto the row; returns the changed field names."""
    host.status = outcome.status
    host.last_error = outcome.error
    host.last_probed_at = timezone.now()
    changed = ["status", "last_error", "last_probed_at"]
    if outcome.capabilities is not None:
        host.version = outcome.version
        host.missing_capabilities = outcome.capabilities.missing
        changed += ["version", "missing_capabilities"]
    return changed


def _snapshot(host: Host, outcome: ProbeOutcome) -> None:
    if outcome.capabilities is None:
        return
    HostCapabilitySnapshot.objects.create(
        host=host,
        version=outcome.version,
        capabilities=dict(outcome.capabilities.capabilities),
        missing_capabilities=outcome.capabilities.missing,
        supported=outcome.capabilities.supported,
    )


def register_host(
    *,
    name: str,
    base_url: str,
    auth_type: str,
    admin_credential: Secret | str,
    admin_email: str = "",
    transport: httpx.BaseTransport | None = None,
) -> Host:
    """Validate, probe (read-only) and save a host with its first capability snapshot.

    Raises ``HostRegistrationError`` (nothing saved) for bad input, rejected credentials or an
    address where no sub2api admin API answers (one generic message, whatever answered or not,
    the detail in the log). One that lacks capabilities is saved ``unsupported``, them named.
    """
    name = (name or "").strip()
    base_url = host_root(base_url)
    admin_email = (admin_email or "").strip()
    errors = validate_registration(
        name=name,
        base_url=base_url,
        auth_type=auth_type,
        admin_credential=reveal(admin_credential).strip(),
        admin_email=admin_email,
    )
    if errors:
        taken = set(errors) == {"name"} and Host.objects.filter(name=name).exists()
        raise (HostNameTaken if taken else HostRegistrationError)(errors)
    host = Host(
        name=name,
        base_url=base_url,
        auth_type=auth_type,
        admin_email=admin_email,
        admin_credential=Secret(reveal(admin_credential).strip()),
    )
    outcome = probe_host(host, transport=transport)
    if outcome.field_errors and "base_url" not in outcome.field_errors:
        raise HostRegistrationError(outcome.field_errors)  # a sub2api refused the credential
    if outcome.status == Host.Status.UNREACHABLE:
        # One answer for a closed port, another service and a non-sub2api web server: the
        # registration form must not tell them apart (it would be a port scanner).
        logger.info("host registration of %s refused: %s", base_url, outcome.error)
        raise HostRegistrationError({"base_url": str(NOT_SUB2API)})
    if outcome.field_errors:  # a sub2api that answered the admin key, in a version we refuse
        raise HostRegistrationError(outcome.field_errors)
    with transaction.atomic():
        _apply(host, outcome)
        host.save()
        _snapshot(host, outcome)
    return host


def reprobe_host(host: Host, transport: httpx.BaseTransport | None = None) -> Host:
    """Probe a registered host again and record the result (and a snapshot when it answered).

    Rejected credentials do not raise here: the host is marked ``unreachable`` with the reason
    in ``last_error``, which is what a scheduled re-probe needs.
    """
    outcome = probe_host(host, transport=transport)
    if outcome.field_errors:
        outcome.error = "; ".join(f"{k}: {v}" for k, v in outcome.field_errors.items())
    with transaction.atomic():
        locked = Host.objects.select_for_update().get(pk=host.pk)
        changed = _apply(locked, outcome)
        locked.save(update_fields=[*changed, "updated_at"])
        _snapshot(locked, outcome)
    host.refresh_from_db()
    return host
