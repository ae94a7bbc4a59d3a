from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from attachments.serializers import AttachmentSerializer
from tutor_platform.fields import StrictCharField, StrictIntegerField, StrictPrimaryKeyRelatedField
from tutor_platform.schema import SOMETIMES_ABSENT
from tutor_platform.serializers import ModelSerializer, datetimes
from tutoring.selectors import tutor_list
from tutoring.serializers import ChatTutorSerializer

from .models import Chat, Intent, Message, ReplyStatus

ATTACHMENTS_MAX_ITEMS = 5
MAX_DB_ID = 2**63 - 1

# The direct to_representation paths below convert with unbound, shared
# fields (the declared ones) rather than `self.fields`: those are deep
# copies made per serializer instance, each time
# (docs/decisions/2026-12-05-figures-from-comments.md). Converting to JSON
# keeps no state in a field.


class ChatSerializer(ModelSerializer):
    tutor = ChatTutorSerializer(read_only=True)

    class Meta:
        model = Chat
        fields = ["id", "tutor", "title", "created_at", "last_message_at"]
        read_only_fields = ["id", "tutor", "created_at", "last_message_at"]

    def to_representation(self, chat: Chat) -> dict[str, Any]:
        """The fields above, read straight off the chat (as MessageSerializer
        does; test_serializers checks both paths give the same JSON)."""
        tutor, last, dates = chat.tutor, chat.last_message_at, datetimes(self)
        return {
            "id": chat.pk,
            "tutor": {"id": tutor.pk, "name": tutor.name, "is_available": tutor.is_available},
            "title": chat.title,
            "created_at": dates.to_representation(chat.created_at),
            "last_message_at": dates.to_representation(last) if last is not None else None,
        }


class ChatCreateSerializer(serializers.Serializer):
    tutor = StrictPrimaryKeyRelatedField(
        queryset=tutor_list(),
        help_text="An active tutor's id.",
        error_messages={
            "does_not_exist": (
                "This tutor does not exist or is no longer available. Please choose another tutor."
            )
        },
    )
    # No default: a default makes the field required in generated request types.
    title = StrictCharField(max_length=255, required=False, allow_blank=True)


class ChatUpdateSerializer(serializers.Serializer):
    title = StrictCharField(max_length=255, allow_blank=True)


class ChatListQuerySerializer(serializers.Serializer):
    tutor = serializers.IntegerField(required=False, min_value=1, max_value=MAX_DB_ID)


# What a student sees of a reply's metadata; staff and the ML team see all of it.
STUDENT_METADATA = {"tokens_used": int, "processing_time": int | float, "latency_ms": int}


@extend_schema_field(
    {
        "type": "object",
        "description": "Only these fields, each when known.",
        "properties": {
            "tokens_used": {"type": "integer"},
            "processing_time": {"type": "number", "description": "Seconds, as AI-Core measured it."},
            "latency_ms": {"type": "integer", "description": "AI-Core's latency as the backend measured it."},
        },
        "additionalProperties": False,
    }
)
class StudentMetadataField(serializers.Field):
    """The documented allow-list of a reply's metadata, values of the documented type only."""

    def to_representation(self, value: dict[str, Any]) -> dict[str, Any]:
        return {
            key: value[key]
            for key, kind in STUDENT_METADATA.items()
            if isinstance(value.get(key), kind) and not isinstance(value[key], bool)
        }


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "description": (
            "On replies: which variant this is (1-based, oldest first) of how many; null on user messages."
        ),
        "properties": {"index": {"type": "integer"}, "count": {"type": "integer"}},
        "required": ["index", "count"],
    }
)
class VariantField(serializers.Field):
    """What chats.selectors.annotate_messages (or the reply flow) set on a
    message of one role, as `attribute`; null on messages of the other."""

    role, attribute = Message.Role.ASSISTANT, "variant"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, message: Message) -> Any:
        return getattr(message, self.attribute, None) if message.role == self.role else None


@extend_schema_field(
    {
        "type": "string",
        "nullable": True,
        "enum": [*ReplyStatus.values, None],
        "description": (
            "On user messages: `answered`, `pending` (being generated) or `failed` (see `reply_error`; "
            "POST /reply/ with this message's id retries). Null on replies."
        ),
    }
)
class ReplyStatusField(VariantField):
    role, attribute = Message.Role.USER, "reply_status"


