"""Domain errors of the batch import; the API's exception handler maps them to the envelope."""

from __future__ import annotations

from relay_project.errors import DomainError, StateConflict


class BatchImportError(DomainError):
    code = "invalid_request"


class InvalidTransition(BatchImportError, StateConflict):
    """An item or run was asked to move somewhere the ALLOWED tables do not permit."""

    code = "conflict"


class AccessStatusWriteForbidden(InvalidTransition):
    """Only the validation stage may write ``access_status``."""


class InvalidRequest(BatchImportError):
    """A run request failed validation; ``errors`` maps field paths to messages."""

    code = "invalid_request"

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        self.field_errors = self.errors
        super().__init__("; ".join(f"{field}: {msg}" for field, msg in self.errors.items()))


class UnknownHost(InvalidRequest):
    """The request is well formed but names a host that is not registered: like an unknown id
    in a path, a 404 (the form and the CLI show it under ``host_id`` as any other error)."""

    code = "not_found"
    http_status = 404


class Conflict(BatchImportError, StateConflict):
    code = "conflict"
