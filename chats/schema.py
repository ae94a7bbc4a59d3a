"""The OpenAPI declarations of chats.views, kept next to them."""

from collections.abc import Callable

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)

from safety.models import Category
from tutor_platform.schema import (
    ERROR_FIELDS,
    NOT_FOUND,
    QUOTA_OR_THROTTLED,
    THROTTLED,
    UNAUTHORIZED,
    VALIDATION_ERROR,
    error,
)

from .replies import streaming
from .serializers import (
    AICoreErrorSerializer,
    ChatCreateSerializer,
    ChatSerializer,
    ChatUpdateSerializer,
    MessagePageQuerySerializer,
    MessagePageSerializer,
    MessageSerializer,
    ReplyRequestSerializer,
    ReplyResultSerializer,
    SendMessageSerializer,
    SendResultSerializer,
    StreamDeltaSerializer,
    StreamErrorSerializer,
)


def _each(*decorators: Callable) -> Callable:
    """One decorator for a view method that answers several HTTP methods."""

    def apply(function: Callable) -> Callable:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


_ERRORS = {401: UNAUTHORIZED, 404: NOT_FOUND, 429: THROTTLED}
_AI_ERRORS = {
    500: OpenApiResponse(
        AICoreErrorSerializer,
        description="`server_error` after the user message was saved; the user message is in the body.",
    ),
    502: OpenApiResponse(
        AICoreErrorSerializer, description="`ai_core_bad_response`; the user message is saved."
    ),
    503: OpenApiResponse(
        AICoreErrorSerializer,
        description=(
            "`ai_core_unavailable` or `database_unavailable` (with `Retry-After`); the user message is saved."
        ),
    ),
    504: OpenApiResponse(AICoreErrorSerializer, description="`ai_core_timeout`; the user message is saved."),
}
ERROR_FIELDS["content_blocked"] = {
    "categories": {
        "type": "array",
        "items": {"type": "string", "enum": list(Category.values)},
        "description": "What the safety checks found, most severe first.",
    }
}
# The message asked about is checked before anything is saved or AI-Core
# is asked (safety): a send's, and a saved one asked about again.
_CHECKED_INVALID = OpenApiResponse(
    {"anyOf": [error("", "content_blocked").response, {"type": "object"}]},
    description=(
        "`content_blocked` (with `categories`): the safety checks refuse the message (a send's, or the "
        "saved one a reply or regeneration is asked for, e.g. one the tutor answered with a safe reply); "
        "nothing was saved, AI-Core was not called and the quota was not used. Otherwise invalid input: "
        'DRF\'s field errors (`{"field": ["message"]}`), or `parse_error` for a body that is not valid JSON.'
    ),
)
_CHECKED_UNAVAILABLE = OpenApiResponse(
    {"anyOf": [{"$ref": "#/components/schemas/AICoreError"}, error("", "moderation_unavailable").response]},
    description=(
        "`ai_core_unavailable`, `database_unavailable` or `moderation_unavailable` (with `Retry-After`). "
        "With `user_message` when it was saved; `moderation_unavailable` without it when the message "
        "itself could not be checked (MODERATION_ON_ERROR=block): nothing was saved."
    ),
)


def _reply_responses(conflict: OpenApiResponse) -> dict:
    """/reply/ and /regenerate/: the reply as JSON or a stream, or why not."""
    return {
        201: ReplyResultSerializer,
        (200, streaming.EVENT_STREAM): _STREAM,
        400: _CHECKED_INVALID,
        **_ERRORS,
        429: QUOTA_OR_THROTTLED,
        409: conflict,
        422: error("The Idempotency-Key was used with another request.", "idempotency_key_reused"),
        **_AI_ERRORS,
        503: _CHECKED_UNAVAILABLE,
    }


# The events of a stream, each a named schema: `user_message` and
# `assistant_message` carry a Message, `delta` a StreamDelta, `error` a StreamError.
STREAM_EVENT = PolymorphicProxySerializer(
    component_name="StreamEvent",
    serializers=[MessageSerializer, StreamDeltaSerializer, StreamErrorSerializer],
    resource_type_field_name=None,
)
_STREAM_EVENTS = (
    "With `Accept: text/event-stream`: server-sent events, each `data:` one line of JSON, after "
    "`retry: 3000`. `event: user_message` (sends only) — the saved user message (`Message`); "
    "`event: delta` — `StreamDelta` (`id:` the characters sent so far), zero or more; then "
    "`event: assistant_message` — the saved reply (`Message`, its content the deltas joined), "
    "`event: moderated` — the saved reply (`Message`, `moderation: withheld`) that replaces what "
    "was relayed (a safety check withheld the generated text: show this one instead), "
    "or `event: error` — `StreamError`. Comment lines (`: keep-alive`) when nothing else was sent "
    "for 15 s. Closing the connection does not stop the reply: it is saved, and `GET .../stream/` "
    "re-attaches."
)
_STREAM = OpenApiResponse(STREAM_EVENT, description=_STREAM_EVENTS)

_IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description=(
        "At most 255 characters. A repeat by the same user within 24 h returns the first "
        "successful result without calling AI-Core again; a repeat after a failure answers the "
        "user message the first attempt saved, never saving a second copy."
    ),
)


