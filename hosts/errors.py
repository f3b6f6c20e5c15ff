"""Domain errors of the host registry; the API's exception handler maps them to the envelope."""

from __future__ import annotations

from relay_project.errors import DomainError


class HostRegistrationError(DomainError):
    """Registration input was rejected; ``errors`` maps each field name to a message.

    Raised for bad input and for what the host says about it (a rejected admin key, an address
    with no sub2api behind it). Nothing has been saved when it is raised.
    """

    code = "invalid_request"

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        self.field_errors = self.errors
        super().__init__("; ".join(f"{field}: {msg}" for field, msg in self.errors.items()))


class HostNameTaken(HostRegistrationError):
    """The input is fine but another host already has the name: a conflict with what is
    stored (409), not a malformed request."""

    http_status = 409
