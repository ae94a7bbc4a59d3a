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


# Fields only staff get: optional in the schema, the rest of a response is required.
STAFF_ONLY = "Staff only (absent for everyone else)."

# Ids in paths: digits, at most 18 (tutor_platform.api.ID_PATTERN).
MAX_PATH_ID = 10**18 - 1

SUMMARIES = {
    "auth_register_create": "Register a student",
    "auth_login_create": "Log in (get a token pair)",
    "auth_refresh_create": "Rotate the refresh token",
    "auth_logout_create": "Log out (revoke a refresh token)",
    "auth_me_retrieve": "Get my profile",
    "auth_me_partial_update": "Update my profile",
    "auth_change_password_create": "Change my password",
    "auth_me_preferences_retrieve": "Get my preferences",
    "auth_me_preferences_update": "Replace my preferences",
    "auth_me_preferences_partial_update": "Merge into my preferences",
    "courses_list": "List active courses",
    "courses_retrieve": "Get a course",
    "tutors_list": "List active tutors",
    "tutors_retrieve": "Get a tutor",
    "chats_list": "List my chats",
    "chats_create": "Start a chat",
    "chats_retrieve": "Get a chat",
    "chats_partial_update": "Rename a chat",
    "chats_destroy": "Delete a chat",
    "chats_messages_retrieve": "Page through a chat's messages",
    "chats_messages_create": "Send a message and get the tutor's reply",
    "chats_messages_destroy": "Clear a chat's history",
    "chats_reply_create": "Retry the reply to the last message",
    "feedback_list": "List my feedback",
    "feedback_create": "Rate a reply",
    "feedback_retrieve": "Get a feedback item",
    "feedback_destroy": "Delete a feedback item",
    "ml_feedback_list": "List feedback for training (ML team)",
    "ml_feedback_mark_processed_create": "Mark feedback processed (ML team)",
    "progress_list": "List my study progress",
    "progress_retrieve": "Get my progress with a tutor",
    "progress_update": "Set my minutes with a tutor",
    "progress_add_create": "Add minutes with a tutor",
    "health_retrieve": "Health check",
}


def add_common_error_responses(result: dict, generator, request, public: bool) -> dict:
    """drf-spectacular postprocessing hook: what holds for every operation.

    - Every operation may fail with 406 (an `Accept` header that excludes
      JSON) and 500, every throttled one (all but health) with 429, one with
      a body also with 413 (too large) and 415 (not JSON).
    - Path ids are integers, as the routes accept them.
    - Response fields are always present: every property of a response
      component is required, except the ones marked STAFF_ONLY.
    - Every operation has a short summary.
    """
    error_ref = {"$ref": "#/components/schemas/Error"}
    content = {"application/json": {"schema": error_ref}}
    common = {
        "406": "The `Accept` header excludes `application/json` (`not_acceptable`).",
        "413": "Request body too large (`request_too_large`): DATA_UPLOAD_MAX_MEMORY_SIZE, or 16 KiB "
        "without a user.",
        "415": "Body is not `application/json` (`unsupported_media_type`).",
        "429": "Too many requests (`throttled`); see `Retry-After`.",
        "500": "Unexpected server error (`server_error`); no details are disclosed.",
    }
    for path, path_item in result.get("paths", {}).items():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, description in common.items():
                if status in ("413", "415") and "requestBody" not in operation:
                    continue
                if status == "429" and path.endswith("/health/"):
                    continue
                responses.setdefault(status, {"description": description, "content": content})
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter["schema"].get("pattern"):
                    parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": MAX_PATH_ID}
            operation["summary"] = SUMMARIES[operation["operationId"]]
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if not name.endswith("Request") and component.get("type") == "object" and "properties" in component:
            component["required"] = sorted(
                name
                for name, field in component["properties"].items()
                if not field.get("description", "").startswith(STAFF_ONLY)
            )
    return result
