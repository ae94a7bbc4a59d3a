"""Query-string filters that answer 400 to a value of the wrong type.

django-filter silently ignores `?course=abc` or `?processed=maybe`; a client
that sends one has a bug it should hear about.
"""

from datetime import UTC
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError


class _PresentMeansRequired:
    """A present but empty parameter (`?course=`) is invalid, not "no filter"."""

    widget = forms.TextInput

    def clean(self, value: Any) -> Any:
        if value == "":
            raise ValidationError("This parameter may not be empty.", code="blank")
        return super().clean(value)


class StrictIntegerField(_PresentMeansRequired, forms.IntegerField):
    pass


class StrictNullBooleanField(_PresentMeansRequired, forms.NullBooleanField):
    TRUE, FALSE = frozenset({"true", "True", "1"}), frozenset({"false", "False", "0"})

    def to_python(self, value: Any) -> bool | None:
        if value is None:
            return None
        if value in self.TRUE:
            return True
        if value in self.FALSE:
            return False
        raise ValidationError("Must be true or false.", code="invalid")

    def validate(self, value: bool | None) -> None:
        pass


class StrictDateTimeField(_PresentMeansRequired, django_filters.fields.IsoDateTimeField):
    """Converted to UTC: PostgreSQL refuses offsets beyond ±15:59 (`+18:27`)."""

    def clean(self, value: Any) -> Any:
        moment = super().clean(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Date out of range.", code="invalid") from None


class NumberFilter(django_filters.NumberFilter):
    field_class = StrictIntegerField


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictNullBooleanField


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = StrictDateTimeField
