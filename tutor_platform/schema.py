"""Reusable OpenAPI pieces: the error bodies every endpoint may answer."""

from drf_spectacular import openapi
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse


class BearerScheme(SimpleJWTScheme):
    """The API's authentication: simplejwt's, subclassed (accounts.tokens)."""

    target_class = "accounts.tokens.BearerAuthentication"


# Every error `code` the schema names; each gets a component `<Code>Error`
# ({"detail", "code"} with `code` fixed), added by the hook below.
ERROR_CODES: set[str] = set()


def _ref(code: str) -> dict:
    ERROR_CODES.add(code)
    name = "".join(part.title() for part in code.split("_"))
    return {"$ref": f"#/components/schemas/{name if name.endswith('Error') else name + 'Error'}"}


def error(description: str, *codes: str) -> OpenApiResponse:
    """An error response: one code, or several told apart by `code` (a discriminator)."""
    if len(codes) == 1:
        return OpenApiResponse(_ref(codes[0]), description=description)
    refs = {code: _ref(code)["$ref"] for code in codes}
    schema = {
        "oneOf": [{"$ref": ref} for ref in refs.values()],
        "discriminator": {"propertyName": "code", "mapping": refs},
    }
    return OpenApiResponse(schema, description=description)


VALIDATION_ERROR = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description=(
        'Invalid input: DRF\'s field errors (`{"field": ["message"]}`, nested for '
        'lists and objects), or `{"detail", "code"}` with `parse_error` for a body '
        "that is not valid JSON."
    ),
)
UNAUTHORIZED = error(
    "Missing, invalid or expired access token, or one issued before a password change.",
    "not_authenticated",
    "token_not_valid",
    "bad_authorization_header",
    "authentication_failed",
    "user_not_found",
    "user_inactive",
    "password_changed",
)
FORBIDDEN = error("Not allowed.", "permission_denied")
NOT_FOUND = error("No such object, or it belongs to another user.", "not_found")
THROTTLED = error("Too many requests; see `Retry-After`.", "throttled")
# Error codes whose body has more than `detail` and `code`: their extra
# fields (an app may add its own, as chats.schema does for content_blocked).
ERROR_FIELDS: dict[str, dict] = {
    "quota_exceeded": {
        "resets_at": {
            "type": "string",
            "format": "date-time",
            "description": "The next UTC midnight, when the day's quota renews.",
        }
    },
}
QUOTA_OR_THROTTLED = error(
    "Too many requests (`throttled`), or today's replies are used up (`quota_exceeded`, "
    "with `resets_at`); AI-Core was not called and nothing was saved. See `Retry-After`.",
    "throttled",
    "quota_exceeded",
)


# Fields only staff get: optional in the schema, the rest of a response is required.
STAFF_ONLY = "Staff only (absent for everyone else)."
# Other response fields that are sometimes absent start their help text with this.
SOMETIMES_ABSENT = "Only when it applies:"

# Ids in paths: digits, at most 18 (tutor_platform.serving.ID_PATTERN).
MAX_PATH_ID = 10**18 - 1

