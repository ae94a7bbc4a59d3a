"""A user's data as one JSON document, written piece by piece.

Chats, messages and feedback are read with server-side cursors (chunked
iterators) and written as they come, so memory use does not grow with the
amount of data. Nothing here reaches another user's rows or a tutor's
system prompt: every query is scoped to the user, tutors appear as
`{id, name}`, and reply metadata goes through the students' allow-list.
"""

import json
from collections import defaultdict
from collections.abc import Iterator
from itertools import groupby
from operator import attrgetter
from typing import Any

from rest_framework import serializers

from accounts.models import User
from accounts.serializers import ProfileSerializer
from attachments import links
from attachments.models import Attachment
from attachments.serializers import AttachmentSerializer
from chats.models import Chat, Message
from chats.selectors import with_version_number
from chats.serializers import ChatSerializer, MessageSerializer
from feedback.models import Feedback
from feedback.serializers import FeedbackSerializer
from progress.models import Progress
from progress.serializers import ProgressSerializer

CHUNK = 500


class ExportMessageSerializer(MessageSerializer):
    """Every message, variants included: `reply_to` says which user message a
    reply answers and `is_current` which variant the chat shows."""

    reply_to = serializers.IntegerField(source="reply_to_id", allow_null=True, read_only=True)

    class Meta(MessageSerializer.Meta):
        fields = [
            *(
                f
                for f in MessageSerializer.Meta.fields
                if f not in ("variant", "reply_status", "reply_error")
            ),
            "reply_to",
            "is_current",
        ]
        read_only_fields = fields

    def to_representation(self, message: Message) -> dict[str, Any]:
        # Other fields than MessageSerializer's own shortcut reads: DRF's generic path.
        return serializers.ModelSerializer.to_representation(self, message)


class ExportChatSerializer(ChatSerializer):
    messages = ExportMessageSerializer(many=True, help_text="Every message of the chat, oldest first.")

    class Meta(ChatSerializer.Meta):
        fields = [*ChatSerializer.Meta.fields, "messages"]


class ExportFeedbackSerializer(FeedbackSerializer):
    reply = serializers.CharField(source="reply_content", help_text="The tutor's reply you rated.")
    user_message = serializers.CharField(
        source="prompt_content", help_text="Your message that the reply answered."
    )

    class Meta(FeedbackSerializer.Meta):
        fields = [*FeedbackSerializer.Meta.fields, "reply", "user_message"]
        read_only_fields = fields


class ExportUsageDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    messages = serializers.IntegerField(help_text="Tutor replies you got that day (UTC).")
    tokens = serializers.IntegerField(help_text="Tokens those replies used, as AI-Core reported them.")


class ExportAttachmentSerializer(AttachmentSerializer):
    url = serializers.CharField(
        help_text="A signed link to the file that works without a token, for ATTACHMENT_URL_SECONDS (600 s)."
    )

    class Meta(AttachmentSerializer.Meta):
        fields = [*AttachmentSerializer.Meta.fields, "url"]
        read_only_fields = fields

    def to_representation(self, attachment: Attachment) -> dict[str, Any]:
        return {**super().to_representation(attachment), "url": links.signed_url(attachment.pk)}


class ExportDocumentSerializer(serializers.Serializer):
    """The shape of `GET /api/v1/auth/me/export/` (documentation only: the
    document itself is written by `export_document`)."""

    profile = ProfileSerializer()
    preferences = serializers.DictField()
    chats = ExportChatSerializer(many=True)
    feedback = ExportFeedbackSerializer(many=True)
    progress = ProgressSerializer(many=True)
    usage = ExportUsageDaySerializer(many=True, help_text="Per UTC day, oldest first.")
    attachments = ExportAttachmentSerializer(many=True, help_text="Your uploads, oldest first.")


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _items(rows: Iterator[Any], serializer: serializers.Serializer) -> Iterator[str]:
    """A JSON array written one element at a time."""
    yield "["
    for index, row in enumerate(rows):
        yield ("," if index else "") + _dump(serializer.to_representation(row))
    yield "]"


def export_document(user: User) -> Iterator[str]:
    """The user's data, as pieces of one JSON document (see ExportDocumentSerializer)."""
    usage: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    yield '{"profile":' + _dump(ProfileSerializer(user).data)
    yield ',"preferences":' + _dump(user.preferences)
    yield ',"chats":'
    yield from _chats(user, usage)
    yield ',"feedback":'
    feedback = Feedback.objects.filter(user=user).order_by("id").iterator(chunk_size=CHUNK)
    yield from _items(feedback, ExportFeedbackSerializer())
    yield ',"progress":'
    progress = Progress.objects.filter(user=user).select_related("tutor").order_by("tutor_id")
    yield from _items(progress.iterator(chunk_size=CHUNK), ProgressSerializer())
    yield ',"usage":'
    days = ({"date": day, "messages": n, "tokens": t} for day, (n, t) in sorted(usage.items()))
    yield _dump(list(days))
    yield ',"attachments":'
    uploads = Attachment.objects.filter(user=user).order_by("id").iterator(chunk_size=CHUNK)
    yield from _items(uploads, ExportAttachmentSerializer())
    yield "}"


def _chats(user: User, usage: dict[str, list[int]]) -> Iterator[str]:
    """Chats with their messages, from two cursors walked side by side (both
    in chat order), so the cost is two queries whatever the number of chats."""
    chats = (
        Chat.objects.filter(user=user)
        .select_related("tutor__course")
        .order_by("id")
        .iterator(chunk_size=CHUNK)
    )
    messages = with_version_number(Message.objects.filter(chat__user=user))
    messages = messages.order_by("chat_id", "id").iterator(chunk_size=CHUNK)
    groups = groupby(messages, key=attrgetter("chat_id"))
    chat_serializer, message_serializer = ChatSerializer(), ExportMessageSerializer()
    pending = next(groups, None)
    yield "["
    for index, chat in enumerate(chats):
        # Messages of a chat deleted between the two queries are skipped.
        while pending is not None and pending[0] < chat.pk:
            pending = next(groups, None)
        body = _dump(chat_serializer.to_representation(chat))
        yield ("," if index else "") + body[:-1] + ',"messages":'
        has_messages = pending is not None and pending[0] == chat.pk
        own = pending[1] if has_messages else iter(())
        yield from _items(_counting(own, usage), message_serializer)
        yield "}"
        if has_messages:
            pending = next(groups, None)
    yield "]"


def _counting(messages: Iterator[Message], usage: dict[str, list[int]]) -> Iterator[Message]:
    """Passes messages through, adding each reply to its day's usage."""
    for message in messages:
        if message.role == Message.Role.ASSISTANT:
            day = usage[message.created_at.date().isoformat()]
            day[0] += 1
            tokens = message.metadata.get("tokens_used")
            if isinstance(tokens, int) and not isinstance(tokens, bool):
                day[1] += tokens
        yield message
