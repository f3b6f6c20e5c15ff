from __future__ import annotations

from django.contrib import admin

from batch_import.models import ImportRun, ImportRunItem, ImportRunItemEvent, LegacyImportBatch
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


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "run_id",
        "state",
        "mode",
        "access_mode",
        "total_items",
        "active_items",
        "degraded_items",
        "broken_items",
        "started_at",
        "finished_at",
    )
    list_filter = ("state", "mode", "access_mode", "host")
    search_fields = ("run_id", "items__provider_id", "items__base_url")
    exclude = ("probe_api_key",)
    inlines = [ItemInline]


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
