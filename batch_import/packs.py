"""How installed model packs feed the pipeline (ARCH §9): the probe stage takes default and
smoke models when the upstream's /v1/models is empty, and both stages take the pack's aliases;
the channel takes the pack's per-model prices."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from batch_import.models import ImportRunItem
from model_packs.selectors import PackProfile, pack_profile_for
from probe.aliases import AliasResult, canonical_model_family, canonical_model_id
from relay_project.process_memo import ProcessMemo

# The pack of each upstream of a run as this worker process read it for the run's first item
# of that upstream (run, base_url, host version → the pack, or None: no pack applies): the
# run's next items of the upstream take it from here instead of reading the packs again.
RUN_PACKS: ProcessMemo[tuple[str, str, str], tuple[PackProfile | None]] = ProcessMemo(1024)


def pack_profile(item: ImportRunItem) -> PackProfile | None:
    """The pack that applies to the item's upstream. The items of one upstream in one run,
    and the stages of each (probe and provision ask), share the pack this process read for
    the first of them (``RUN_PACKS``): a pack installed meanwhile applies to the runs whose
    first item of the upstream the process probes after it."""
    key = (item.run_id, item.base_url, item.run.host.version)
    kept = RUN_PACKS.get(key)
    if kept is None:
        kept = (pack_profile_for(item.base_url, host_version=item.run.host.version),)
        RUN_PACKS.put(key, kept)
    return kept[0]


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