# Swagger UI's example bodies: realistic values instead of "string" and 2**63.
EXAMPLES = {
    "email": "ivan.petrov@example.com",
    "username": "Иван_Петров",
    "password": "Correct-Horse-42",
    "old_password": "Correct-Horse-42",
    "new_password": "Another-Horse-77",
    "full_name": "Иван Петров",
    "refresh": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.<payload>.<signature>",
    "access": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.<payload>.<signature>",
    "title": "Квадратные уравнения",
    "content": "Как решить x² − 5x + 6 = 0?",
    "tutor": 1,
    "message": 2,
    "rating": 5,
    "positive_text": "Понятно объяснил по шагам",
    "improvement_text": "Больше примеров",
    "minutes": 25,
    "total_minutes": 90,
    "ids": [1, 2, 3],
    "attachments": [{"id": 17}],
}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, with each operation's summary from its view's
    `summaries`: keyed by the viewset action (`list`, `reply`), by
    `action:METHOD` for an action with several methods (`messages:POST`), or
    by the method for a plain view (`get`)."""

    def get_summary(self) -> str | None:
        summaries = getattr(self.view, "summaries", {})
        action = getattr(self.view, "action", None)
        for key in (f"{action}:{self.method}", action, self.method.lower()):
            if key in summaries:
                return summaries[key]
        return super().get_summary()


# Request bodies of DELETE operations, which drf-spectacular never renders
# (OpenAPI 3.0 leaves a DELETE body's meaning open), though these need one.
# tests/test_schema_and_throttling checks each against its serializer.
DELETE_BODIES = {
    "auth_me_destroy": {
        "type": "object",
        "properties": {
            "password": {"type": "string", "writeOnly": True, "minLength": 1, "maxLength": 128,
                         "description": "Your current password."},
        },
        "required": ["password"],
    },
}  # fmt: skip


# Enums whose fields allow an empty value: detailed feedback has no reaction.
ENUMS_WITH_BLANK = ("QuickReactionEnum",)


def _operations(result: dict):
    for path, path_item in result.get("paths", {}).items():
        for operation in path_item.values():
            yield path, operation


def delete_bodies(result: dict, generator, request, public: bool) -> dict:
    """DELETE operations that need a body have it (DELETE_BODIES). Before
    `common_error_responses`, which gives an operation with a body 413 and 415."""
    for _path, operation in _operations(result):
        if operation["operationId"] in DELETE_BODIES:
            body = DELETE_BODIES[operation["operationId"]]
            operation["requestBody"] = {"content": {"application/json": {"schema": body}}, "required": True}
    return result


def common_error_responses(result: dict, generator, request, public: bool) -> dict:
    """Every operation may fail with 406 (an `Accept` header that excludes
    JSON), 414 (a request line over nginx's limit), 500 and 503 (database),
    every throttled one (all but health) with 429, one with a body also with
    413 (too large) and 415 (not JSON)."""
    common = {
        "406": error("The `Accept` header excludes `application/json`.", "not_acceptable"),
        "413": error(
            "Request body too large: DATA_UPLOAD_MAX_MEMORY_SIZE, or 16 KiB without a user.",
            "request_too_large",
        ),
        "414": error("The request line is longer than the server accepts (nginx).", "uri_too_long"),
        "415": error("Body is not `application/json`.", "unsupported_media_type"),
        "429": THROTTLED,
        "500": error("Unexpected server error; no details are disclosed.", "server_error"),
        "503": error("The database is unreachable or busy; see `Retry-After`.", "database_unavailable"),
    }
    for path, operation in _operations(result):
        responses = operation.setdefault("responses", {})
        for status, response in common.items():
            if status in ("413", "415") and "requestBody" not in operation:
                continue
            if status == "429" and path.endswith("/health/"):
                continue
            responses.setdefault(
                status,
                {
                    "description": response.description,
                    "content": {"application/json": {"schema": response.response}},
                },
            )
    return result


def integer_path_ids(result: dict, generator, request, public: bool) -> dict:
    """Path ids are integers, as the routes accept them."""
    for _path, operation in _operations(result):
        for parameter in operation.get("parameters", []):
            if parameter.get("in") == "path" and parameter["schema"].get("pattern"):
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": MAX_PATH_ID}
    return result


def error_components(result: dict, generator, request, public: bool) -> dict:
    """Each error `code` the operations name has its component `<Code>Error`."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for code in sorted(ERROR_CODES):
        schemas[_ref(code)["$ref"].rsplit("/", 1)[1]] = {
            "type": "object",
            "properties": {
                "detail": {"type": "string"},
                "code": {"type": "string", "enum": [code]},
                **ERROR_FIELDS.get(code, {}),
            },
        }
    return result


def enums_with_blank(result: dict, generator, request, public: bool) -> dict:
    """An enum with an empty value lists it (ENUMS_WITH_BLANK)."""
    schemas = result["components"]["schemas"]
    for name in ENUMS_WITH_BLANK:
        schemas[name]["enum"] = ["", *schemas[name]["enum"]]
    return result


def examples(result: dict, generator, request, public: bool) -> dict:
    """Request fields have realistic examples (EXAMPLES), and big integers a
    small one (not the maximum, which JavaScript rounds)."""
    for component in result["components"]["schemas"].values():
        for name, field in component.get("properties", {}).items():
            if name in EXAMPLES and "$ref" not in field and "readOnly" not in field:
                field.setdefault("example", EXAMPLES[name])
            elif field.get("type") == "integer" and field.get("maximum", 0) > 2**53:
                field.setdefault("example", 1)
    return result


def responses_always_present(result: dict, generator, request, public: bool) -> dict:
    """Every property of a response component is required, except the ones
    marked STAFF_ONLY or SOMETIMES_ABSENT."""
    for name, component in result["components"]["schemas"].items():
        if not name.endswith("Request") and component.get("type") == "object" and "properties" in component:
            component["required"] = sorted(
                field_name
                for field_name, field in component["properties"].items()
                if not field.get("description", "").startswith((STAFF_ONLY, SOMETIMES_ABSENT))
            )
    return result
