"""Operator pages: the provider inventory and a provider's page (staff only)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from hosts.sub2api import HostError
from providers import projection, selectors, services
from providers.errors import ProviderError
from providers.filters import ProviderFilter
from providers.models import Provider, ReconcileRun

PAGE_SIZE = 50
staff_required = staff_member_required(login_url=settings.LOGIN_URL)
BULK_DONE = {
    services.BulkAction.TEST: gettext_lazy("Testing started for %(count)d providers."),
    services.BulkAction.RECONCILE: gettext_lazy("Reconcile started for %(count)d providers."),
    services.BulkAction.DISABLE: gettext_lazy("%(count)d providers disabled."),
    services.BulkAction.ENABLE: gettext_lazy("%(count)d providers enabled."),
}


def _running_reconciles() -> list[tuple[ReconcileRun, object]]:
    runs = ReconcileRun.objects.filter(state=ReconcileRun.State.RUNNING).order_by("-started_at")
    return [(run, projection.reconcile_badge(run)) for run in runs[:10]]


@staff_required
def provider_list(request: HttpRequest) -> HttpResponse:
    found = ProviderFilter(request.GET, queryset=selectors.providers_for_inventory())
    page = Paginator(found.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    running = _running_reconciles()
    context = {
        "filter": found,
        "page": page,
        "rows": [
            (
                p,
                projection.provider_badges(p),
                [(a, projection.account_badge(a)) for a in p.accounts.all()],
            )
            for p in page
        ],
        "running": running,
        "actions": services.BulkAction.ALL,
    }
    if request.GET.get("fragment"):
        return render(request, "providers/_reconcile_progress.html", context)
    return render(request, "providers/provider_list.html", context)


@require_POST
@staff_required
def provider_bulk(request: HttpRequest) -> HttpResponse:
    action = request.POST.get("action", "")
    ids = [int(v) for v in request.POST.getlist("ids") if v.isdigit()]
    if action not in services.BulkAction.ALL or not ids:
        messages.error(request, _("Select at least one provider and an action."))
        return redirect("providers:provider_list")
    try:
        services.providers_bulk(provider_pks=ids, action=action, actor=request.user.get_username())
    except ProviderError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, BULK_DONE[action] % {"count": len(ids)})
    return redirect("providers:provider_list")


def _provider_or_404(pk: int) -> Provider:
    try:
        return selectors.providers_for_inventory().get(pk=pk)
    except Provider.DoesNotExist:
        raise Http404("no such provider") from None


@staff_required
def provider_detail(request: HttpRequest, pk: int) -> HttpResponse:
    provider = _provider_or_404(pk)
    reconciles = selectors.provider_reconcile_runs(provider)
    latest = reconciles[0] if reconciles else None
    context = {
        "provider": provider,
        "badges": projection.provider_badges(provider),
        "accounts": [(a, projection.account_badge(a)) for a in provider.accounts.all()],
        "resources": selectors.provider_resources(provider),
        "access_checks": selectors.latest_access_checks(provider).values(),
        "chart": projection.latency_chart(selectors.provider_checks_for_chart(provider)),
        "reconciles": [(run, projection.reconcile_badge(run)) for run in reconciles],
        "latest_results": latest.results.filter(provider=provider).exclude(kind="present")
        if latest
        else [],
        "events": provider.events.all()[:50],
        "running": [(r, b) for r, b in _running_reconciles() if provider.pk in r.provider_ids],
        "actions": [
            (services.BulkAction.TEST, _("Test now")),
            (services.BulkAction.RECONCILE, _("Reconcile")),
            *([("accept-drift", _("Accept drift"))] if provider.open_drift else []),
            (services.BulkAction.ENABLE, _("Enable"))
            if provider.is_disabled
            else (services.BulkAction.DISABLE, _("Disable")),
        ],
    }
    if request.GET.get("fragment"):
        return render(request, "providers/_reconcile_progress.html", context)
    return render(request, "providers/provider_detail.html", context)


@require_POST
@staff_required
def provider_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    provider = _provider_or_404(pk)
    actor = request.user.get_username()
    try:
        if action == "accept-drift":
            services.provider_accept_drift(provider_pk=provider.pk, actor=actor)
            messages.success(
                request, _("Drift accepted: the host's current shape is the new baseline.")
            )
        elif action in services.BulkAction.ALL:
            services.providers_bulk(provider_pks=[provider.pk], action=action, actor=actor)
            messages.success(request, BULK_DONE[action] % {"count": 1})
        else:
            raise Http404("no such action")
    except ProviderError as exc:
        messages.error(request, str(exc))
    return redirect("providers:provider_detail", pk=provider.pk)


@require_POST
@staff_required
def account_switch(request: HttpRequest, pk: int, account_pk: int, switch: str) -> HttpResponse:
    provider = _provider_or_404(pk)
    account = provider.accounts.filter(pk=account_pk).first()
    if account is None or switch not in ("enable", "disable"):
        raise Http404("no such account")
    try:
        services.provider_account_switch(
            account_pk=account.pk, enable=switch == "enable", actor=request.user.get_username()
        )
    except (ProviderError, HostError) as exc:
        messages.error(request, str(exc))
    else:
        done = _("Account %(id)s enabled.") if switch == "enable" else _("Account %(id)s disabled.")
        messages.success(request, done % {"id": account.host_account_id})
    return redirect("providers:provider_detail", pk=provider.pk)