@extend_schema_field(
    {
        "type": "string",
        "nullable": True,
        "description": (
            "When `reply_status` is `failed`: the error code of the last attempt (e.g. `ai_core_timeout`), "
            "or `reply_interrupted` when no attempt finished (the server stopped mid-reply)."
        ),
    }
)
class ReplyErrorField(ReplyStatusField):
    def to_representation(self, message: Message) -> str | None:
        failed = super().to_representation(message) == ReplyStatus.FAILED
        return message.reply_error or None if failed else None


class ModerationField(serializers.ChoiceField):
    """A message's choice (`moderation`, `intent`), null when it has none."""

    def to_representation(self, value: str) -> str | None:
        return value or None


@extend_schema_field(AttachmentSerializer(many=True))
class KeptAttachmentsField(serializers.ListField):
    """A message's attachments: the copy AttachmentSerializer wrote when it was sent."""

    def to_representation(self, data: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return data


class MessageSerializer(ModelSerializer):
    chat = serializers.PrimaryKeyRelatedField(read_only=True)
    attachments = KeptAttachmentsField(
        read_only=True, help_text="The uploads this message shows (user messages only)."
    )
    metadata = StudentMetadataField(read_only=True)
    tutor_version = serializers.IntegerField(
        source="tutor_version.number",
        read_only=True,
        allow_null=True,
        help_text="The number of the tutor version that wrote this reply; null on user messages.",
    )

    tokens_used = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="On replies: the tokens AI-Core reported; null when it did not.",
    )
    latency_ms = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="On replies: how long AI-Core took, as the backend measured it.",
    )
    variant = VariantField()
    reply_status = ReplyStatusField()
    reply_error = ReplyErrorField()
    moderation = ModerationField(
        choices=Message.Moderation.choices,
        read_only=True,
        allow_null=True,
        help_text=(
            "On replies: `safe_reply` (the tutor's configured answer to a message that needed one; "
            "AI-Core was not asked) or `withheld` (the generated reply was replaced by the configured "
            "safe text). Null otherwise."
        ),
    )

    intent = ModerationField(
        choices=Intent.choices,
        allow_null=True,
        read_only=True,
        help_text="On user messages: what the student asked the tutor to do. Null on replies.",
    )

    class Meta:
        model = Message
        fields = [
            "id",
            "chat",
            "role",
            "content",
            "attachments",
            "metadata",
            "tutor_version",
            "tokens_used",
            "latency_ms",
            "variant",
            "reply_status",
            "reply_error",
            "moderation",
            "intent",
            "created_at",
        ]
        read_only_fields = fields

    def to_representation(self, message: Message) -> dict[str, Any]:
        """The fields above, read straight off the message: DRF's generic
        per-field lookup was a quarter of the CPU of a 50-message page.
        test_serializers checks both give the same JSON for every kind of message."""
        fields = self._declared_fields
        version = message.tutor_version if message.tutor_version_id is not None else None
        return {
            "id": message.pk,
            "chat": message.chat_id,
            "role": message.role,
            "content": message.content,
            "attachments": message.attachments,  # kept as AttachmentSerializer wrote them
            "metadata": fields["metadata"].to_representation(message.metadata),
            "tutor_version": version.number if version is not None else None,
            "tokens_used": message.tokens_used,
            "latency_ms": message.latency_ms,
            "variant": fields["variant"].to_representation(message),
            "reply_status": fields["reply_status"].to_representation(message),
            "reply_error": fields["reply_error"].to_representation(message),
            "moderation": message.moderation or None,
            "intent": message.intent or None,
            "created_at": datetimes(self).to_representation(message.created_at),
        }


class AttachmentReferenceSerializer(serializers.Serializer):
    """`{"id": <attachment id>}`, and nothing else."""

    id = StrictIntegerField(min_value=1, max_value=MAX_DB_ID, help_text="One of your uploads.")

    def to_internal_value(self, data: Any) -> Any:
        unknown = sorted(set(data) - {"id"}) if isinstance(data, dict) else []
        if unknown:
            message = "Unknown field: an attachment is referenced by its id only."
            raise serializers.ValidationError({key: [message] for key in unknown})
        return super().to_internal_value(data)


