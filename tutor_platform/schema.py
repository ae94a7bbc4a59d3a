"""Reusable OpenAPI pieces: the error bodies every endpoint may answer."""

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "detail": serializers.CharField(),
        "code": serializers.CharField(),
    },
)

ValidationErrorSerializer = inline_serializer(
    name="ValidationError",
    fields={
        "field_name": serializers.ListField(
            child=serializers.CharField(), help_text="One list of messages per invalid field."
        ),
    },
)


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


VALIDATION_ERROR = OpenApiResponse(ValidationErrorSerializer, description="Invalid input.")
UNAUTHORIZED = error("Missing, invalid or expired access token (`not_authenticated`, `token_not_valid`).")
FORBIDDEN = error("Not allowed (`permission_denied`).")
NOT_FOUND = error("No such object, or it belongs to another user (`not_found`).")
THROTTLED = error("Too many requests (`throttled`); see `Retry-After`.")