CHATS = extend_schema_view(
    list=extend_schema(
        tags=["chats"],
        parameters=[OpenApiParameter("tutor", int, description="Only chats with this tutor.")],
        responses={200: ChatSerializer(many=True), 400: VALIDATION_ERROR, **_ERRORS},
    ),
    create=extend_schema(
        tags=["chats"],
        request=ChatCreateSerializer,
        responses={201: ChatSerializer, 400: VALIDATION_ERROR, **_ERRORS},
    ),
    retrieve=extend_schema(tags=["chats"], responses={200: ChatSerializer, **_ERRORS}),
    partial_update=extend_schema(
        tags=["chats"],
        request=ChatUpdateSerializer,
        responses={200: ChatSerializer, 400: VALIDATION_ERROR, **_ERRORS},
    ),
    destroy=extend_schema(
        tags=["chats"],
        responses={204: OpenApiResponse(description="Deleted; feedback on its messages is kept."), **_ERRORS},
    ),
)

MESSAGES = _each(
    extend_schema(
        methods=["GET"],
        tags=["messages"],
        parameters=[MessagePageQuerySerializer],
        responses={200: MessagePageSerializer, 400: VALIDATION_ERROR, **_ERRORS},
        description="Keyset pagination: the newest `limit` messages with `id < before_id`, oldest first.",
    ),
    extend_schema(
        methods=["POST"],
        tags=["messages"],
        request=SendMessageSerializer,
        parameters=[_IDEMPOTENCY_KEY],
        responses={
            201: SendResultSerializer,
            (200, streaming.EVENT_STREAM): _STREAM,
            400: _CHECKED_INVALID,
            **_ERRORS,
            429: QUOTA_OR_THROTTLED,
            409: error(
                "The tutor was deactivated, the same Idempotency-Key is still running, or the chat "
                "was cleared while the tutor answered.",
                "tutor_unavailable",
                "idempotency_key_in_use",
                "reply_discarded",
                "nothing_to_reply",
            ),
            422: error("The Idempotency-Key was used with another body.", "idempotency_key_reused"),
            **_AI_ERRORS,
            503: _CHECKED_UNAVAILABLE,
        },
        description=(
            "Checks the message (safety), saves it, asks the tutor, checks the reply, saves and returns it. "
            "A message the checks answer themselves (e.g. `self_harm`) gets the configured reply "
            "(`moderation: safe_reply`) without AI-Core; a reply they withhold is replaced by the "
            "configured safe text (`moderation: withheld`)."
        ),
    ),
    extend_schema(
        methods=["DELETE"],
        tags=["messages"],
        responses={204: OpenApiResponse(description="History cleared; the chat stays."), **_ERRORS},
    ),
)

REPLY = extend_schema(
    tags=["messages"],
    request=ReplyRequestSerializer,
    parameters=[_IDEMPOTENCY_KEY],
    responses=_reply_responses(
        error(
            "The message already has its reply (or is not a user message), the tutor was "
            "deactivated, the chat was cleared while the tutor answered, or the same "
            "Idempotency-Key is still running.",
            "nothing_to_reply",
            "tutor_unavailable",
            "reply_discarded",
            "idempotency_key_in_use",
        )
    ),
    description=(
        "Generates the missing reply to a user message (the retry after a failure): the one named by "
        "`message`, by default the chat's latest user message."
    ),
)

REGENERATE = extend_schema(
    tags=["messages"],
    request=None,
    parameters=[_IDEMPOTENCY_KEY],
    responses=_reply_responses(
        error(
            "The chat's last user message has no reply yet (use /reply/), the tutor was "
            "deactivated, the chat was cleared while the tutor answered, or the same "
            "Idempotency-Key is still running.",
            "nothing_to_regenerate",
            "tutor_unavailable",
            "reply_discarded",
            "idempotency_key_in_use",
        )
    ),
    description=(
        "Asks the tutor again for the reply to the chat's last user message. The new reply becomes the "
        "current variant; the earlier ones are kept (see `variants/` and `select/`)."
    ),
)

VARIANTS = extend_schema(
    tags=["messages"],
    responses={200: MessageSerializer(many=True), 400: VALIDATION_ERROR, **_ERRORS},
    description="Every reply answering the same user message as this one, oldest first.",
)

SELECT = extend_schema(
    tags=["messages"],
    request=None,
    responses={200: MessageSerializer, 400: VALIDATION_ERROR, **_ERRORS},
    description=(
        "Makes this reply the current variant: message pages show it and the history sent to the "
        "tutor uses it."
    ),
)

STREAM = extend_schema(
    tags=["messages"],
    parameters=[
        OpenApiParameter(
            "last_event_id",
            OpenApiTypes.INT,
            description="Resume after this many characters of the reply (the last `delta`'s `id`).",
        ),
        OpenApiParameter(
            "Last-Event-ID",
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            description="As `last_event_id`, for clients that resume with the SSE header.",
        ),
    ],
    responses={
        (200, streaming.EVENT_STREAM): OpenApiResponse(
            STREAM_EVENT,
            description=(
                "The reply being generated, re-attached: one `delta` with everything so far (after "
                "`Last-Event-ID` characters when given), then the live `delta`s and "
                "`assistant_message` or `error` (see the send's stream)."
            ),
        ),
        204: OpenApiResponse(description="No reply is being generated in this chat."),
        400: VALIDATION_ERROR,
        **_ERRORS,
        429: error(
            "At most 2 re-attached streams per chat and 5 per student are open at once, or the "
            "request budget is spent.",
            "too_many_streams",
            "throttled",
        ),
    },
    description=(
        "Re-attaches to the reply being generated in the chat (after a closed tab, a refresh or a "
        "dropped connection)."
    ),
)
