"""Capability profile of an upstream: which routes it serves and what each model can do.

Field names follow seed 001 §4.3, the serialized shape seed 004 §6.5 (``to_dict``/``from_dict``):
a model feature is ``true``/``false`` once settled and ``"unknown"`` otherwise (``seed_support``).
Probes are cheap (``max_tokens`` 1–8, except ``/v1/responses``, whose API refuses
``max_output_tokens`` below 16), bounded (``RELAY_PROBE_MAX_MODELS`` models per upstream) and
run concurrently within ``RELAY_UPSTREAM_CONCURRENCY``. A failed probe never raises: it leaves
``unknown`` (or ``no`` when the upstream refused definitively) in the profile.

Transport probes (the Responses and Anthropic ones are sent with the first probed model):

* ``POST /v1/chat/completions`` — supported when any probed model's non-stream chat works;
* ``POST /v1/responses`` — a Responses object = supported; 403/404/405/501 or a 200 that is not
  a Responses object (an HTML catch-all page) = unsupported, and when chat works
  that is the advisory ``responses_unsupported_but_chat_ok`` (plus
  ``initial_probe_race_expected``: a sub2api host keeps trying Responses until its own probe
  settles, so the first account test may answer 403), not a failure; anything else
  (timeouts, 5xx, 429, 400) = ``responses_probe_inconclusive``;
* ``POST /v1/messages`` (Anthropic shape, ``x-api-key`` + ``anthropic-version``).

Per model: non-stream chat (``smoke_chat_ok``; ``reasoning_content``/``reasoning`` in the
message → reasoning ``yes``, the key present but null → ``no``, absent → ``unknown``), stream
chat (SSE chunks → ``yes``; a JSON answer or a 400 → ``no``), tools (accepted → ``yes``, 400 →
``no``). ``no`` is only recorded when the plain chat worked, otherwise a 400 says nothing about
the feature.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from django.conf import settings

from probe.aliases import canonical_model_family, normalize_model_id
from probe.client import UpstreamClient, UpstreamResponse
from probe.errors import ProbeError, ProbeErrorKind

CHAT_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"
MESSAGES_PATH = "/v1/messages"

PROBE_PROMPT = "Reply with OK."
CHAT_MAX_TOKENS = 8
RESPONSES_MAX_OUTPUT_TOKENS = 16  # the Responses API's minimum
MESSAGES_MAX_TOKENS = 1

# Statuses that mean "this route does not exist here" rather than "this call failed".
ROUTE_UNSUPPORTED_STATUSES = frozenset({403, 404, 405, 501})
# Statuses that mean "the upstream understood and refused this feature".
FEATURE_REFUSED_STATUSES = frozenset({400, 422})

PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_time",
        "description": "Return the current time.",
        "parameters": {"type": "object", "properties": {}, "required": []},
    },
}


class Support(StrEnum):
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


# How seed 004 §6.5 writes a model feature: a boolean once the probe settled it, the string
# "unknown" while it could not (``"supports_stream": true, "supports_tools": "unknown"``).
SeedSupport = bool | Literal["unknown"]


def seed_support(value: Any) -> SeedSupport:
    """A tri-state (``Support``, a stored ``yes``/``no``/``unknown`` or a boolean) in seed 004's
    wire shape: ``True``/``False``/``"unknown"``."""
    support = Support(_support(value))
    if support == Support.UNKNOWN:
        return "unknown"
    return support == Support.YES


class ModelIdStyle(StrEnum):
    CANONICAL = "canonical"
    VENDOR_PREFIXED = "vendor_prefixed"
    MIXED = "mixed"


class Advisory(StrEnum):
    RESPONSES_UNSUPPORTED_BUT_CHAT_OK = "responses_unsupported_but_chat_ok"
    INITIAL_PROBE_RACE_EXPECTED = "initial_probe_race_expected"
    RESPONSES_PROBE_INCONCLUSIVE = "responses_probe_inconclusive"
    PROBE_RATE_LIMITED = "probe_rate_limited"


@dataclass
class TransportProfile:
    supports_openai_models: bool = False
    supports_openai_chat_completions: bool = False
    supports_openai_responses: bool = False
    supports_anthropic_messages: bool = False
    auth_style: str = "bearer"
    model_id_style: str = ModelIdStyle.CANONICAL.value
    known_advisories: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "supports_openai_models": self.supports_openai_models,
            "supports_openai_chat_completions": self.supports_openai_chat_completions,
            "supports_openai_responses": self.supports_openai_responses,
            "supports_anthropic_messages": self.supports_anthropic_messages,
            "auth_style": self.auth_style,
            "model_id_style": self.model_id_style,
            "known_advisories": list(self.known_advisories),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TransportProfile:
        data = data or {}
        return cls(
            supports_openai_models=bool(data.get("supports_openai_models", False)),
            supports_openai_chat_completions=bool(
                data.get("supports_openai_chat_completions", False)
            ),
            supports_openai_responses=bool(data.get("supports_openai_responses", False)),
            supports_anthropic_messages=bool(data.get("supports_anthropic_messages", False)),
            auth_style=str(data.get("auth_style") or "bearer"),
            model_id_style=str(data.get("model_id_style") or ModelIdStyle.CANONICAL.value),
            known_advisories=[str(item) for item in data.get("known_advisories") or []],
        )


@dataclass
class ModelCapabilityProfile:
    raw_model_id: str
    normalized_model_id: str
    canonical_model_family: str
    supports_stream: str = Support.UNKNOWN.value
    supports_tools: str = Support.UNKNOWN.value
    supports_reasoning_fields: str = Support.UNKNOWN.value
    smoke_chat_ok: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "raw_model_id": self.raw_model_id,
            "normalized_model_id": self.normalized_model_id,
            "canonical_model_family": self.canonical_model_family,
            "supports_stream": seed_support(self.supports_stream),
            "supports_tools": seed_support(self.supports_tools),
            "supports_reasoning_fields": seed_support(self.supports_reasoning_fields),
            "smoke_chat_ok": self.smoke_chat_ok,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCapabilityProfile:
        raw = str(data.get("raw_model_id") or "")
        return cls(
            raw_model_id=raw,
            normalized_model_id=str(data.get("normalized_model_id") or normalize_model_id(raw)),
            canonical_model_family=str(
                data.get("canonical_model_family") or canonical_model_family(raw)
            ),
            supports_stream=_support(data.get("supports_stream")),
            supports_tools=_support(data.get("supports_tools")),
            supports_reasoning_fields=_support(data.get("supports_reasoning_fields")),
            smoke_chat_ok=bool(data.get("smoke_chat_ok", False)),
        )


@dataclass
class CapabilityProfile:
    transport_profile: TransportProfile = field(default_factory=TransportProfile)
    model_profiles: list[ModelCapabilityProfile] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "transport_profile": self.transport_profile.to_dict(),
            "model_profiles": [profile.to_dict() for profile in self.model_profiles],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> CapabilityProfile:
        data = data or {}
        return cls(
            transport_profile=TransportProfile.from_dict(data.get("transport_profile")),
            model_profiles=[
                ModelCapabilityProfile.from_dict(item)
                for item in data.get("model_profiles") or []
                if isinstance(item, Mapping)
            ],
        )

    def model(self, raw_model_id: str) -> ModelCapabilityProfile | None:
        return next((m for m in self.model_profiles if m.raw_model_id == raw_model_id), None)

    @property
    def smoke_ok_models(self) -> list[str]:
        return [m.raw_model_id for m in self.model_profiles if m.smoke_chat_ok]


def seed_profile(data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A stored profile in seed 004's shape, whatever shape it was stored in (None stays None)."""
    return None if data is None else CapabilityProfile.from_dict(data).to_dict()


