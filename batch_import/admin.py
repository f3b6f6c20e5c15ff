from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from batch_import.errors import Conflict
from batch_import.models import (
    ImportRun,
    ImportRunItem,
    ImportRunItemEvent,
    LegacyImportBatch,
    RunRollback,
)
from batch_import.rollback import rollback_plan, rollback_run
from relay_project.admin_mixins import ReadOnlyAdminMixin, ReadOnlyInline

ITEM_LIST_FIELDS = (
    "item_id",
    "provider_id",
    "current_stage",
    "confirmation_status",
    "access_status",
    "account_resolution",
)


class ItemInline(ReadOnlyInline):
    model = ImportRunItem
    fields = ITEM_LIST_FIELDS
    readonly_fields = fields


class EventInline(ReadOnlyInline):
    model = ImportRunItemEvent
    fields = ("created_at", "event_type", "stage", "attempt", "message", "payload")
    readonly_fields = fields
    show_change_link = False


def run_count(name: str, label: str):
    """A column of a run read ``with_counts()`` (an annotation, not a field)."""

    @admin.display(description=label, ordering=name)
    def shown(run: ImportRun) -> int:
        return getattr(run, name)

    shown.__name__ = name
    return shown


TOTAL = run_count("total_items", _("total items"))
COMPLETED = run_count("completed_items", _("completed items"))
ACTIVE = run_count("active_items", _("active items"))
DEGRADED = run_count("degraded_items", _("degraded items"))
BROKEN = run_count("broken_items", _("broken items"))
WARNINGS = run_count("warning_items", _("warning items"))


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "run_id",
        "state",
        "mode",
        "access_mode",
        TOTAL,
        ACTIVE,
        DEGRADED,
        BROKEN,
        "started_at",
        "finished_at",
    )
    list_filter = ("state", "mode", "access_mode", "host")
    search_fields = ("run_id", "items__provider_id", "items__base_url")
    exclude = ("probe_api_key",)
    readonly_fields = (TOTAL, COMPLETED, ACTIVE, DEGRADED, BROKEN, WARNINGS)
    inlines = [ItemInline]
    actions = ["roll_back"]

    def get_queryset(self, request):
        return super().get_queryset(request).with_counts()

    @admin.action(description=_("Roll back selected runs (asks for confirmation)"))
    def roll_back(self, request, queryset):
        """First POST shows what each rollback deletes and keeps; the confirming POST runs them
        through the one rollback service."""
        runs = list(queryset.select_related("host"))
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": gettext("Roll back runs"),
                "opts": self.model._meta,
                "plans": [(run, rollback_plan(run)) for run in runs],
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/batch_import/rollback_confirm.html", context)
        for run in runs:
            try:
                rollback = rollback_run(run_id=run.run_id, requested_by=request.user.get_username())
            except Conflict as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            level = (
                messages.SUCCESS
                if rollback.status == RunRollback.Status.ROLLED_BACK
                else messages.WARNING
            )
            left = len(rollback.remaining)
            self.message_user(
                request,
                gettext(
                    "%(run_id)s: %(status)s (%(deleted)d deleted, %(kept)d kept, "
                    "%(left)d remaining)"
                )
                % {
                    "run_id": run.run_id,
                    "status": rollback.get_status_display(),
                    "deleted": len(rollback.deleted),
                    "kept": len(rollback.kept),
                    "left": left,
                },
                level,
            )
        return None


@admin.register(ImportRunItem)
class ImportRunItemAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (*ITEM_LIST_FIELDS, "run", "matched_account_state", "updated_at")
    list_filter = (
        "current_stage",
        "confirmation_status",
        "access_status",
        "matched_account_state",
        "account_resolution",
        "provision_reused",
        "has_warning",
    )
    search_fields = ("item_id", "run__run_id", "provider_id", "base_url")
    exclude = ("api_key", "api_key_digest")
    inlines = [EventInline]


@admin.register(ImportRunItemEvent)
class ImportRunItemEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("event_id", "item", "event_type", "stage", "attempt", "created_at")
    list_filter = ("event_type", "stage")
    search_fields = ("event_id", "item__item_id", "run__run_id")


@admin.register(LegacyImportBatch)
class LegacyImportBatchAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "run_id", "host", "mode", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("run_id",)


@admin.register(RunRollback)
class RunRollbackAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("run", "status", "attempts", "next_attempt_at", "finished_at")
    list_filter = ("status",)
    search_fields = ("run__run_id",)
