"""Input fields that take JSON types at their word.

DRF's CharField turns ``123`` into ``"123"`` and IntegerField turns ``"30"`` or ``30.0`` into
``30``. The schema promises a string or an integer, so anything else is refused: a client that
sends the wrong type learns it at once instead of having it half-accepted.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers


class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": _("must be a string")}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": _("must be an integer")}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    # The message does not echo the input: a pasted key in the wrong field must not come back.
    default_error_messages = {"invalid_choice": _("must be one of {choices}")}

    def to_internal_value(self, data: Any) -> str:
        if data == "" and self.allow_blank:
            return ""
        if not isinstance(data, str) or data not in self.choice_strings_to_values:
            self.fail("invalid_choice", choices=", ".join(map(str, self.choices)))
        return self.choice_strings_to_values[data]


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": _("must be true or false")}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data