def responses_supported(profile: CapabilityProfile | None) -> bool | None:
    """True/False when the probe settled whether ``/v1/responses`` works; None when unknown.

    Callers set the host account's ``extra.openai_responses_supported=false`` only on False:
    the host treats unknown as "use Responses" (sub2api-host-api §4.10).
    """
    if profile is None:
        return None
    transport = profile.transport_profile
    if transport.supports_openai_responses:
        return True
    if Advisory.RESPONSES_PROBE_INCONCLUSIVE in transport.known_advisories:
        return None
    return False


def model_id_style(raw_models: Sequence[str]) -> ModelIdStyle:
    """``vendor_prefixed`` when every id has an ``org/`` path, ``mixed`` when some do."""
    prefixed = [("/" in raw) for raw in raw_models]
    if prefixed and all(prefixed):
        return ModelIdStyle.VENDOR_PREFIXED
    if any(prefixed):
        return ModelIdStyle.MIXED
    return ModelIdStyle.CANONICAL


def send_chat(
    client: UpstreamClient, model: str, *, max_tokens: int = CHAT_MAX_TOKENS, **extra: Any
) -> UpstreamResponse:
    """One small non-stream chat completion.

    OpenAI's reasoning models refuse ``max_tokens`` with a 400 naming
    ``max_completion_tokens``; that one case is retried with the newer parameter.
    """
    payload: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": PROBE_PROMPT}],
        "max_tokens": max_tokens,
        "stream": False,
        **extra,
    }
    try:
        return client.post_json(CHAT_PATH, payload)
    except ProbeError as error:
        if error.status != 400 or "max_completion_tokens" not in str(error):
            raise
    payload["max_completion_tokens"] = payload.pop("max_tokens")
    return client.post_json(CHAT_PATH, payload)


