"""Reusable OpenAPI pieces: the error bodies every endpoint may answer."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "detail": serializers.CharField(),
        "code": serializers.CharField(),
    },
)


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


VALIDATION_ERROR = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description=(
        'Invalid input: DRF\'s field errors (`{"field": ["message"]}`, nested for '
        'lists and objects), or `{"detail", "code"}` with `parse_error` for a body '
        "that is not valid JSON."
    ),
)
UNAUTHORIZED = error("Missing, invalid or expired access token (`not_authenticated`, `token_not_valid`).")
FORBIDDEN = error("Not allowed (`permission_denied`).")
NOT_FOUND = error("No such object, or it belongs to another user (`not_found`).")
THROTTLED = error("Too many requests (`throttled`); see `Retry-After`.")
