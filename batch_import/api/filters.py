"""The API's variant of the item filters: query values the schema calls booleans must be
booleans. (django-filter's BooleanFilter reads ``has_warning=maybe`` as "no filter"; an API
client that mistyped it deserves a 400, while the pages keep their select widget.)"""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from batch_import.filters import ItemFilter

TRUE_WORDS = frozenset({"true", "1"})
FALSE_WORDS = frozenset({"false", "0"})


class StrictBooleanFormField(forms.Field):
    widget = forms.TextInput

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        word = str(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValidationError(_("must be true or false"), code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanFormField


class ApiItemFilter(ItemFilter):
    has_warning = StrictBooleanFilter()
