"""Shared admin behaviour: read-mostly, state fields never editable, secrets masked."""

from __future__ import annotations

from django.contrib import admin

from relay_project.crypto import MASK


class ReadOnlyAdminMixin:
    """Rows are written by services, not by hand: no add, no change, no delete."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True


def masked(value) -> str:
    return MASK if value else "—"
