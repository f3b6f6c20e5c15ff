"""Projection: badges, labels and warning texts for runs and items — the only place they are
made. API, pages, admin and CLI all read from here, so a label never differs between them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy

from batch_import.models import ImportRun, ImportRunItem, ImportRunItemEvent
from hosts.subscribers import Refusal, SubscriptionChange, UserOutcome
from probe.aliases import canonical_model_family
from probe.capability import seed_profile

Access = ImportRunItem.AccessStatus


@dataclass(frozen=True)
class Badge:
    kind: str
    value: str
    label: str
    color: str

    @property
    def css_class(self) -> str:
        return f"badge badge-{self.color}"


# Seed 004 §7: colours and labels. The Chinese labels are the zh-hans translations.
BADGES: dict[str, dict[Any, tuple[str, Any]]] = {
    "run_state": {
        "running": ("blue", pgettext_lazy("run state", "running")),
        "completed": ("green", pgettext_lazy("run state", "completed")),
        "completed_with_warnings": ("yellow", pgettext_lazy("run state", "warning")),
        "failed": ("red", pgettext_lazy("run state", "failed")),
        "cancelled": ("gray", pgettext_lazy("run state", "cancelled")),
    },
    "confirmation": {
        "pending": ("blue", pgettext_lazy("confirmation", "pending")),
        "confirmed": ("green", pgettext_lazy("confirmation", "confirmed")),
        "advisory": ("yellow", pgettext_lazy("confirmation", "advisory")),
        "failed": ("red", pgettext_lazy("confirmation", "failed")),
    },
    "access": {
        "unknown": ("gray", pgettext_lazy("access", "unknown")),
        "active": ("green", pgettext_lazy("access", "active")),
        "degraded": ("yellow", pgettext_lazy("access", "degraded")),
        "broken": ("red", pgettext_lazy("access", "broken")),
    },
    "reuse": {True: ("cyan", pgettext_lazy("reuse", "reused"))},
    "account_state": {
        "active": ("green", pgettext_lazy("account state", "enabled")),
        "disabled": ("gray", pgettext_lazy("account state", "disabled")),
        "deprecated": ("yellow", pgettext_lazy("account state", "deprecated")),
        "broken": ("red", pgettext_lazy("account state", "broken")),
    },
    "resolution": {
        "created": ("blue", pgettext_lazy("account resolution", "created")),
        "reused": ("cyan", pgettext_lazy("account resolution", "reused")),
        "reactivated": ("green", pgettext_lazy("account resolution", "reactivated")),
        "replaced": ("red", pgettext_lazy("account resolution", "replaced")),
    },
    "stage": {
        "probe": ("blue", pgettext_lazy("stage", "probe")),
        "provision": ("blue", pgettext_lazy("stage", "provision")),
        "confirm": ("blue", pgettext_lazy("stage", "confirm")),
        "validate": ("blue", pgettext_lazy("stage", "validate")),
        "done": ("gray", pgettext_lazy("stage", "done")),
    },
}


def badge(kind: str, value: Any) -> Badge | None:
    """The badge for a stored value, or None where seed 004 shows none (e.g. not reused)."""
    entry = BADGES[kind].get(value)
    if entry is None:
        return None
    color, label = entry
    return Badge(kind=kind, value=str(value), label=str(label), color=color)


def run_badges(run: ImportRun) -> dict[str, Badge | None]:
    return {"state": badge("run_state", run.state)}


def item_badges(item: ImportRunItem) -> dict[str, Badge | None]:
    return {
        "stage": badge("stage", item.current_stage),
        "confirmation": badge("confirmation", item.confirmation_status),
        "access": badge("access", item.access_status),
        "reuse": badge("reuse", item.provision_reused or None),
        "account_state": badge("account_state", item.matched_account_state),
        "resolution": badge("resolution", item.account_resolution),
        # The stage the last error came from, in the operator's words (not "[validate]").
        "error_stage": badge("stage", item.last_error_stage),
    }


# Advisory codes stored on items → the text people read.
ADVISORY_TEXTS: dict[str, Any] = {
    "responses_unsupported_but_chat_ok": _(
        "The upstream does not support /v1/responses; the host falls back to /v1/chat/completions."
    ),
    "initial_probe_race_expected": _(
        "The host's first account test may fail with 403 while its own probe runs."
    ),
    "probe_race_absorbed": _(
        "The first account test returned 403 (probe race) while the models were right; "
        "treated as advisory."
    ),
    "validation_routing_ambiguous": _(
        "Another provider in the same group serves this model family; the gateway check "
        "cannot tell which account answered, the direct account test is the evidence."
    ),
    "channels_unsupported": _(
        "The host has no channels; model aliases are mapped on the account only."
    ),
    "chat_completions_unsupported": _(
        "The host gateway has no /v1/chat/completions; validation cannot run there."
    ),
    "smoke_model_fallback": _(
        "A requested model failed the upstream's own chat test; another model that passed it "
        "was used to provision and validate (see the events)."
    ),
    "requested_model_not_found": _(
        "A requested model is not offered by the upstream; see the recommended models."
    ),
    "warmup_retried": _("The gateway answered 503 while warming up; it was retried."),
    "responses_probe_inconclusive": _(
        "The /v1/responses probe was inconclusive (timeout, 5xx, 429 or 400)."
    ),
    "probe_rate_limited": _("The upstream rate-limited some capability probes."),
    "subscription_user_refused": _(
        "A listed subscription user was refused and got no access to this provider; the "
        "item's user list says why."
    ),
    "models_from_pack": _(
        "The upstream listed no models; the model pack's default models were used instead."
    ),
}


def advisory_text(code: str) -> str:
    text = ADVISORY_TEXTS.get(code)
    return str(text) if text is not None else code


def advisory_texts(codes: Iterable[str]) -> list[str]:
    return [advisory_text(code) for code in codes]


def recent_warnings(run: ImportRun, *, with_reasons: bool = True) -> list[str]:
    """Run-level warning summary (seed 004 §6.3), built from counters and item advisories.
    ``with_reasons=False``: without the per-reason lines (the run page lists them as links)."""
    warnings: list[str] = []
    advisory = run.items.filter(
        confirmation_status=ImportRunItem.ConfirmationStatus.ADVISORY
    ).count()
    if advisory:
        warnings.append(
            ngettext(
                "This run has %(n)d advisory item; check its capability profile and retry trail.",
                "This run has %(n)d advisory items; check their capability profiles and retry "
                "trails.",
                advisory,
            )
            % {"n": advisory}
        )
    if run.degraded_items:
        warnings.append(
            ngettext(
                "%(n)d item is degraded: the gateway kept failing transiently.",
                "%(n)d items are degraded: the gateway kept failing transiently.",
                run.degraded_items,
            )
            % {"n": run.degraded_items}
        )
    if run.broken_items:
        warnings.append(
            ngettext(
                "%(n)d item is broken; its last error says why.",
                "%(n)d items are broken; their last errors say why.",
                run.broken_items,
            )
            % {"n": run.broken_items}
        )
    if with_reasons and (run.broken_items or run.degraded_items):
        warnings.extend(_failure_reasons(run))
    other = (
        run.items.filter(has_warning=True)
        .exclude(confirmation_status=ImportRunItem.ConfirmationStatus.ADVISORY)
        .exclude(access_status__in=[Access.DEGRADED, Access.BROKEN])
        .count()
    )
    if other:
        warnings.append(
            ngettext(
                "%(n)d item works but carries advisories; its page lists them.",
                "%(n)d items work but carry advisories; their pages list them.",
                other,
            )
            % {"n": other}
        )
    if run.duplicate_entries:
        warnings.append(
            ngettext(
                "%(n)d duplicate entry was collapsed into an existing item.",
                "%(n)d duplicate entries were collapsed into existing items.",
                run.duplicate_entries,
            )
            % {"n": run.duplicate_entries}
        )
    if not warnings and run.state == ImportRun.State.COMPLETED_WITH_WARNINGS:
        warnings.append(_("Some items need a look: their pages say why."))
    return warnings


def _failure_reasons(run: ImportRun) -> list[str]:
    """Broken and degraded items grouped by failure class: "2 items: upstream refused the key"."""
    rows = (
        run.items.filter(access_status__in=[Access.DEGRADED, Access.BROKEN])
        .exclude(failure_class="")
        .values("failure_class")
        .annotate(n=Count("item_id"))
        .order_by("-n", "failure_class")
    )
    labels = dict(ImportRunItem.FailureClass.choices)
    return [
        ngettext("%(n)d item: %(reason)s", "%(n)d items: %(reason)s", row["n"])
        % {"n": row["n"], "reason": labels.get(row["failure_class"], row["failure_class"])}
        for row in rows
    ]


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def run_projection(run: ImportRun) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "state": run.state,
        "mode": run.mode,
        "access_mode": run.access_mode,
        "host_id": run.host_id,
        "total_items": run.total_items,
        "completed_items": run.completed_items,
        "active_items": run.active_items,
        "degraded_items": run.degraded_items,
        "broken_items": run.broken_items,
        "warning_items": run.warning_items,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "is_preview": run.is_preview,
        "preview_of": run.preview_of or None,
        "promoted_to": run.promoted_to or None,
    }


def result_page(run_id: str) -> str:
    return f"/batch-import/runs/{run_id}"


def item_projection(item: ImportRunItem) -> dict[str, Any]:
    """List projection (seed 004 §6.4): no raw JSON blobs, no secrets."""
    return {
        "item_id": item.item_id,
        "run_id": item.run_id,
        "base_url": item.base_url,
        "provider_id": item.provider_id,
        "api_key_fingerprint": item.api_key_fingerprint,
        "requested_models": list(item.requested_models),
        "canonical_model_families": list(item.canonical_model_families),
        "resolved_smoke_model": item.resolved_smoke_model,
        "current_stage": item.current_stage,
        "confirmation_status": item.confirmation_status,
        "access_status": item.access_status,
        "matched_account_state": item.matched_account_state,
        "account_resolution": item.account_resolution,
        "provision_reused": item.provision_reused,
        "has_warning": item.has_warning,
        "retry_count": item.retry_count,
        "last_retry_at": _iso(item.last_retry_at),
        "advisory_messages": advisory_texts(item.advisory_messages),
        "last_error_stage": item.last_error_stage,
        "last_error": item.last_error_text if item.last_error is not None else None,
        "failure_class": item.failure_class or None,
        "validation_evidence": item.validation_evidence,
        "rolled_back_at": _iso(item.rolled_back_at),
    }


def event_projection(event: ImportRunItemEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "stage": event.stage,
        "attempt": event.attempt,
        "message": event.message_text,
        "payload_json": json.dumps(event.payload, sort_keys=True, ensure_ascii=False),
        "created_at": _iso(event.created_at),
    }


def item_detail_projection(
    item: ImportRunItem, events: Iterable[ImportRunItemEvent]
) -> dict[str, Any]:
    """Detail projection (seed 004 §6.5): the list fields plus models, capability, events."""
    detail = item_projection(item)
    detail.update(
        {
            "raw_models": list(item.raw_models),
            "normalized_models": list(item.normalized_models),
            "recommended_models": recommendations(item.recommended_models),
            "reused_from_provider_id": item.reused_from_provider_id,
            "reused_from_account_id": item.reused_from_account_id,
            "channel_id": item.channel_id,
            "account_id": item.account_id,
            "group_id": item.group_id,
            "attempt": item.attempt,
            "confirmation_attempts": item.confirmation_attempts,
            "next_retry_at": _iso(item.next_retry_at),
            "lease_owner": item.lease_owner,
            "lease_until": _iso(item.lease_until),
            "legacy_batch_id": item.legacy_batch_id,
            "legacy_provider_id": item.legacy_provider_id,
            "capability_profile": seed_profile(item.capability_profile),
            "preview_plan": item.preview_plan,
            "subscription_access": subscription_access(item),
            "events": [event_projection(event) for event in events],
        }
    )
    return detail


def subscription_access(item: ImportRunItem) -> list[dict[str, Any]]:
    """subscription mode: each user as provisioning left it, with the words people read."""
    rows = []
    for entry in item.subscription_access or ():
        refusal = entry.get("refusal") or ""
        reason = str(Refusal(refusal).label) if refusal in Refusal.values else refusal
        if reason and entry.get("detail"):
            reason = f"{reason} ({entry['detail']})"
        outcome, change = entry.get("outcome", ""), entry.get("subscription") or ""
        rows.append(
            {
                "email": entry.get("email", ""),
                "outcome": outcome,
                "outcome_label": str(UserOutcome(outcome).label)
                if outcome in UserOutcome.values
                else outcome,
                "host_user_id": entry.get("user_id"),
                "subscription_id": entry.get("subscription_id"),
                "subscription": change,
                "subscription_label": str(SubscriptionChange(change).label) if change else "",
                "subscription_ours": bool(entry.get("subscription_ours")),
                "expires_at": entry.get("expires_at") or None,
                "has_key": bool(entry.get("has_key")),
                "validation": bool(entry.get("validation")),
                "listed": entry.get("listed", True),
                "refusal": refusal or None,
                "reason": reason,
            }
        )
    return rows


TRANSPORT_LABELS: list[tuple[str, Any]] = [
    ("supports_openai_models", _("GET /v1/models")),
    ("supports_openai_chat_completions", _("POST /v1/chat/completions")),
    ("supports_openai_responses", _("POST /v1/responses")),
    ("supports_anthropic_messages", _("POST /v1/messages (Anthropic)")),
    ("auth_style", _("auth style")),
    ("model_id_style", _("model id style")),
]
SUPPORT_TEXTS: dict[Any, Any] = {
    True: pgettext_lazy("support", "yes"),
    False: pgettext_lazy("support", "no"),
    None: pgettext_lazy("support", "unknown"),
    "yes": pgettext_lazy("support", "yes"),
    "no": pgettext_lazy("support", "no"),
    "unknown": pgettext_lazy("support", "unknown"),
}


def support_text(value: Any) -> str:
    text = SUPPORT_TEXTS.get(value) if isinstance(value, bool | str | None) else None
    return str(text) if text is not None else str(value)


@dataclass(frozen=True)
class CapabilityMatrix:
    transport: list[tuple[str, str]]
    advisories: list[str]
    models: list[dict[str, str]]


def capability_matrix(profile: dict[str, Any] | None) -> CapabilityMatrix | None:
    """The capability profile as rows people read: transport, then one row per model."""
    if not profile:
        return None
    profile = seed_profile(profile)  # read as the typed profile reads it, whatever the shape
    transport = profile["transport_profile"]
    rows = [(str(label), support_text(transport.get(key))) for key, label in TRANSPORT_LABELS]
    models = [
        {
            "raw": str(m.get("raw_model_id", "")),
            "normalized": str(m.get("normalized_model_id", "")),
            "family": str(m.get("canonical_model_family", "")),
            "stream": support_text(m.get("supports_stream")),
            "tools": support_text(m.get("supports_tools")),
            "reasoning": support_text(m.get("supports_reasoning_fields")),
            "smoke": support_text(m.get("smoke_chat_ok")),
        }
        for m in profile["model_profiles"]
    ]
    return CapabilityMatrix(
        transport=rows,
        advisories=advisory_texts(transport["known_advisories"]),
        models=models,
    )


def recommendations(raw_models: Iterable[str]) -> list[dict[str, str]]:
    """Recommended models as the API gives them: the canonical family name (``model``) with
    the upstream's raw id beside it (``raw_id``), in the probe's order. Stored as raw ids."""
    return [{"model": canonical_model_family(raw), "raw_id": raw} for raw in raw_models]


def recommendation_labels(raw_models: Iterable[str]) -> list[str]:
    """Recommendations as an operator reads them: the canonical family, the raw id beside it."""
    return [
        entry["raw_id"]
        if entry["model"] == entry["raw_id"]
        else f"{entry['model']} ({entry['raw_id']})"
        for entry in recommendations(raw_models)
    ]


@dataclass(frozen=True)
class ReasonGroup:
    failure_class: str
    label: str
    count: int


@dataclass(frozen=True)
class RunProgress:
    """What the run page shows at a glance: how far, where the items are, when it may end,
    and why the items that did not end active did not."""

    done: int
    total: int
    percent: int
    stages: list[tuple[Badge, int]]
    eta_seconds: int | None
    # Where the estimate comes from: "this_run" (its own finished items), "earlier_runs" (the
    # host's latest finished runs, before this one has finished an item) or "estimating" (a
    # running run with no figure yet); "" once the run has ended.
    eta_basis: str
    reasons: list[ReasonGroup]


def run_progress(
    run: ImportRun,
    stages: dict[str, int],
    reasons: dict[str, int],
    *,
    earlier_seconds_per_item: float | None = None,
    now=None,
) -> RunProgress:
    """``stages`` and ``reasons`` are the selectors' grouped counts; ``earlier_seconds_per_item``
    (``selectors.earlier_seconds_per_item``) gives an estimate before the first item is done."""
    percent = round(100 * run.completed_items / run.total_items) if run.total_items else 100
    eta, basis = _estimate(run, earlier_seconds_per_item, now or timezone.now())
    order = [value for value, _label in ImportRunItem.Stage.choices]
    stage_badges = [(badge("stage", stage), stages[stage]) for stage in order if stages.get(stage)]
    labels = dict(ImportRunItem.FailureClass.choices)
    groups = [
        ReasonGroup(failure_class=code, label=str(labels.get(code, code)), count=count)
        for code, count in reasons.items()
    ]
    return RunProgress(
        done=run.completed_items,
        total=run.total_items,
        percent=percent,
        stages=stage_badges,
        eta_seconds=eta,
        eta_basis=basis,
        reasons=groups,
    )


def _estimate(
    run: ImportRun, earlier_seconds_per_item: float | None, now
) -> tuple[int | None, str]:
    """Seconds left and where the figure comes from (``RunProgress.eta_basis``)."""
    if run.is_terminal or run.completed_items >= run.total_items:
        return None, ""
    elapsed = max((now - run.started_at).total_seconds(), 0.0)
    if run.completed_items:
        left = elapsed / run.completed_items * (run.total_items - run.completed_items)
        return round(left), "this_run"
    if earlier_seconds_per_item is not None:
        left = earlier_seconds_per_item * run.total_items - elapsed
        if left >= 1:  # a run slower than the earlier ones has no figure until an item ends
            return round(left), "earlier_runs"
    return None, "estimating"