def probe_capabilities(
    client: UpstreamClient,
    raw_models: Sequence[str],
    *,
    max_models: int | None = None,
    preferred: Sequence[str] = (),
    known: CapabilityProfile | None = None,
) -> CapabilityProfile:
    """Probe the transport routes and up to ``max_models`` models; never raises ``ProbeError``.

    ``preferred`` raw ids (e.g. the resolved requested models) are probed first; the rest
    follow in the upstream's order until the bound is reached. Models beyond the bound get no
    model profile.

    ``known``: the profile another key of the same upstream got moments ago. The routes and
    the features of a model are the upstream's, not the key's: what it settled is taken over,
    and only the chat of each model (this key's own proof) is sent again.
    """
    models = _select_models(raw_models, preferred, max_models)
    transport = TransportProfile(
        supports_openai_models=bool(raw_models), model_id_style=model_id_style(raw_models).value
    )
    if not models:
        return CapabilityProfile(transport_profile=transport)
    probes: list[tuple[Callable[[UpstreamClient, str], _Outcome], str]] = []
    settled = _settled_outcomes(known, models)
    if ("responses", models[0]) not in settled:
        probes += [(_probe_responses, models[0]), (_probe_messages, models[0])]
    for model in models:
        probes.append((_probe_chat, model))
        if ("stream", model) not in settled:
            probes += [(_probe_stream, model), (_probe_tools, model)]
    workers = max(1, min(client.concurrency, settings.RELAY_UPSTREAM_CONCURRENCY, len(probes)))
    if workers == 1:  # e.g. a later key of a settled upstream: its one chat, no thread for it
        outcomes = [probe(client, model) for probe, model in probes]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe") as pool:
            # Each probe runs in a copy of this thread's context: its upstream calls count
            # toward the item's run (relay_project.limits.run_scope), its log lines name the item.
            calls = [pool.submit(contextvars.copy_context().run, p, client, m) for p, m in probes]
            outcomes = [call.result() for call in calls]
    return _assemble(transport, models, [*settled.values(), *outcomes])


