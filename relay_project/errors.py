"""The domain errors' common base: apps subclass it, the API maps it without knowing the apps."""

from __future__ import annotations

from collections.abc import Mapping


class DomainError(Exception):
    """A request the domain refuses; ``http_status`` is how the API answers it.

    ``field_errors`` (field path → message) names what was wrong when the request itself was
    invalid; it becomes the envelope's ``fields``.
    """

    http_status = 400
    field_errors: Mapping[str, str] | None = None


class StateConflict(DomainError):
    """The request does not fit the current state (a transition not allowed, a duplicate)."""

    http_status = 409
