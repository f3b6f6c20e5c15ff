from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from providers import services
from providers.errors import ProviderError
from providers.models import (
    Provider,
    ProviderAccount,
    ProviderEvent,
    ReconcileResult,
    ReconcileRun,
)
from relay_project.admin_mixins import ReadOnlyAdminMixin, ReadOnlyInline


class AccountInline(ReadOnlyInline):
    model = ProviderAccount
    fields = (
        "host_account_id",
        "key_fingerprint",
        "status",
        "consecutive_failures",
        "last_test_ok",
        "last_latency_ms",
        "last_test_at",
    )
    readonly_fields = fields
    show_change_link = False


class EventInline(ReadOnlyInline):
    model = ProviderEvent
    fields = ("created_at", "event_type", "from_state", "to_state", "message", "actor")
    readonly_fields = fields
    show_change_link = False


@admin.register(Provider)
class ProviderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "provider_id",
        "host",
        "state",
        "access_status",
        "last_reconciled_at",
        "updated_at",
    )
    list_filter = ("state", "access_status", "host")
    search_fields = ("provider_id", "base_url", "accounts__key_fingerprint")
    inlines = [AccountInline, EventInline]
    actions = ["reconcile", "disable", "enable"]

    def _bulk(self, request, queryset, action: str, done: str) -> None:
        try:
            services.providers_bulk(
                provider_pks=queryset.values_list("pk", flat=True),
                action=action,
                actor=request.user.get_username(),
            )
        except ProviderError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, done % {"count": queryset.count()}, messages.SUCCESS)

    @admin.action(description=_("Reconcile selected providers now"))
    def reconcile(self, request, queryset):
        self._bulk(request, queryset, "reconcile", _("Reconcile started for %(count)d providers."))

    @admin.action(description=_("Disable selected providers"))
    def disable(self, request, queryset):
        self._bulk(request, queryset, "disable", _("%(count)d providers disabled."))

    @admin.action(description=_("Enable selected providers"))
    def enable(self, request, queryset):
        self._bulk(request, queryset, "enable", _("%(count)d providers enabled."))


class ResultInline(ReadOnlyInline):
    model = ReconcileResult
    fields = ("provider", "kind", "resource_type", "host_resource_id", "message", "diff")
    readonly_fields = fields
    show_change_link = False


@admin.register(ReconcileRun)
class ReconcileRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "run_id",
        "host",
        "trigger",
        "state",
        "drifted_providers",
        "failed_checks",
        "started_at",
        "finished_at",
    )
    list_filter = ("state", "trigger", "host")
    search_fields = ("run_id",)
    inlines = [ResultInline]