def _settled_outcomes(
    known: CapabilityProfile | None, models: list[str]
) -> dict[tuple[str, str], _Outcome]:
    """What ``known`` settled, as the outcomes its probes had: the routes when /v1/responses
    was conclusive, a model's stream and tools when its chat passed (else they were unknown)."""
    if known is None:
        return {}
    settled: dict[tuple[str, str], _Outcome] = {}
    transport = known.transport_profile
    if responses_supported(known) is not None:
        responses = Support.YES if transport.supports_openai_responses else Support.NO
        messages = Support.YES if transport.supports_anthropic_messages else Support.NO
        settled[("responses", models[0])] = _Outcome("responses", models[0], responses)
        settled[("messages", models[0])] = _Outcome("messages", models[0], messages)
    for model in models:
        seen = known.model(model)
        if seen is None or not seen.smoke_chat_ok:
            continue
        reasoning = Support(_support(seen.supports_reasoning_fields))
        stream = Support(_support(seen.supports_stream))
        settled[("stream", model)] = _Outcome("stream", model, stream, reasoning=reasoning)
        settled[("tools", model)] = _Outcome("tools", model, Support(_support(seen.supports_tools)))
    return settled


# --- probes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    probe: str
    model: str
    verdict: Support
    reasoning: Support = Support.UNKNOWN
    rate_limited: bool = False


def _failed(probe: str, model: str, error: ProbeError, refused: frozenset[int]) -> _Outcome:
    verdict = Support.NO if error.status in refused else Support.UNKNOWN
    limited = error.kind == ProbeErrorKind.RATE_LIMITED
    return _Outcome(probe, model, verdict, rate_limited=limited)


def _probe_chat(client: UpstreamClient, model: str) -> _Outcome:
    try:
        response = send_chat(client, model)
    except ProbeError as error:
        return _failed("chat", model, error, frozenset())
    choices = response.data.get("choices") if isinstance(response.data, dict) else None
    if not isinstance(choices, list) or not choices:
        return _Outcome("chat", model, Support.UNKNOWN)
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    return _Outcome("chat", model, Support.YES, reasoning=_reasoning(message))


def _probe_stream(client: UpstreamClient, model: str) -> _Outcome:
    payload = {
        "model": model,
        "messages": [{"role": "user", "content": PROBE_PROMPT}],
        "max_tokens": CHAT_MAX_TOKENS,
        "stream": True,
    }
    try:
        response = client.post_stream(CHAT_PATH, payload)
    except ProbeError as error:
        return _failed("stream", model, error, FEATURE_REFUSED_STATUSES)
    if not response.is_sse:
        return _Outcome("stream", model, Support.NO)
    chunks = [
        event.data
        for event in response.events
        if isinstance(event.data, dict) and isinstance(event.data.get("choices"), list)
    ]
    if not chunks:
        return _Outcome("stream", model, Support.UNKNOWN)
    deltas = [
        choice.get("delta")
        for chunk in chunks
        for choice in chunk["choices"]
        if isinstance(choice, dict)
    ]
    reasoning = max(
        (_reasoning(delta) for delta in deltas),
        key=_SUPPORT_RANK.__getitem__,
        default=Support.UNKNOWN,
    )
    return _Outcome("stream", model, Support.YES, reasoning=reasoning)


def _probe_tools(client: UpstreamClient, model: str) -> _Outcome:
    try:
        send_chat(client, model, tools=[PROBE_TOOL], tool_choice="auto")
    except ProbeError as error:
        return _failed("tools", model, error, FEATURE_REFUSED_STATUSES)
    # Accepted: a provider without tool support would have said 400 (or ignored the field,
    # which nothing short of a real tool call can tell apart; 8 tokens are too few for that).
    return _Outcome("tools", model, Support.YES)


def _probe_responses(client: UpstreamClient, model: str) -> _Outcome:
    payload = {
        "model": model,
        "input": PROBE_PROMPT,
        "max_output_tokens": RESPONSES_MAX_OUTPUT_TOKENS,
    }
    try:
        response = client.post_json(RESPONSES_PATH, payload)
    except ProbeError as error:
        if error.kind == ProbeErrorKind.BAD_RESPONSE and error.status == 200:
            # Relays whose web UI catches unknown paths answer 200 with an HTML page.
            return _Outcome("responses", model, Support.NO)
        return _failed("responses", model, error, ROUTE_UNSUPPORTED_STATUSES)
    data = response.data
    is_response = isinstance(data, dict) and (data.get("object") == "response" or "output" in data)
    return _Outcome("responses", model, Support.YES if is_response else Support.NO)


