"""Operator pages: runs, a run, an item, and the start-a-run form (staff only)."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from batch_import import projection, selectors
from batch_import.api.pagination import ITEMS_PROBLEMS_FIRST
from batch_import.errors import Conflict, InvalidRequest, InvalidTransition
from batch_import.filters import ItemFilter, RunFilter
from batch_import.forms import ENTRY_PARTS, ReplaceEntryForm, StartRunForm
from batch_import.models import ImportRun, ImportRunItem
from batch_import.rollback import rollback_run, rollback_summary
from batch_import.services import (
    item_replace_entry,
    item_retry,
    items_retry,
    run_cancel,
    run_promote,
    run_start,
)
from relay_project.api.errors import InvalidInput
from relay_project.api.pagination import MAX_CURSOR_LENGTH, KeysetPage, keyset_page
from relay_project.crypto import Secret

PAGE_SIZE = 25
staff_required = staff_member_required(login_url=settings.LOGIN_URL)


def _run_or_404(run_id: str) -> ImportRun:
    try:
        return selectors.run_get(run_id)
    except ImportRun.DoesNotExist:
        raise Http404("no such run") from None


@staff_required
def run_list(request: HttpRequest) -> HttpResponse:
    runs = RunFilter(request.GET, queryset=selectors.runs_newest_first())
    page = Paginator(runs.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(run, projection.run_badges(run)["state"]) for run in page]
    running = any(not run.is_terminal for run in page)
    context = {"filter": runs, "page": page, "rows": rows, "running": running}
    template = "batch_import/_run_rows.html" if request.GET.get("fragment") else None
    return render(request, template or "batch_import/run_list.html", context)


@staff_required
def run_detail(request: HttpRequest, run_id: str) -> HttpResponse:
    run = _run_or_404(run_id)
    items = ItemFilter(request.GET, queryset=selectors.items_problems_first(run))
    page = _items_page(request, items.qs)
    context = {
        "run": run,
        "state_badge": projection.run_badges(run)["state"],
        "warnings": projection.recent_warnings(run, with_reasons=False),
        "filter": items,
        "page": page,
        "rows": [(item, projection.item_badges(item)) for item in page.rows],
        "running": not run.is_terminal,
        "progress": projection.run_progress(
            run,
            selectors.stage_counts(run),
            selectors.failure_class_counts(run.run_id),
            earlier_seconds_per_item=selectors.earlier_seconds_per_item(run),
        ),
    }
    template = "batch_import/_run_live.html" if request.GET.get("fragment") else None
    return render(request, template or "batch_import/run_detail.html", context)


def _items_page(request: HttpRequest, items) -> KeysetPage:
    """The run page's items, PAGE_SIZE at a time along the problems-first index: ``cursor``
    pages on, ``before`` pages back (a cursor that is not one starts from the top)."""
    after, before = request.GET.get("cursor"), request.GET.get("before")
    if len(after or "") > MAX_CURSOR_LENGTH or len(before or "") > MAX_CURSOR_LENGTH:
        after = before = None
    try:
        return keyset_page(items, ITEMS_PROBLEMS_FIRST, after=after, before=before, size=PAGE_SIZE)
    except InvalidInput:
        return keyset_page(items, ITEMS_PROBLEMS_FIRST, after=None, before=None, size=PAGE_SIZE)


@staff_required
def item_detail(request: HttpRequest, run_id: str, item_id: str) -> HttpResponse:
    try:
        item = selectors.item_get_with_events(run_id, item_id)
    except ImportRunItem.DoesNotExist:
        raise Http404("no such item") from None
    events = [
        (event, json.dumps(event.payload, indent=2, sort_keys=True, ensure_ascii=False))
        for event in item.events.all()
    ]
    context = {
        "run": item.run,
        "item": item,
        "badges": projection.item_badges(item),
        "advisories": projection.advisory_texts(item.advisory_messages),
        "recommendations": projection.recommendation_labels(item.recommended_models),
        "matrix": projection.capability_matrix(item.capability_profile),
        "subscription_access": projection.subscription_access(item),
        "events": events,
        "running": not item.is_done,
        "retryable": item.is_done and item.access_status != ImportRunItem.AccessStatus.ACTIVE,
        "replace_form": ReplaceEntryForm(initial={"base_url": item.base_url}),
        "preview_plan": (
            json.dumps(item.preview_plan, indent=2, sort_keys=True, ensure_ascii=False)
            if item.preview_plan
            else ""
        ),
    }
    template = "batch_import/_item_live.html" if request.GET.get("fragment") else None
    return render(request, template or "batch_import/item_detail.html", context)


@staff_required
@require_http_methods(["GET", "POST"])
def run_new(request: HttpRequest) -> HttpResponse:
    form = StartRunForm(request.POST or None, initial=_rerun_initial(request.GET.get("from")))
    if request.method == "POST":
        if form.is_valid():
            started = run_start(request=form.run_request, created_by=request.user.get_username())
            return redirect("batch_import:run_detail", run_id=started.run.run_id)
        # The lines come back as the operator typed them (in this same answer only, never
        # cached or stored) so that only the bad lines need fixing; the probe key field is a
        # password input and is not filled back.
        response = render(request, "batch_import/run_new.html", {"form": form})
        response["Cache-Control"] = "no-store"
        return response
    return render(request, "batch_import/run_new.html", {"form": form})


KEY_PLACEHOLDER = "<paste the key again>"


def _rerun_initial(run_id: str | None) -> dict:
    """ "Re-run the failed lines": the run's settings and one line per item that did not end
    active, with the key left for the operator to paste (keys never go back into a page)."""
    if not run_id:
        return {}
    run = ImportRun.objects.filter(pk=run_id).first()
    if run is None:
        return {}
    failed = run.items.filter(current_stage=ImportRunItem.Stage.DONE).exclude(
        access_status=ImportRunItem.AccessStatus.ACTIVE
    )
    lines = [
        ",".join(
            [
                item.base_url,
                KEY_PLACEHOLDER,
                *(["|".join(item.requested_models)] if item.requested_models else []),
            ]
        )
        for item in failed.order_by("position")
    ]
    return {
        "host_id": run.host_id,
        "mode": run.mode,
        "access_mode": run.access_mode,
        "subscription_users": ", ".join(run.subscription_users),
        "subscription_days": run.subscription_days,
        "entries": "\n".join(lines),
    }


@staff_required
@require_POST
def run_cancel_view(request: HttpRequest, run_id: str) -> HttpResponse:
    run = _run_or_404(run_id)
    if run.is_terminal:
        messages.info(request, _("This run has already finished; there is nothing to cancel."))
        return redirect("batch_import:run_detail", run_id=run_id)
    try:
        run_cancel(run_id=run_id, actor=request.user.get_username())
        messages.success(request, _("Run cancelled."))
    except InvalidTransition:
        messages.info(request, _("This run has already finished; there is nothing to cancel."))
    return redirect("batch_import:run_detail", run_id=run_id)


@staff_required
@require_POST
def item_replace_view(request: HttpRequest, run_id: str, item_id: str) -> HttpResponse:
    """A new URL and key for a failed item, then probed again (the old key is not kept)."""
    if not ImportRunItem.objects.filter(run_id=run_id, pk=item_id).exists():
        raise Http404("no such item")
    form = ReplaceEntryForm(request.POST)
    if form.is_valid():
        try:
            item_replace_entry(
                run_id=run_id,
                item_id=item_id,
                base_url=form.cleaned_data["base_url"],
                api_key=Secret(form.cleaned_data["api_key"]),
                actor=request.user.get_username(),
            )
        except InvalidRequest as exc:
            for field, message in exc.errors.items():
                messages.error(request, f"{ENTRY_PARTS.get(field, field)}: {message}")
        except InvalidTransition:
            messages.info(request, _("Only a finished item that did not end active can be fixed."))
        else:
            messages.success(request, _("Entry replaced; the item is probed again."))
    else:
        for field, errors in form.errors.items():
            messages.error(request, f"{form.fields[field].label}: {' '.join(errors)}")
    return redirect("batch_import:item_detail", run_id=run_id, item_id=item_id)


@staff_required
@require_POST
def item_retry_view(request: HttpRequest, run_id: str, item_id: str) -> HttpResponse:
    if not ImportRunItem.objects.filter(run_id=run_id, pk=item_id).exists():
        raise Http404("no such item")
    try:
        item_retry(run_id=run_id, item_id=item_id, actor=request.user.get_username())
        messages.success(request, _("Retry scheduled."))
    except InvalidTransition as exc:
        messages.error(request, str(exc))
    return redirect("batch_import:item_detail", run_id=run_id, item_id=item_id)


@staff_required
@require_POST
def items_retry_view(request: HttpRequest, run_id: str) -> HttpResponse:
    """The run page's "Retry selected": every selected item that did not end active."""
    _run_or_404(run_id)
    ids = request.POST.getlist("items")
    retried = items_retry(run_id=run_id, item_ids=ids, actor=request.user.get_username())
    if retried:
        messages.success(
            request,
            ngettext("%(n)d item sent back.", "%(n)d items sent back.", len(retried))
            % {"n": len(retried)},
        )
    else:
        messages.info(request, _("Select items that did not end active to retry them."))
    return redirect("batch_import:run_detail", run_id=run_id)


