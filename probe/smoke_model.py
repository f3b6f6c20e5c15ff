"""Which model the pipeline provisions around and validates with: the smoke model (seed 001
§4.4), chosen from the requested names, the discovered list and the capability probe's smoke
chats (``probe.capability``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from probe.aliases import recommend_models, resolve_requested_model
from probe.capability import CapabilityProfile


@dataclass(frozen=True)
class SmokeChoice:
    """The smoke model (raw id, None: no model to provision around), the recommendations for
    requested names that do not resolve, and why the choice is not the first requested model
    (empty when it is, or when nothing was requested); ``skipped``: the requested models that
    failed the smoke chat, so callers can say it in the reader's words."""

    model: str | None
    recommendations: list[str]
    reason: str = ""
    skipped: tuple[str, ...] = ()


def choose_smoke_model(
    requested: Sequence[str], raw_models: Sequence[str], profile: CapabilityProfile | None
) -> SmokeChoice:
    """Smoke model by capability: the first requested model that passed the upstream smoke
    chat; else another discovered model that passed (most similar to the requested names
    first), saying why; never a model the profile knows failed. Without a profile the first
    requested model that resolves, else the first discovered model."""
    recommendations = recommend_models(requested, raw_models)
    resolved = [r for r in (resolve_requested_model(n, raw_models) for n in requested) if r]
    resolved = list(dict.fromkeys(resolved))
    if profile is None:
        model = resolved[0] if resolved else (raw_models[0] if raw_models else None)
        return SmokeChoice(model, recommendations)
    listed = set(raw_models)
    working = [raw for raw in profile.smoke_ok_models if raw in listed]
    failing = {m.raw_model_id for m in profile.model_profiles if not m.smoke_chat_ok}
    passed = [raw for raw in resolved if raw in working]
    if passed:
        if passed[0] == resolved[0]:
            return SmokeChoice(passed[0], recommendations)
        return _fallback(passed[0], recommendations, resolved)
    untested = [raw for raw in resolved if raw not in failing]
    if untested and not working:
        return SmokeChoice(untested[0], recommendations)
    if working:
        best = next((raw for raw in recommendations if raw in working), working[0])
        if not resolved:
            return SmokeChoice(best, recommendations)
        return _fallback(best, recommendations, resolved)
    model = next((raw for raw in raw_models if raw not in failing), None)
    return SmokeChoice(model, recommendations)


def _fallback(chosen: str, recommendations: list[str], failed: Sequence[str]) -> SmokeChoice:
    skipped = tuple(raw for raw in failed if raw != chosen)
    reason = f"{', '.join(skipped)} failed the upstream smoke chat; {chosen} passed it"
    return SmokeChoice(chosen, recommendations, reason, skipped)
