"""``model_mapping_delta``: how a provider's channel grows when new aliases are discovered."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

PLATFORM = "openai"
BILLING_MODEL_SOURCE = "channel_mapped"


class AliasLike(Protocol):
    raw: str
    canonical: str


@dataclass(frozen=True)
class ChannelPatchContract:
    """The full channel state to PUT: sub2api replaces mapping and pricing wholesale."""

    model_mapping: dict[str, str]
    model_pricing: list[dict[str, Any]]
    restrict_models: bool
    billing_model_source: str
    added: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.added)

    def host_model_mapping(self) -> dict[str, dict[str, str]]:
        """Channel mappings are nested by platform on the host."""
        return {PLATFORM: dict(self.model_mapping)}


def model_mapping_delta(
    existing: Mapping[str, str],
    alias_table: Mapping[str, AliasLike],
    prices: Mapping[str, Mapping[str, float]] | None = None,
    served: Iterable[str] = (),
) -> ChannelPatchContract:
    """Keep every existing entry, add alias → canonical for each discovered alias, and restrict
    the channel to the canonical models it prices (billing on the channel-mapped model).

    ``prices`` (canonical id → host price fields, USD per token, from a model pack) gives a
    model its own priced entry; the others share unpriced entries (the host's default price).
    An existing entry is never overwritten: another item of the same provider may rely on it.
    ``served``: the models the channel already prices; they stay (a channel shared by several
    providers serves them all, and identity aliases leave no mapping entry to remember them).
    """
    mapping = dict(existing)
    added: dict[str, str] = {}
    for alias in alias_table.values():
        if alias.raw != alias.canonical and alias.raw not in mapping:
            mapping[alias.raw] = alias.canonical
            added[alias.raw] = alias.canonical
    canonical_models = sorted(
        {alias.canonical for alias in alias_table.values()} | set(mapping.values()) | set(served)
    )
    prices = prices or {}
    pricing: list[dict[str, Any]] = [
        {"platform": PLATFORM, "models": [model], "billing_mode": "token", **prices[model]}
        for model in canonical_models
        if prices.get(model)
    ]
    unpriced = [model for model in canonical_models if not prices.get(model)]
    # The host takes at most 100 models per pricing entry.
    pricing += [
        {"platform": PLATFORM, "models": unpriced[i : i + 100], "billing_mode": "token"}
        for i in range(0, len(unpriced), 100)
    ]
    return ChannelPatchContract(
        model_mapping=mapping,
        model_pricing=pricing,
        restrict_models=bool(canonical_models),
        billing_model_source=BILLING_MODEL_SOURCE,
        added=added,
    )
