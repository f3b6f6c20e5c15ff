from __future__ import annotations

from django.contrib import admin

from relay_project.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued by ``manage.py create_api_token`` (the key is shown once); here they
    can be seen by prefix and revoked by deleting them."""

    list_display = ("user", "prefix", "created_at")
    readonly_fields = ("user", "prefix", "digest", "created_at")
    search_fields = ("user__username", "prefix")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