@staff_required
@require_http_methods(["GET", "POST"])
def run_rollback_view(request: HttpRequest, run_id: str) -> HttpResponse:
    """GET: the confirmation, listing what would be deleted and kept. POST: roll back (or
    resume a partial rollback) through the one rollback service."""
    run = _run_or_404(run_id)
    if request.method == "POST":
        try:
            rollback = rollback_run(run_id=run_id, requested_by=request.user.get_username())
        except Conflict as exc:
            messages.error(request, str(exc))
        else:
            if rollback.remaining:
                messages.warning(request, _("Rollback partial: some resources remain."))
            else:
                messages.success(request, _("Run rolled back."))
        return redirect("batch_import:run_rollback", run_id=run_id)
    context = {"run": run, "rollback": rollback_summary(run), "running": not run.is_terminal}
    return render(request, "batch_import/run_rollback.html", context)


@staff_required
@require_POST
def run_promote_view(request: HttpRequest, run_id: str) -> HttpResponse:
    """ "Run it for real": the preview's request and probe results become a real run."""
    _run_or_404(run_id)
    try:
        run = run_promote(run_id=run_id, actor=request.user.get_username())
    except Conflict as exc:
        messages.error(request, str(exc))
        return redirect("batch_import:run_detail", run_id=run_id)
    return redirect("batch_import:run_detail", run_id=run.run_id)
