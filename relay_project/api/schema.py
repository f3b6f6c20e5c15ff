"""drf-spectacular hooks: facts about the API that the generator cannot see."""

from __future__ import annotations

from typing import Any


def allow_empty_query_values(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Every query parameter treats an empty value as "not given" (``?state=&limit=`` is the
    unfiltered first page), as django-filter and the pagination do; say so in the schema."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    parameter["allowEmptyValue"] = True
    return result


_BODY_ERRORS = {
    "413": "invalid_request: the body is larger than RELAY_MAX_REQUEST_BYTES",
    "415": "invalid_request: the body is not in a media type this operation reads (or the "
    "multipart framing is broken)",
}


def document_body_errors(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Every operation that takes a body answers 413 when it is over RELAY_MAX_REQUEST_BYTES
    and 415 when it cannot be parsed as the declared media type, before any validation."""
    envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if "requestBody" in operation:
                for code, description in _BODY_ERRORS.items():
                    operation["responses"].setdefault(
                        code, {"description": description, "content": envelope}
                    )
    return result
