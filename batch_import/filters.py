"""Query filters of seed 004 §4, shared by the API and the pages."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from batch_import.models import ImportRun, ImportRunItem


class RunFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=ImportRun.State.choices, label=_("State"))
    access_mode = django_filters.ChoiceFilter(
        choices=ImportRun.AccessMode.choices, label=_("Access mode")
    )
    q = django_filters.CharFilter(method="search", label=_("Search run / provider / URL"))

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
    current_stage = django_filters.ChoiceFilter(
        choices=ImportRunItem.Stage.choices, label=_("Stage")
    )
    confirmation_status = django_filters.ChoiceFilter(
        choices=ImportRunItem.ConfirmationStatus.choices, label=_("Confirmation")
    )
    access_status = django_filters.ChoiceFilter(
        choices=ImportRunItem.AccessStatus.choices, label=_("Access")
    )
    has_warning = django_filters.BooleanFilter(label=_("Has warning"))
    provider_id = django_filters.CharFilter(label=_("Provider"))
    matched_account_state = django_filters.ChoiceFilter(
        choices=ImportRunItem.MatchedAccountState.choices, label=_("Account state")
    )
    account_resolution = django_filters.ChoiceFilter(
        choices=ImportRunItem.AccountResolution.choices, label=_("Resolution")
    )
    failure_class = django_filters.ChoiceFilter(
        choices=ImportRunItem.FailureClass.choices, label=_("Reason")
    )
    q = django_filters.CharFilter(method="search", label=_("Search provider / URL / item"))

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
            "failure_class",
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
