"""Input fields that take JSON types at their word.

DRF's CharField turns ``123`` into ``"123"`` and IntegerField turns ``"30"`` or ``30.0`` into
``30``. The schema promises a string or an integer, so anything else is refused: a client that
sends the wrong type learns it at once instead of having it half-accepted.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """``schema_pattern`` documents the rule the server applies to the value (the patterns of
    ``relay_project.inputs``) in the OpenAPI document; the server's own checks stay the rule.

    The value is stripped before ``max_length`` is checked, so a published ``maxLength`` (of
    the value as sent) would refuse what the server accepts. Unless ``pattern_bounds_length``
    is False, the pattern carries the length instead and the field checks it itself.
    """

    default_error_messages = {"invalid": _("must be a string")}

    def __init__(
        self,
        *,
        schema_pattern: str | None = None,
        pattern_bounds_length: bool = True,
        **kwargs: Any,
    ) -> None:
        self.schema_pattern = schema_pattern
        self.stripped_max_length: int | None = None
        if schema_pattern and pattern_bounds_length:
            self.stripped_max_length = kwargs.pop("max_length", None)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if self.stripped_max_length is not None and len(value) > self.stripped_max_length:
            self.fail("max_length", max_length=self.stripped_max_length)
        return value


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


class StrictCharFieldSchema(OpenApiSerializerFieldExtension):
    """Adds a StrictCharField's ``schema_pattern`` to its generated schema."""

    target_class = StrictCharField
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if self.target.schema_pattern:
            schema["pattern"] = self.target.schema_pattern
        return schema
