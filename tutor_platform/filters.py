"""Query-string filters that answer 400 to a value of the wrong type.

django-filter silently ignores `?course=abc` or `?processed=maybe`; a client
that sends one has a bug it should hear about.
"""

from datetime import UTC
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, filters


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


class StrictChoiceField(_PresentMeansRequired, django_filters.fields.ChoiceField):
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


MAX_ID = 2**63 - 1


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class NumberFilter(django_filters.NumberFilter):
    """An id in the query string: an integer in the database's range, as the schema says."""

    field_class = StrictIntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictNullBooleanField


class ChoiceFilter(django_filters.ChoiceFilter):
    field_class = StrictChoiceField


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = StrictDateTimeField


class OrderingFilter(filters.OrderingFilter):
    """`?ordering=` takes one of the view's `ordering_fields`, ascending or
    descending (`-`); anything else is a 400, and the schema lists the choices."""

    def choices(self, view: Any) -> list[str]:
        return [f"{sign}{field}" for field in view.ordering_fields for sign in ("", "-")]

    def get_ordering(self, request: Any, queryset: Any, view: Any) -> Any:
        value = request.query_params.get(self.ordering_param)
        if value is not None and value not in self.choices(view):
            raise exceptions.ValidationError(
                {self.ordering_param: [f"Must be one of: {', '.join(self.choices(view))}."]}
            )
        return super().get_ordering(request, queryset, view)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"] = {
                "type": "string",
                "enum": self.choices(view),
                # Names for generated clients' enums ("-rating" is no identifier).
                "x-enum-varnames": [
                    f"{choice.lstrip('-').upper()}{'_DESC' if choice.startswith('-') else ''}"
                    for choice in self.choices(view)
                ],
            }
            parameter["description"] = "Sort order; `-` for descending."
        return parameters
