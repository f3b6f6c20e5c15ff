"""Domain errors of the provider inventory; the API's exception handler maps them."""

from __future__ import annotations

from relay_project.errors import DomainError, StateConflict


class ProviderError(DomainError):
    code = "invalid_request"


class InvalidProviderTransition(ProviderError, StateConflict):
    """A provider was asked to move where ``providers.state.ALLOWED`` does not permit."""

    code = "conflict"
