"""The one error envelope of the API (seed 004 §5) and the serializers that document it.

Every error any endpoint returns has the shape ``{"error": {"code", "message"}}``; request
validation errors add ``fields`` (field path → message) so a client can point at the input.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import APIException


class ErrorCode(models.TextChoices):
    INVALID_REQUEST = "invalid_request", "invalid_request"
    UNAUTHORIZED = "unauthorized", "unauthorized"
    FORBIDDEN = "forbidden", "forbidden"
    NOT_FOUND = "not_found", "not_found"
    CONFLICT = "conflict", "conflict"
    INTERNAL_ERROR = "internal_error", "internal_error"


def code_for_status(status_code: int) -> str:
    """The envelope code for an HTTP status. Other 4xx answers (405 method, 406 accept, 413,
    415 media type, 429 throttled) are all "the request cannot be served as sent"."""
    if status_code >= 500:
        return ErrorCode.INTERNAL_ERROR
    return {
        400: ErrorCode.INVALID_REQUEST,
        401: ErrorCode.UNAUTHORIZED,
        403: ErrorCode.FORBIDDEN,
        404: ErrorCode.NOT_FOUND,
        409: ErrorCode.CONFLICT,
    }.get(status_code, ErrorCode.INVALID_REQUEST)


def envelope(code: str, message: str, fields: dict[str, str] | None = None) -> dict:
    body: dict = {"code": str(code), "message": message}
    if fields:
        body["fields"] = dict(fields)
    return {"error": body}


class InvalidInput(APIException):
    """400 with per-field messages, for input rejected outside DRF's serializers (a domain
    validator, a header, a cursor)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_request"

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = dict(fields)
        super().__init__("; ".join(f"{path}: {msg}" for path, msg in self.fields.items()))


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=ErrorCode.choices)
    message = serializers.CharField(help_text="What went wrong, for people; never a secret.")
    fields = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text=(
            "invalid_request (and a conflict caused by one field): field path (e.g. "
            "entries[3].base_url) → message."
        ),
    )


class ErrorEnvelopeSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


_DESCRIPTIONS = {
    400: "invalid_request: the input (body, query, header or cursor) is not valid",
    401: "unauthorized: no or invalid credentials (send `Authorization: Token <key>`)",
    403: "forbidden: authenticated but not allowed (e.g. missing CSRF token with a session)",
    404: "not_found: no such resource",
    409: "conflict: the resource is not in a state that allows this, or the input clashes "
    "with a stored one (a host name already registered)",
    422: "invalid_request: well formed, but what it carries breaks a rule of its content "
    "(a model pack's files, checksums or host range); `fields` names the file or field",
    500: "internal_error: the server failed; details are logged, never returned",
}

_EXAMPLES = {
    400: envelope(
        ErrorCode.INVALID_REQUEST,
        "subscription_users: is required when access_mode=subscription",
        {"subscription_users": "is required when access_mode=subscription"},
    ),
    404: envelope(ErrorCode.NOT_FOUND, "run run_20260522_0001 does not exist"),
    409: envelope(ErrorCode.CONFLICT, "run run_20260522_0001 is already completed"),
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """Schema entries for the given error statuses, all with the envelope. 401, 403 and 500
    can happen on every endpoint and are always included."""
    wanted: Iterable[int] = sorted({401, 403, 500, *statuses})
    return {
        code: OpenApiResponse(
            response=ErrorEnvelopeSerializer,
            description=_DESCRIPTIONS[code],
            examples=[
                OpenApiExample(
                    f"error {code}", value=_EXAMPLES[code], response_only=True, status_codes=[code]
                )
            ]
            if code in _EXAMPLES
            else [],
        )
        for code in wanted
    }
