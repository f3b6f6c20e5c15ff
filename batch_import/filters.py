"""Query filters of seed 004 §4, shared by the API and the pages."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from batch_import.models import ImportRun, ImportRunItem


class RunFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=ImportRun.State.choices)
    access_mode = django_filters.ChoiceFilter(choices=ImportRun.AccessMode.choices)
    q = django_filters.CharFilter(method="search", label="search run_id / provider_id / base_url")

    class Meta:
        model = ImportRun
        fields = ["state", "access_mode", "q"]

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        matching_runs = ImportRunItem.objects.filter(
            Q(provider_id__icontains=value) | Q(base_url__icontains=value)
        ).values("run_id")
        return queryset.filter(Q(run_id__icontains=value) | Q(run_id__in=matching_runs))


class ItemFilter(django_filters.FilterSet):
    current_stage = django_filters.ChoiceFilter(choices=ImportRunItem.Stage.choices)
    confirmation_status = django_filters.ChoiceFilter(
        choices=ImportRunItem.ConfirmationStatus.choices
    )
    access_status = django_filters.ChoiceFilter(choices=ImportRunItem.AccessStatus.choices)
    has_warning = django_filters.BooleanFilter()
    provider_id = django_filters.CharFilter()
    matched_account_state = django_filters.ChoiceFilter(
        choices=ImportRunItem.MatchedAccountState.choices
    )
    account_resolution = django_filters.ChoiceFilter(
        choices=ImportRunItem.AccountResolution.choices
    )
    q = django_filters.CharFilter(method="search", label="search provider_id / base_url / item_id")

    class Meta:
        model = ImportRunItem
        fields = [
            "current_stage",
            "confirmation_status",
            "access_status",
            "has_warning",
            "provider_id",
            "matched_account_state",
            "account_resolution",
            "q",
        ]

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(provider_id__icontains=value)
            | Q(base_url__icontains=value)
            | Q(item_id__icontains=value)
        )
