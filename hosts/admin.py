from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from hosts.models import Host, HostCapabilitySnapshot, ManagedResource
from relay_project.admin_mixins import ReadOnlyAdminMixin, ReadOnlyInline, masked


class SnapshotInline(ReadOnlyInline):
    model = HostCapabilitySnapshot
    fields = ("created_at", "version", "supported", "missing_capabilities")
    readonly_fields = fields


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ("name", "base_url", "auth_type", "version", "status", "last_probed_at")
    list_filter = ("status", "auth_type")
    search_fields = ("name", "base_url")
    # The credential is never shown, not even masked in a form field; status fields come from
    # the registration service only.
    exclude = ("admin_credential",)
    readonly_fields = (
        "credential",
        "version",
        "status",
        "missing_capabilities",
        "last_error",
        "last_probed_at",
        "created_at",
        "updated_at",
    )
    inlines = [SnapshotInline]
    actions = ["probe_again"]

    @admin.action(description=_("Probe again (read-only capability probe)"))
    def probe_again(self, request, queryset) -> None:
        from hosts import services  # the service talks HTTP; load it only when asked

        for host in queryset:
            host = services.reprobe_host(host)
            level = messages.SUCCESS if host.is_supported else messages.WARNING
            missing = ", ".join(host.missing_capabilities) or gettext("nothing")
            self.message_user(
                request,
                gettext("%(name)s: %(status)s (version %(version)s, missing %(missing)s)")
                % {
                    "name": host.name,
                    "status": host.get_status_display(),
                    "version": host.version or "?",
                    "missing": missing,
                },
                level,
            )

    def has_add_permission(self, request) -> bool:  # hosts are registered through the service
        return False

    @admin.display(description=_("admin credential"))
    def credential(self, obj: Host) -> str:
        return masked(obj.admin_credential)


@admin.register(HostCapabilitySnapshot)
class HostCapabilitySnapshotAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("host", "version", "supported", "created_at")
    list_filter = ("supported", "host")


@admin.register(ManagedResource)
class ManagedResourceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "host",
        "resource_type",
        "host_resource_id",
        "logical_key",
        "provider_id",
        "state",
        "created_by_run_id",
    )
    list_filter = ("resource_type", "state", "host")
    search_fields = ("logical_key", "provider_id", "host_resource_id", "created_by_run_id")
    exclude = ("secret",)
