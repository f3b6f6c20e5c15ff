"""Smoke model choice and the smoke completion (seed 001 §4.4).

The smoke completion always goes through ``POST /v1/chat/completions``: it is the route every
OpenAI-compatible upstream serves, whether or not it has ``/v1/responses``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from probe.aliases import recommend_models, resolve_requested_model
from probe.capability import CapabilityProfile, send_chat
from probe.client import UpstreamClient
from probe.errors import ProbeError, ProbeErrorKind

# A 400 whose message says the model is unknown is a model-not-found in all but status.
_MODEL_MISSING = re.compile(
    r"model\W.*\b(not found|does not exist|not exist|unknown|not supported|invalid)\b"
    r"|\b(unknown|invalid|unsupported) model\b",
    re.IGNORECASE,
)


class SmokeClassification(StrEnum):
    OK = "ok"
    AUTH_FAILED = "auth_failed"
    MODEL_NOT_FOUND = "model_not_found"
    RATE_LIMITED = "rate_limited"
    TRANSIENT = "transient"
    BAD_RESPONSE = "bad_response"
    HTTP_ERROR = "http_error"


@dataclass(frozen=True)
class CompletionResult:
    model: str
    http_status: int  # 0 when no answer arrived (timeout, connection error)
    latency_ms: int
    classification: str
    error: str = ""
    # Worth trying again later: timeouts, connection errors, 429 (but not an exhausted quota), 5xx.
    transient: bool = False

    @property
    def ok(self) -> bool:
        return self.classification == SmokeClassification.OK


@dataclass(frozen=True)
class SmokeChoice:
    """The smoke model (raw id, None: no model to provision around), the recommendations for
    requested names that do not resolve, and why the choice is not the first requested model
    (empty when it is, or when nothing was requested)."""

    model: str | None
    recommendations: list[str]
    reason: str = ""


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
        reason = "" if passed[0] == resolved[0] else _fallback_reason(resolved, passed[0])
        return SmokeChoice(passed[0], recommendations, reason)
    untested = [raw for raw in resolved if raw not in failing]
    if untested and not working:
        return SmokeChoice(untested[0], recommendations)
    if working:
        best = next((raw for raw in recommendations if raw in working), working[0])
        reason = _fallback_reason(resolved, best) if resolved else ""
        return SmokeChoice(best, recommendations, reason)
    model = next((raw for raw in raw_models if raw not in failing), None)
    return SmokeChoice(model, recommendations)


def _fallback_reason(failed: Sequence[str], chosen: str) -> str:
    skipped = [raw for raw in failed if raw != chosen]
    return f"{', '.join(skipped)} failed the upstream smoke chat; {chosen} passed it"


def resolve_smoke_model(
    requested: Sequence[str], raw_models: Sequence[str], profile: CapabilityProfile | None
) -> tuple[str | None, list[str]]:
    """(smoke model as a raw id, recommendations): ``choose_smoke_model`` without the why."""
    choice = choose_smoke_model(requested, raw_models, profile)
    return choice.model, choice.recommendations


def smoke_completion(
    client: UpstreamClient, model: str, profile: CapabilityProfile | None = None
) -> CompletionResult:
    """One tiny chat completion with ``model``; classifies the outcome instead of raising.

    ``profile`` is accepted for the seed contract; the route does not depend on it (see the
    module docstring).
    """
    started = time.monotonic()
    try:
        response = send_chat(client, model)
    except ProbeError as error:
        return CompletionResult(
            model=model,
            http_status=error.status or 0,
            latency_ms=_elapsed_ms(started),
            classification=_classify(error).value,
            error=str(error),
            transient=error.transient,
        )
    choices = response.data.get("choices") if isinstance(response.data, dict) else None
    if not isinstance(choices, list) or not choices:
        return CompletionResult(
            model=model,
            http_status=response.status,
            latency_ms=response.latency_ms,
            classification=SmokeClassification.BAD_RESPONSE.value,
            error=f"POST /v1/chat/completions: HTTP {response.status} without choices",
        )
    return CompletionResult(
        model=model,
        http_status=response.status,
        latency_ms=response.latency_ms,
        classification=SmokeClassification.OK.value,
    )


def _classify(error: ProbeError) -> SmokeClassification:
    if error.kind == ProbeErrorKind.AUTH_FAILED:
        return SmokeClassification.AUTH_FAILED
    if error.kind == ProbeErrorKind.RATE_LIMITED:
        return SmokeClassification.RATE_LIMITED
    if error.kind in (ProbeErrorKind.TIMEOUT, ProbeErrorKind.UNREACHABLE):
        return SmokeClassification.TRANSIENT
    if error.kind in (ProbeErrorKind.BAD_RESPONSE, ProbeErrorKind.EMPTY):
        return SmokeClassification.BAD_RESPONSE
    if (
        error.code == "model_not_found"
        or error.status == 404
        or (error.status == 400 and _MODEL_MISSING.search(error.message))
    ):
        return SmokeClassification.MODEL_NOT_FOUND
    if error.transient:
        return SmokeClassification.TRANSIENT
    return SmokeClassification.HTTP_ERROR


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
