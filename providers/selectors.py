"""Reads of the provider inventory that span relations (a fixed number of queries a page)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from hosts.models import ManagedResource
from providers.models import (
    AccessMode,
    Provider,
    ProviderAccount,
    ProviderCheck,
    ReconcileResult,
    ReconcileRun,
)

CHART_POINTS = 60


def providers_for_inventory() -> QuerySet[Provider]:
    return (
        Provider.objects.select_related("host")
        .prefetch_related(
            Prefetch("accounts", queryset=ProviderAccount.objects.order_by("host_account_id"))
        )
        .order_by("host__name", "provider_id", "id")
    )


def provider_resources(provider: Provider) -> QuerySet[ManagedResource]:
    """The host resources relay-manager made for this provider, with their baselines."""
    return (
        ManagedResource.objects.filter(host_id=provider.host_id, provider_id=provider.provider_id)
        .select_related("baseline")
        .order_by("resource_type", "id")
    )


def latest_access_checks(provider: Provider) -> dict[str, ProviderCheck]:
    """The provider's latest gateway check in each access mode (the access closure's input)."""
    latest = {}
    for mode in AccessMode.values:
        check = (
            provider.checks.filter(kind=ProviderCheck.Kind.GATEWAY, access_mode=mode)
            .order_by("-created_at", "-id")
            .first()
        )
        if check is not None:
            latest[mode] = check
    return latest


def provider_checks_for_chart(provider: Provider) -> list[ProviderCheck]:
    """The latest checks, oldest first (the chart reads left to right)."""
    checks = list(provider.checks.order_by("-created_at", "-id")[:CHART_POINTS])
    return checks[::-1]


def provider_reconcile_runs(provider: Provider, limit: int = 20) -> list[ReconcileRun]:
    run_ids = (
        ReconcileResult.objects.filter(provider=provider)
        .values_list("reconcile_run_id", flat=True)
        .distinct()
    )
    return list(ReconcileRun.objects.filter(pk__in=run_ids).order_by("-started_at")[:limit])


def latest_reconcile(provider: Provider) -> ReconcileRun | None:
    runs = provider_reconcile_runs(provider, limit=1)
    return runs[0] if runs else None