class SendMessageSerializer(serializers.Serializer):
    content = StrictCharField(trim_whitespace=False, help_text="Non-empty text, at most MESSAGE_MAX_CHARS.")
    # Optional with no `default` in the schema: generated clients would make a defaulted field required.
    intent = serializers.ChoiceField(
        choices=Intent.choices,
        required=False,
        help_text=(
            "What the student asks the tutor to do with the message (`question` when left out); "
            "AI-Core gets it (learner.intent)."
        ),
    )
    attachments = serializers.ListField(
        child=AttachmentReferenceSerializer(),
        max_length=ATTACHMENTS_MAX_ITEMS,
        required=False,
        default=list,
        help_text=f"At most {ATTACHMENTS_MAX_ITEMS} of your uploads (`POST /api/v1/attachments/`), in order.",
    )

    def validate_content(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.", code="blank")
        limit = settings.MESSAGE_MAX_CHARS
        if len(value) > limit:
            raise serializers.ValidationError(
                f"Ensure this field has no more than {limit} characters.", code="max_length"
            )
        return value

    def validate_attachments(self, value: list[dict[str, int]]) -> list[int]:
        """The ids, in order; the same upload twice is a mistake."""
        ids = [reference["id"] for reference in value]
        if len(set(ids)) != len(ids):
            raise serializers.ValidationError("The same attachment is listed twice.", code="duplicate")
        return ids


class MessagePageQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=50)
    before_id = serializers.IntegerField(min_value=1, max_value=MAX_DB_ID, required=False)


class ResumeQuerySerializer(serializers.Serializer):
    last_event_id = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)


class MessagePageSerializer(serializers.Serializer):
    results = MessageSerializer(many=True, help_text="Oldest first.")
    has_more = serializers.BooleanField(help_text="Older messages exist.")
    next_before_id = serializers.IntegerField(
        allow_null=True,
        help_text="Pass as `before_id` for the next older page; null when `has_more` is false.",
    )
    reply_in_progress = serializers.BooleanField(
        help_text="The tutor is writing a reply in this chat now: `GET .../stream/` shows it as it comes."
    )


class SendResultSerializer(serializers.Serializer):
    user_message = MessageSerializer()
    assistant_message = MessageSerializer()


class ReplyRequestSerializer(serializers.Serializer):
    message = StrictIntegerField(
        required=False,
        min_value=1,
        max_value=MAX_DB_ID,
        help_text="The user message to answer (one with no reply yet); default: the latest user message.",
    )


class ReplyResultSerializer(serializers.Serializer):
    assistant_message = MessageSerializer()


# Why a reply failed, in the JSON answer and in a stream's `event: error`.
REPLY_FAILURE_CODES = [
    "ai_core_timeout",
    "ai_core_unavailable",
    "ai_core_bad_response",
    "database_unavailable",
    "moderation_unavailable",  # the reply could not be checked (MODERATION_ON_ERROR=block)
    "server_error",
]


class AICoreErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.ChoiceField(choices=REPLY_FAILURE_CODES)
    user_message = MessageSerializer(
        help_text="The user message, saved; retry with POST .../reply/ or the same Idempotency-Key."
    )


class StreamDeltaSerializer(serializers.Serializer):
    """`event: delta`: the next piece of the reply (its SSE `id:` is the characters so far)."""

    content = serializers.CharField()


class StreamErrorSerializer(serializers.Serializer):
    """`event: error`: no reply was saved; drop the partial text."""

    detail = serializers.CharField()
    # A stream also ends in the conflicts found once it began, and in a dead server.
    code = serializers.ChoiceField(
        choices=[*REPLY_FAILURE_CODES, "reply_discarded", "reply_interrupted", "nothing_to_reply"]
    )
    user_message = MessageSerializer(allow_null=True, help_text="The user message, saved.")
    retry_after = serializers.IntegerField(
        required=False,
        help_text=f"{SOMETIMES_ABSENT} seconds to wait before a retry (as Retry-After on JSON).",
    )
