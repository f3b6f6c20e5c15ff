"""Probe stage: discover the upstream's models, name them, profile them, pick a smoke model."""

from __future__ import annotations

from django.conf import settings

from batch_import.models import ImportRunItem
from batch_import.stages import StageContext
from batch_import.stages.common import add_advisories, fail_item, schedule_retry, stage_retries
from batch_import.transitions import EventType, record_event, transition_item
from probe.aliases import build_alias_table, resolve_requested_model
from probe.capability import probe_capabilities
from probe.client import ProbeError, UpstreamClient
from probe.completion import resolve_smoke_model
from probe.discovery import discover_models
from probe.guard import UnsafeUpstream, check_upstream_url

Stage = ImportRunItem.Stage


def run_probe(item: ImportRunItem, ctx: StageContext) -> None:
    """GET /v1/models → alias table → capability profile → smoke model; then provision."""
    record_event(item=item, event_type=EventType.STAGE_STARTED, message="probing the upstream")
    try:
        check_upstream_url(item.base_url)
    except UnsafeUpstream as exc:
        fail_item(item, error=str(exc))
        return
    client = UpstreamClient(item.base_url, item.api_key, transport=ctx.upstream_transport)
    try:
        discovered = discover_models(client)
        if not discovered.raw_models:
            fail_item(item, error="the upstream lists no models (GET /v1/models is empty)")
            return
        preferred = [
            raw
            for raw in (
                resolve_requested_model(m, discovered.raw_models) for m in item.requested_models
            )
            if raw
        ]
        profile = probe_capabilities(client, discovered.raw_models, preferred=preferred)
    except ProbeError as exc:
        attempt = stage_retries(item) + 1
        if exc.transient and attempt <= settings.RELAY_HTTP_RETRIES + 1:
            schedule_retry(item, attempt=attempt, reason=str(exc), payload={"kind": exc.kind})
        else:
            fail_item(item, error=str(exc), payload={"kind": exc.kind})
        return
    finally:
        client.close()

    raw_models = discovered.raw_models
    aliases = build_alias_table(raw_models)
    smoke, recommendations = resolve_smoke_model(list(item.requested_models), raw_models, profile)
    profile_dict = profile.to_dict()
    advisories = list(profile_dict["transport_profile"].get("known_advisories", []))
    unresolved = [m for m in item.requested_models if not resolve_requested_model(m, raw_models)]
    if unresolved:
        advisories.append("requested_model_not_found")
    if smoke is None:
        fail_item(item, error="no discovered model answered a smoke chat completion")
        return
    transition_item(
        item_id=item.item_id,
        stage=Stage.PROVISION,
        event_type=EventType.STAGE_COMPLETED,
        message=f"{len(raw_models)} models discovered; smoke model {smoke}",
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
            "recommended_models": recommendations,
        },
    )


def _unique(values) -> list[str]:
    return list(dict.fromkeys(values))
