"""The inventory's filters, shared by the page and the API."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils.translation import gettext_lazy as _

from hosts.models import Host
from providers.models import Provider


class ProviderFilter(django_filters.FilterSet):
    host_id = django_filters.ModelChoiceFilter(
        field_name="host", queryset=Host.objects.all(), label=_("Host")
    )
    state = django_filters.ChoiceFilter(choices=Provider.State.choices, label=_("State"))
    access_status = django_filters.ChoiceFilter(
        choices=Provider.AccessClosure.choices, label=_("Access")
    )
    q = django_filters.CharFilter(method="search", label=_("Search URL / model / fingerprint"))

    class Meta:
        model = Provider
        fields = ["host_id", "state", "access_status", "q"]

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        # Model ids live in JSON lists: searched as their text, the same on SQLite and PG.
        queryset = queryset.annotate(
            models_text=Cast("upstream_models", TextField()),
            families_text=Cast("families", TextField()),
        )
        return queryset.filter(
            Q(base_url__icontains=value)
            | Q(provider_id__icontains=value)
            | Q(models_text__icontains=value)
            | Q(families_text__icontains=value)
            | Q(accounts__key_fingerprint__icontains=value)
        ).distinct()
