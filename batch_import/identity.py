"""Stable identities: ``provider_id`` from a base URL, fingerprints from an upstream key."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from relay_project.base_urls import upstream_root
from relay_project.crypto import Secret, display_fingerprint, matching_digest

if TYPE_CHECKING:
    import tldextract


@lru_cache(maxsize=1)
def _extractor() -> tldextract.TLDExtract:
    # Imported here, on first use: only run creation names providers, and tldextract brings
    # requests and its dependencies (≈18 MiB), which the workers that import this module
    # along with the pipeline never use.
    import tldextract

    # The bundled public-suffix snapshot only: never a network fetch, no cache directory.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def normalized_host(base_url: str) -> str:
    host = urlsplit(upstream_root(base_url)).hostname or ""
    extracted = _extractor()(host)
    labels = [extracted.subdomain, extracted.domain] if extracted.suffix else [host]
    name = ".".join(label for label in labels if label)
    if name.startswith("www."):
        name = name[4:]
    return name.replace(".", "-").replace(":", "-") or "unknown"


@lru_cache(maxsize=1024)  # a run's entries share a few upstreams
def normalize_provider_id(base_url: str) -> str:
    """``{normalized_host}-{url_hash_last8}`` (seed 001 §5.1): the hash covers the whole
    upstream root (``relay_project.base_urls``), so the same host with another path (or port)
    is another provider."""
    digest = hashlib.sha256(upstream_root(base_url).encode()).hexdigest()
    return f"{normalized_host(base_url)}-{digest[-8:]}"


def api_key_fingerprint(key: Secret | str) -> str:
    """Display fingerprint ``sha256:<8 hex>``."""
    return display_fingerprint(key)


def api_key_digest(key: Secret | str) -> str:
    """Full keyed digest, stored for matching the same key across runs."""
    return matching_digest(key)
