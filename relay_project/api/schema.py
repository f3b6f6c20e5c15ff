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
