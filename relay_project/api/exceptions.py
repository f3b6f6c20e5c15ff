"""The API's one exception handler (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``).

DRF's own errors, Django's and the domain's all leave as the envelope of ``errors.py``. An
exception nobody expected becomes a 500 whose message says nothing about its cause: the
traceback goes to the log (through the redacting filter), never to the client.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException, ErrorDetail, ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from relay_project.api.errors import ErrorCode, InvalidInput, code_for_status, envelope
from relay_project.api.parsers import RequestTooLarge
from relay_project.errors import DomainError

logger = logging.getLogger("relay_project.api")

INTERNAL_MESSAGE = _("internal error; it has been logged")


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    exc = _as_api_exception(exc)
    response = drf_exception_handler(exc, context)  # Http404/PermissionDenied too; headers
    if response is None:
        view = context.get("view")
        logger.error(
            "unhandled error in %s", type(view).__name__ if view else "API view", exc_info=exc
        )
        set_rollback()
        return Response(
            envelope(ErrorCode.INTERNAL_ERROR, str(INTERNAL_MESSAGE)),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    fields: dict[str, str] | None = None
    if isinstance(exc, InvalidInput):
        fields = exc.fields
        message = str(exc.detail)
    elif isinstance(exc, ValidationError):
        fields = flatten_errors(exc.detail)
        message = "; ".join(f"{path}: {msg}" for path, msg in fields.items())
    elif response.status_code >= 500:
        message = str(INTERNAL_MESSAGE)
    else:
        message = _message(exc)
    response.data = envelope(code_for_status(response.status_code), message, fields)
    return response


def _as_api_exception(exc: Exception) -> Exception:
    """Domain and Django errors → the DRF exception with the right status."""
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge()
    if isinstance(exc, DomainError):
        if exc.field_errors:
            error = InvalidInput(dict(exc.field_errors))
            error.status_code = exc.http_status  # 409: the input conflicts with what is stored
            return error
        return _with_status(exc.http_status, str(exc))
    if isinstance(exc, ObjectDoesNotExist):
        return _with_status(status.HTTP_404_NOT_FOUND, gettext("not found"))
    if isinstance(exc, DjangoValidationError):
        return InvalidInput(
            {key: " ".join(msgs) for key, msgs in exc.message_dict.items()}
            if hasattr(exc, "error_dict")
            else {"body": " ".join(exc.messages)}
        )
    return exc


def _with_status(status_code: int, message: str) -> APIException:
    error = APIException(message)
    error.status_code = status_code
    return error


def _message(exc: Exception) -> str:
    detail = getattr(exc, "detail", None)
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_text(v)}" for k, v in detail.items())
    if detail is not None:
        return _text(detail)
    return str(exc)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_text(v) for v in value)
    return str(value)


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, str]:
    """DRF's nested error structure → {"entries[3].base_url": "message"}."""
    if isinstance(detail, dict):
        flat: dict[str, str] = {}
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                path = prefix
            elif isinstance(key, int) or str(key).isdigit():
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_errors(value, path))
        return flat
    if isinstance(detail, list):
        if all(isinstance(item, str | ErrorDetail) for item in detail):
            return {prefix or "body": " ".join(str(item) for item in detail)}
        flat = {}
        for index, item in enumerate(detail):
            if item:
                flat.update(flatten_errors(item, f"{prefix}[{index}]"))
        return flat
    return {prefix or "body": str(detail)}
