"""The project's base ModelSerializer.

DRF's ModelSerializer works out its fields from the model (field mapping,
extra kwargs, uniqueness) every time it is instantiated, a large share of
the CPU of a response such as GET /auth/me/ (see
docs/decisions/2026-12-05-figures-from-comments.md). Nothing in that work depends on
the instance, the data or the context, so here it is done once per class
and every serializer gets its own deep copy, the same way DRF copies the
declared fields. A serializer whose fields depend on the request must not
use this base (none does: the staff-only tutor fields are a class of their own).
"""

import copy
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers


class ModelSerializer(serializers.ModelSerializer):
    def get_fields(self) -> dict[str, Any]:
        cls = type(self)
        built = cls.__dict__.get("_built_fields")
        if built is None:  # two threads may both build: the same fields either way
            built = super().get_fields()
            cls._built_fields = built
        return copy.deepcopy(built)


def datetimes(serializer: serializers.BaseSerializer) -> serializers.DateTimeField:
    """DRF's DateTimeField in the current time zone, for the serializers
    that read their fields straight off the row: looked up once per
    serializer (once for a whole list: its rows share one child) rather
    than once per value, which was a tenth of a message page's CPU."""
    field = serializer.__dict__.get("_datetimes")
    if field is None:
        zone = timezone.get_current_timezone() if settings.USE_TZ else None
        field = serializer.__dict__["_datetimes"] = serializers.DateTimeField(default_timezone=zone)
    return field
