"""What the pipeline reads from installed packs: the current pack provider for an upstream."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from model_packs.models import PackProvider
from model_packs.validation import host_version_allowed
from relay_project.compiled_reads import CompiledRead, Slot

# Pack prices are USD per 1M tokens; the host's channel pricing is USD per token.
PRICE_FIELDS = {
    "input": "input_price",
    "output": "output_price",
    "cache_read": "cache_read_price",
    "cache_write": "cache_write_price",
}


@dataclass(frozen=True)
class PackProfile:
    pack_id: str
    pack_version: str
    provider_id: str
    default_models: tuple[str, ...]
    smoke_test_model: str
    aliases: dict[str, str] = field(default_factory=dict)
    prices: dict[str, dict[str, float]] = field(default_factory=dict)

    def token_prices(self, model: str) -> dict[str, float] | None:
        """The host's pricing fields (USD per token) for a model the pack prices, else None."""
        entry = self.prices.get(model)
        if not entry:
            return None
        return {PRICE_FIELDS[key]: value / 1_000_000 for key, value in entry.items()}


# The current packs' providers of one upstream host, with their pack: every item's probe asks
# (compiled once per process).
CURRENT_PROVIDERS_OF_HOST = CompiledRead(
    PackProvider,
    lambda: PackProvider.objects.filter(
        hostname=Slot("hostname", PackProvider._meta.get_field("hostname")),
        pack__is_current=True,
    ).select_related("pack"),
)


def pack_profile_for(base_url: str, *, host_version: str = "") -> PackProfile | None:
    """The current pack provider whose base_url has the same host as the upstream (the same
    path wins over another path), skipping packs whose range excludes the host's version."""
    parts = urlsplit(base_url.strip())
    hostname = (parts.hostname or "").lower()
    if not hostname:
        return None
    candidates = [
        provider
        for provider in CURRENT_PROVIDERS_OF_HOST.rows(hostname=hostname)
        if host_version_allowed(provider.pack.host_versions, host_version) is not False
    ]
    if not candidates:
        return None
    wanted_path = parts.path.rstrip("/").removesuffix("/v1")
    candidates.sort(
        key=lambda p: (
            urlsplit(p.base_url).path.rstrip("/").removesuffix("/v1") != wanted_path,
            p.pack.pack_id,
            p.provider_id,
        )
    )
    provider = candidates[0]
    return PackProfile(
        pack_id=provider.pack.pack_id,
        pack_version=provider.pack.version,
        provider_id=provider.provider_id,
        default_models=tuple(provider.default_models),
        smoke_test_model=provider.smoke_test_model,
        aliases=dict(provider.aliases),
        prices=dict(provider.prices),
    )
