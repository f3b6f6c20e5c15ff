"""Model discovery: ``GET {base}/v1/models`` (seed 001 §4.1).

Auth failure, an unreachable host, a timeout and a non-JSON answer raise ``ProbeError`` with
distinct kinds. An upstream that answers 200 with no models is *not* a transport error: the
result comes back with an empty list and ``is_empty`` set (the probe stage then falls back on
a model pack's defaults, or fails the item with ``upstream_model_missing``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probe.client import UpstreamClient
from probe.errors import ProbeError, ProbeErrorKind

MODELS_PATH = "/v1/models"


@dataclass(frozen=True)
class ModelsResult:
    raw_models: list[str]
    http_status: int
    latency_ms: int

    @property
    def is_empty(self) -> bool:
        return not self.raw_models


def discover_models(client: UpstreamClient) -> ModelsResult:
    """List the upstream's model ids, in the upstream's order, without duplicates."""
    response = client.get_json(MODELS_PATH)
    entries = _model_entries(response.data)
    if entries is None:
        raise ProbeError(
            ProbeErrorKind.BAD_RESPONSE,
            f"GET {client.url(MODELS_PATH)}: HTTP {response.status} but the body is not a model "
            "list (expected {'data': [...]}, {'models': [...]} or a JSON array)",
            status=response.status,
        )
    ids = list(dict.fromkeys(filter(None, (_model_id(entry) for entry in entries))))
    if entries and not ids:
        raise ProbeError(
            ProbeErrorKind.BAD_RESPONSE,
            f"GET {client.url(MODELS_PATH)}: {len(entries)} entries but none carries a model id",
            status=response.status,
        )
    return ModelsResult(raw_models=ids, http_status=response.status, latency_ms=response.latency_ms)


def _model_entries(data: Any) -> list[Any] | None:
    """The list of model entries in the shapes providers use, or None for an unknown shape."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in ("data", "models"):
            if key in data:
                value = data[key]
                if value is None:
                    return []
                return value if isinstance(value, list) else None
        if data.get("object") == "list":  # {"object": "list"} with the data key left out
            return []
    return None


def _model_id(entry: Any) -> str | None:
    """A string entry is the id; an object carries ``id`` (OpenAI) or ``name``/``model``."""
    if isinstance(entry, str):
        value: Any = entry
    elif isinstance(entry, dict):
        value = entry.get("id") or entry.get("name") or entry.get("model")
    else:
        return None
    if not isinstance(value, str):
        return None
    return value.strip() or None
