"""Build pack files in memory for tests: valid by default, each part overridable."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

MANIFEST = {
    "pack_id": "test-pack",
    "version": "1.0.0",
    "name": "Test pack",
    "host_versions": ">=0.1.0,<1",
}


def provider(provider_id: str = "deepseek", **overrides: Any) -> dict[str, Any]:
    body = {
        "provider_id": provider_id,
        "base_url": f"https://{provider_id}.example.com/v1",
        "default_models": ["model-a", "model-b"],
        "smoke_test_model": "model-a",
        "prices": {
            "unit": "usd_per_1m_tokens",
            "as_of": "2026-12-01",
            "models": {"model-a": {"input": 0.5, "output": 2.0, "cache_read": 0.1}},
        },
    }
    body.update(overrides)
    return body


def checksums(files: dict[str, bytes]) -> bytes:
    lines = [f"{hashlib.sha256(data).hexdigest()}  {name}" for name, data in sorted(files.items())]
    return ("\n".join(lines) + "\n").encode()


def pack_files(
    *, manifest: dict | None = None, providers: list[dict] | None = None, **manifest_overrides
) -> dict[str, bytes]:
    """pack.json + providers/<id>.json + a matching checksums.txt."""
    files = {"pack.json": json.dumps({**(manifest or MANIFEST), **manifest_overrides}).encode()}
    for number, body in enumerate(providers if providers is not None else [provider()]):
        name = body.get("provider_id") or f"p{number}"
        files[f"providers/{name}.json"] = json.dumps(body).encode()
    files["checksums.txt"] = checksums(files)
    return files


def with_checksums(files: dict[str, bytes]) -> dict[str, bytes]:
    body = {k: v for k, v in files.items() if k != "checksums.txt"}
    return {**body, "checksums.txt": checksums(body)}


def zipped(files: dict[str, bytes], prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(prefix + name, data)
    return buffer.getvalue()
