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


def add_common_error_responses(result: dict, generator, request, public: bool) -> dict:
    """drf-spectacular postprocessing hook: errors any operation can answer.

    Every operation may fail with 406 (an `Accept` header that excludes JSON)
    and 500; one with a body also with 413 (too large) and 415 (not JSON).
    Listed once here instead of on every view.
    """
    error_ref = {"$ref": "#/components/schemas/Error"}
    content = {"application/json": {"schema": error_ref}}
    common = {
        "406": "The `Accept` header excludes `application/json` (`not_acceptable`).",
        "413": "Request body larger than DATA_UPLOAD_MAX_MEMORY_SIZE (`request_too_large`).",
        "415": "Body is not `application/json` (`unsupported_media_type`).",
        "500": "Unexpected server error (`server_error`); no details are disclosed.",
    }
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, description in common.items():
                if status in ("413", "415") and "requestBody" not in operation:
                    continue
                responses.setdefault(status, {"description": description, "content": content})
    return result
