"""Probe stage: discover the upstream's models, name them, profile them, pick a smoke model."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.utils.translation import gettext_noop

from batch_import.failures import upstream_failure
from batch_import.models import ImportRunItem
from batch_import.packs import apply_pack_aliases, pack_label, pack_profile
from batch_import.stages import StageContext
from batch_import.stages.common import (
    add_advisories,
    fail_item,
    record_start,
    schedule_retry,
    stage_retries,
    start_message,
)
from batch_import.transitions import EventType, transition_item
from probe.aliases import build_alias_table, resolve_requested_model
from probe.capability import Advisory, CapabilityProfile, probe_capabilities
from probe.client import ProbeError, UpstreamClient
from probe.discovery import discover_models
from probe.errors import ProbeErrorKind
from probe.guard import UnsafeUpstream, check_upstream_url
from probe.smoke_model import choose_smoke_model
from relay_project.compiled_reads import CompiledRead, Slot
from relay_project.messages import Msg
from relay_project.process_memo import ProcessMemo
from relay_project.single_flight import SingleFlight, Turn

Stage = ImportRunItem.Stage
FailureClass = ImportRunItem.FailureClass


def run_probe(item: ImportRunItem, ctx: StageContext) -> ImportRunItem | None:
    """GET /v1/models → alias table → capability profile → smoke model; then provision."""
    record_start(item)
    pack = pack_profile(item)
    client = UpstreamClient(item.base_url, item.api_key, transport=ctx.upstream_transport)
    try:
        check_upstream_url(item.base_url)
        discovered = discover_models(client)
        raw_models = list(discovered.raw_models)
        models_from_pack = not raw_models and pack is not None
        if models_from_pack:
            raw_models = list(pack.default_models)
        if not raw_models:
            fail_item(
                item,
                error=Msg(gettext_noop("the upstream lists no models (GET /v1/models is empty)")),
                failure_class=FailureClass.UPSTREAM_MODEL_MISSING,
                ctx=ctx,
            )
            return None
        preferred = [
            raw
            for raw in (resolve_requested_model(m, raw_models) for m in item.requested_models)
            if raw
        ]
        if not preferred and pack is not None and pack.smoke_test_model in raw_models:
            preferred = [pack.smoke_test_model]
        profile = profiled(item, client, raw_models, preferred)
    except UnsafeUpstream as exc:  # refused before any call, or at connect time (rebinding)
        fail_item(
            item,
            error=Msg(REFUSED_URL, error=str(exc)),
            failure_class=FailureClass.UPSTREAM_REFUSED_URL,
            ctx=ctx,
        )
        return None
    except ProbeError as exc:
        attempt = stage_retries(item) + 1
        if exc.transient and attempt <= settings.RELAY_HTTP_RETRIES + 1:
            schedule_retry(
                item, attempt=attempt, reason=probe_error_message(exc), payload={"kind": exc.kind}
            )
        else:
            fail_item(
                item,
                error=probe_error_message(exc),
                failure_class=upstream_failure(exc),
                transient=exc.transient,
                payload={"kind": exc.kind},
                ctx=ctx,
            )
        return None
    finally:
        client.close()

    aliases = apply_pack_aliases(build_alias_table(raw_models), pack)
    choice = choose_smoke_model(list(item.requested_models), raw_models, profile)
    smoke, recommendations = choice.model, choice.recommendations
    if not item.requested_models and pack and pack.smoke_test_model in profile.smoke_ok_models:
        smoke = pack.smoke_test_model
    profile_dict = profile.to_dict()
    advisories = list(profile.transport_profile.known_advisories)
    if models_from_pack:
        advisories.append("models_from_pack")
    unresolved = [m for m in item.requested_models if not resolve_requested_model(m, raw_models)]
    if unresolved:
        advisories.append("requested_model_not_found")
    if choice.reason:
        advisories.append("smoke_model_fallback")
    if smoke is None:
        # Chats refused for rate limit or quota (429/402) say the key is out of quota, not
        # that the upstream lacks a usable model.
        limited = Advisory.PROBE_RATE_LIMITED in profile.transport_profile.known_advisories
        fail_item(
            item,
            error=Msg(
                gettext_noop(
                    "no discovered model answered a smoke chat completion: the upstream "
                    "refused the key for rate limit or quota (429/402)"
                )
                if limited
                else gettext_noop("no discovered model answered a smoke chat completion")
            ),
            failure_class=(
                FailureClass.UPSTREAM_QUOTA if limited else FailureClass.UPSTREAM_MODEL_MISSING
            ),
            ctx=ctx,
        )
        return None
    moved = transition_item(
        item_id=item.item_id,
        held=item,
        stage=Stage.PROVISION,
        starting=start_message,
        event_type=EventType.STAGE_COMPLETED,
        message=Msg(
            gettext_noop("%(count)s models discovered; smoke model %(smoke)s (%(reason)s)")
            if choice.reason
            else gettext_noop("%(count)s models discovered; smoke model %(smoke)s"),
            count=len(raw_models),
            smoke=smoke,
            reason=Msg(
                gettext_noop("%(skipped)s failed the upstream smoke chat; %(chosen)s passed it"),
                skipped=", ".join(choice.skipped),
                chosen=choice.model,
            ),
        ),
        fields={
            "raw_models": raw_models,
            "normalized_models": _unique(a.normalized for a in aliases.values()),
            "canonical_model_families": _unique(a.family for a in aliases.values()),
            "recommended_models": recommendations,
            "resolved_smoke_model": smoke,
            "capability_profile": profile_dict,
            "advisory_messages": add_advisories(item, *advisories),
        },
        payload={
            "http_status": discovered.http_status,
            "latency_ms": discovered.latency_ms,
            "unresolved_requested_models": unresolved,
            "smoke_model_reason": choice.reason,
            "recommended_models": recommendations,
            "pack": pack_label(pack),
            "models_from_pack": models_from_pack,
        },
    )
    RUN_PROFILES.remember(_upstream_of(item), item.pk, profile_dict)
    return moved


def profiled(
    item: ImportRunItem, client: UpstreamClient, raw_models: list[str], preferred: list[str]
) -> CapabilityProfile:
    """The item's capability profile, taking over what a sibling's settled. With none yet but
    one of this process probing the same upstream now (a run's first items start together),
    wait for its profile rather than send the same probes beside it."""
    known = sibling_profile(item)
    if known is not None:
        return probe_capabilities(client, raw_models, preferred=preferred, known=known)
    upstream = _upstream_of(item)
    with PROFILING.turn(upstream, timeout=settings.RELAY_HTTP_TIMEOUT) as place:
        if place.turn is Turn.FOLLOW:
            known = sibling_profile(item)
        profile = probe_capabilities(client, raw_models, preferred=preferred, known=known)
        RUN_PROFILES.remember(upstream, item.pk, profile.to_dict())
        place.succeeded()
    return profile


PROFILING = SingleFlight()


def sibling_profile(item: ImportRunItem) -> CapabilityProfile | None:
    """The capability profile another key of the same upstream got in this run, if any: its
    routes and model features are taken over, so a run of many keys probes them once. One
    this process has seen already stands (``RunProfiles``): no read for it."""
    upstream = _upstream_of(item)
    profile = RUN_PROFILES.of(upstream, besides=item.pk)
    if profile is None:
        sibling = PROFILED_SIBLING.first(
            run=item.run_id, provider=item.provider_id, base_url=item.base_url, item=item.pk
        )
        if sibling is not None and sibling.capability_profile:
            profile = sibling.capability_profile
            RUN_PROFILES.remember(upstream, sibling.pk, profile)
    return CapabilityProfile.from_dict(profile) if profile else None


def _upstream_of(item: ImportRunItem) -> tuple[str, str, str]:
    return item.run_id, item.provider_id, item.base_url


class RunProfiles:
    """The capability profiles this worker process has seen its runs' items get, one per run
    and upstream (provider, base_url), with the item that got it: the next items of the
    upstream in the run take it from here instead of reading it again. A profile is kept as
    soon as its probes have ended (``profiled``: the siblings waiting for it take it at once),
    even when its item goes no further; what a sibling takes over of it is only what it
    settled (``probe_capabilities``). An item is never given its own back (a retry probes
    again, as the read excludes it)."""

    MAX_UPSTREAMS = 1024

    def __init__(self) -> None:
        # (run, provider, base_url) → the item that got the profile, and the profile.
        self._profiles: ProcessMemo[tuple[str, str, str], tuple[str, dict]] = ProcessMemo(
            self.MAX_UPSTREAMS
        )

    def of(self, upstream: tuple[str, str, str], *, besides: str) -> dict | None:
        seen = self._profiles.get(upstream)
        return seen[1] if seen is not None and seen[0] != besides else None

    def remember(self, upstream: tuple[str, str, str], item_id: str, profile: dict) -> None:
        self._profiles.put(upstream, (item_id, profile))

    def clear(self) -> None:
        self._profiles.clear()


RUN_PROFILES = RunProfiles()


def _profiled_siblings() -> QuerySet[ImportRunItem]:
    field = ImportRunItem._meta.get_field
    return (
        ImportRunItem.objects.filter(
            run_id=Slot("run", field("run").target_field),
            provider_id=Slot("provider", field("provider_id")),
            base_url=Slot("base_url", field("base_url")),
            capability_profile__isnull=False,
        )
        .exclude(pk=Slot("item", field("item_id")))
        .only("item_id", "capability_profile")
    )


# ``sibling_profile``'s read (every item probing asks), compiled once per process; a fixed
# plan: the run's profiled items of the upstream by ``item_run_profile_idx``.
PROFILED_SIBLING = CompiledRead(ImportRunItem, _profiled_siblings, first=True, fixed_plan=True)


REFUSED_URL = gettext_noop("the upstream address is not allowed: %(error)s")
# The upstream's answer (``str(exc)``) stays verbatim after a sentence in the reader's language.
PROBE_ERROR_TEMPLATES = {
    ProbeErrorKind.AUTH_FAILED: gettext_noop("the upstream refused the key: %(error)s"),
    ProbeErrorKind.UNREACHABLE: gettext_noop("the upstream cannot be reached: %(error)s"),
    ProbeErrorKind.TIMEOUT: gettext_noop("the upstream did not answer in time: %(error)s"),
    ProbeErrorKind.RATE_LIMITED: gettext_noop(
        "the upstream is rate-limited or out of quota: %(error)s"
    ),
    ProbeErrorKind.BAD_RESPONSE: gettext_noop("the upstream's answer is malformed: %(error)s"),
    ProbeErrorKind.HTTP_ERROR: gettext_noop("the upstream answered with an error: %(error)s"),
}


def probe_error_message(exc: ProbeError) -> Msg:
    template = PROBE_ERROR_TEMPLATES.get(exc.kind, gettext_noop("upstream: %(error)s"))
    return Msg(template, error=str(exc))


def _unique(values) -> list[str]:
    return list(dict.fromkeys(values))
