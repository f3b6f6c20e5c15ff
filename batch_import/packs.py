"""How installed model packs feed the pipeline (ARCH §9): the probe stage takes default and
smoke models when the upstream's /v1/models is empty, and both stages take the pack's aliases;
the channel takes the pack's per-model prices."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from batch_import.models import ImportRunItem
from model_packs.selectors import PackProfile, pack_profile_for
from probe.aliases import AliasResult, canonical_model_family, canonical_model_id


def pack_profile(item: ImportRunItem, memo: dict | None = None) -> PackProfile | None:
    """The pack that applies to the item's upstream; ``memo`` (a ``StageContext``'s ``packs``)
    keeps it for the item's next stage."""
    key = (item.base_url, item.run.host.version)
    if memo is not None and key in memo:
        return memo[key]
    profile = pack_profile_for(item.base_url, host_version=item.run.host.version)
    if memo is not None:
        memo[key] = profile
    return profile


def apply_pack_aliases(
    table: Mapping[str, AliasResult], profile: PackProfile | None
) -> dict[str, AliasResult]:
    """The pack's ``aliases`` (upstream id → the name clients use) win over the computed
    canonical id, so the channel maps e.g. a dated upstream id to the provider's public name."""
    if profile is None or not profile.aliases:
        return dict(table)
    result: dict[str, AliasResult] = {}
    for raw, alias in table.items():
        name = profile.aliases.get(raw)
        if name:
            canonical = canonical_model_id(name)
            alias = replace(alias, canonical=canonical, family=canonical_model_family(name))
        result[raw] = alias
    return result


def channel_prices(profile: PackProfile | None) -> dict[str, dict[str, float]]:
    """canonical model id → the host's price fields (USD per token), for priced models."""
    if profile is None:
        return {}
    prices: dict[str, dict[str, float]] = {}
    for model in profile.prices:
        token_prices = profile.token_prices(model)
        if token_prices:
            prices[canonical_model_id(model)] = token_prices
    return prices


def pack_label(profile: PackProfile | None) -> str | None:
    return f"{profile.pack_id} {profile.pack_version}" if profile else None
