"""What the provider pages show: badges (colour and label from one table, like the import
pages) and the latency/success chart's geometry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.translation import pgettext_lazy

from batch_import.projection import Badge
from providers.models import Provider, ProviderAccount, ProviderCheck, ReconcileRun

BADGES: dict[str, dict[str, tuple[str, Any]]] = {
    "provider_state": {
        "discovered": ("gray", pgettext_lazy("provider state", "discovered")),
        "validated": ("blue", pgettext_lazy("provider state", "validated")),
        "installed": ("blue", pgettext_lazy("provider state", "installed")),
        "active": ("green", pgettext_lazy("provider state", "active")),
        "degraded": ("yellow", pgettext_lazy("provider state", "degraded")),
        "drifted": ("cyan", pgettext_lazy("provider state", "drifted")),
        "failed": ("red", pgettext_lazy("provider state", "failed")),
        "disabled": ("gray", pgettext_lazy("provider state", "disabled")),
    },
    "access_closure": {
        "not_configured": ("gray", pgettext_lazy("access closure", "not configured")),
        "subscription_ready": ("green", pgettext_lazy("access closure", "subscription ready")),
        "self_service_ready": ("green", pgettext_lazy("access closure", "self-service ready")),
        "fully_ready": ("green", pgettext_lazy("access closure", "fully ready")),
        "broken": ("red", pgettext_lazy("access closure", "broken")),
    },
    "account_health": {
        "active": ("green", pgettext_lazy("account health", "serving")),
        "failing": ("yellow", pgettext_lazy("account health", "failing")),
        "disabled_by_policy": ("red", pgettext_lazy("account health", "disabled by policy")),
        "disabled_on_host": ("gray", pgettext_lazy("account health", "disabled on host")),
        "disabled_by_operator": ("gray", pgettext_lazy("account health", "disabled by operator")),
        "missing": ("red", pgettext_lazy("account health", "missing")),
        "removed": ("gray", pgettext_lazy("account health", "removed")),
    },
    # The live fragment stops refreshing once no badge says running (static/js/refresh.js).
    "run_state": {
        "running": ("blue", pgettext_lazy("run state", "running")),
        "completed": ("green", pgettext_lazy("run state", "completed")),
        "failed": ("red", pgettext_lazy("run state", "failed")),
    },
}


def badge(kind: str, value: str) -> Badge | None:
    entry = BADGES[kind].get(value)
    if entry is None:
        return None
    color, label = entry
    return Badge(kind=kind, value=value, label=str(label), color=color)


def provider_badges(provider: Provider) -> dict[str, Badge | None]:
    return {
        "state": badge("provider_state", provider.state),
        "access": badge("access_closure", provider.access_status),
    }


def account_badge(account: ProviderAccount) -> Badge | None:
    return badge("account_health", account.status)


def reconcile_badge(run: ReconcileRun) -> Badge | None:
    return badge("run_state", run.state)


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    ok: bool
    title: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    points: tuple[ChartPoint, ...]
    line: str  # SVG polyline points
    max_latency_ms: int
    success_rate: int | None  # percent


def latency_chart(
    checks: Sequence[ProviderCheck], *, width: int = 640, height: int = 120, pad: int = 8
) -> Chart:
    """Checks oldest first → points left to right, latency upwards; failures are red dots."""
    timed = [c.latency_ms or 0 for c in checks]
    top = max(timed, default=0) or 1
    step = (width - 2 * pad) / max(len(checks) - 1, 1)
    points = tuple(
        ChartPoint(
            x=round(pad + i * step, 1),
            y=round(height - pad - (latency / top) * (height - 2 * pad), 1),
            ok=check.ok,
            title=f"{check.created_at:%Y-%m-%d %H:%M} {check.get_kind_display()} "
            f"{'ok' if check.ok else 'failed'} {latency} ms",
        )
        for i, (check, latency) in enumerate(zip(checks, timed, strict=True))
    )
    rate = round(100 * sum(c.ok for c in checks) / len(checks)) if checks else None
    return Chart(
        width=width,
        height=height,
        points=points,
        line=" ".join(f"{p.x},{p.y}" for p in points),
        max_latency_ms=max(timed, default=0),
        success_rate=rate,
    )