def _probe_messages(client: UpstreamClient, model: str) -> _Outcome:
    payload = {
        "model": model,
        "max_tokens": MESSAGES_MAX_TOKENS,
        "messages": [{"role": "user", "content": PROBE_PROMPT}],
    }
    try:
        response = client.post_json(MESSAGES_PATH, payload, anthropic=True)
    except ProbeError as error:
        return _failed("messages", model, error, ROUTE_UNSUPPORTED_STATUSES)
    is_message = isinstance(response.data, dict) and response.data.get("type") == "message"
    return _Outcome("messages", model, Support.YES if is_message else Support.NO)


# --- assembly -------------------------------------------------------------------------------

_SUPPORT_RANK = {Support.UNKNOWN: 0, Support.NO: 1, Support.YES: 2}


def _reasoning(message: Any) -> Support:
    if not isinstance(message, dict):
        return Support.UNKNOWN
    keys = [key for key in ("reasoning_content", "reasoning") if key in message]
    if any(message[key] not in (None, "") for key in keys):
        return Support.YES
    return Support.NO if keys else Support.UNKNOWN


def _assemble(
    transport: TransportProfile, models: list[str], outcomes: list[_Outcome]
) -> CapabilityProfile:
    by_key = {(outcome.probe, outcome.model): outcome for outcome in outcomes}
    profiles = []
    for model in models:
        chat, stream, tools = (by_key[(probe, model)] for probe in ("chat", "stream", "tools"))
        chat_ok = chat.verdict == Support.YES
        reasoning = max(chat.reasoning, stream.reasoning, key=_SUPPORT_RANK.__getitem__)
        profiles.append(
            ModelCapabilityProfile(
                raw_model_id=model,
                normalized_model_id=normalize_model_id(model),
                canonical_model_family=canonical_model_family(model),
                supports_stream=_unless_chat_failed(stream.verdict, chat_ok).value,
                supports_tools=_unless_chat_failed(tools.verdict, chat_ok).value,
                supports_reasoning_fields=reasoning.value,
                smoke_chat_ok=chat_ok,
            )
        )
    chat_ok = any(profile.smoke_chat_ok for profile in profiles)
    responses = by_key[("responses", models[0])].verdict
    transport.supports_openai_chat_completions = chat_ok
    transport.supports_openai_responses = responses == Support.YES
    transport.supports_anthropic_messages = by_key[("messages", models[0])].verdict == Support.YES
    advisories: list[Advisory] = []
    if responses == Support.NO and chat_ok:
        advisories += [
            Advisory.RESPONSES_UNSUPPORTED_BUT_CHAT_OK,
            Advisory.INITIAL_PROBE_RACE_EXPECTED,
        ]
    elif responses == Support.UNKNOWN:
        advisories.append(Advisory.RESPONSES_PROBE_INCONCLUSIVE)
    if any(outcome.rate_limited for outcome in outcomes):
        advisories.append(Advisory.PROBE_RATE_LIMITED)
    transport.known_advisories = [advisory.value for advisory in advisories]
    return CapabilityProfile(transport_profile=transport, model_profiles=profiles)


def _unless_chat_failed(verdict: Support, chat_ok: bool) -> Support:
    return Support.UNKNOWN if verdict == Support.NO and not chat_ok else verdict


def _select_models(
    raw_models: Sequence[str], preferred: Sequence[str], max_models: int | None
) -> list[str]:
    limit = settings.RELAY_PROBE_MAX_MODELS if max_models is None else max_models
    available = [raw for raw in dict.fromkeys(raw_models) if raw]
    known = set(available)
    ordered = list(dict.fromkeys([*(raw for raw in preferred if raw in known), *available]))
    return ordered[: max(0, limit)]


def _support(value: Any) -> str:
    """Read a stored tri-state: seed 004's booleans/"unknown", or the ``yes``/``no`` of rows
    written before the profile took the seed's shape."""
    if value is True:
        return Support.YES.value
    if value is False:
        return Support.NO.value
    try:
        return Support(str(value)).value
    except ValueError:
        return Support.UNKNOWN.value
