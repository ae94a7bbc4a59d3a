"""Issue 17: MessageSerializer and ChatSerializer read their fields straight
off the row; their JSON must stay what DRF's generic path gives for the
declared fields."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework import serializers

from attachments.serializers import AttachmentSerializer
from chats import selectors
from chats.models import Chat, Message
from chats.serializers import ChatSerializer, MessageSerializer
from tutoring.models import Tutor


def generic(message: Message) -> dict:
    return serializers.ModelSerializer.to_representation(MessageSerializer(), message)


@pytest.mark.django_db
def test_every_kind_of_message_serializes_as_the_declared_fields_do(chat, make_exchange, make_attachment):
    asked, replied = make_exchange(chat, "Что такое производная?", "Скорость изменения функции.")
    Message.objects.filter(pk=replied.pk).update(
        metadata={"tokens_used": 12, "processing_time": 0.5, "model_id": "secret", "latency_ms": True},
        tokens_used=12,
        latency_ms=840,
    )
    Message.objects.create(chat=chat, role="assistant", content="Вариант 2", reply_to=asked, is_current=False)
    Message.objects.create(
        chat=chat,
        role="user",
        content="С вложением",
        attachments=[AttachmentSerializer(make_attachment(chat.user)).data],
        reply_error="ai_core_timeout",
    )
    Message.objects.create(chat=chat, role="user", content="Только что", attachments=[])
    stale = Message.objects.create(chat=chat, role="user", content="Давно")
    Message.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(days=1))

    messages = list(selectors.with_version_number(Message.objects.filter(chat=chat)).order_by("id"))
    selectors.annotate_messages(messages, chat_id=chat.pk)
    fresh = Message.objects.get(content="Только что")  # not annotated, no version joined
    for message in [*messages, fresh]:
        assert MessageSerializer(message).data == generic(message)
        assert list(MessageSerializer(message).data) == MessageSerializer.Meta.fields
    shown = {m.content: MessageSerializer(m).data for m in messages}
    assert shown["Скорость изменения функции."]["metadata"] == {"tokens_used": 12, "processing_time": 0.5}
    assert shown["Скорость изменения функции."]["tutor_version"] == chat.tutor.current_version.number
    assert shown["Скорость изменения функции."]["variant"] == {"index": 1, "count": 2}
    assert shown["С вложением"]["attachments"][0]["name"] == "задача.png"
    assert shown["С вложением"]["reply_status"] == "failed"
    assert shown["С вложением"]["reply_error"] == "ai_core_timeout"
    assert shown["Давно"]["reply_error"] == "reply_interrupted"
    assert shown["Только что"]["reply_status"] == "pending"
    assert MessageSerializer(messages, many=True).data == [generic(m) for m in messages]


@pytest.mark.django_db
def test_chats_serialize_as_the_declared_fields_do(user, tutor):
    """ChatSerializer's direct path against DRF's: a chat that never had a
    message, one that had, and one whose tutor was deactivated."""
    fresh = Chat.objects.create(user=user, tutor=tutor, title="Новый чат")
    active = Chat.objects.create(user=user, tutor=tutor, title="Что такое интеграл?")
    Chat.objects.filter(pk=active.pk).update(last_message_at=timezone.now())
    Tutor.objects.filter(pk=tutor.pk).update(is_active=False)
    for chat in [*selectors.chat_list(user=user), fresh]:  # the list's narrowed columns, and a whole row
        data = ChatSerializer(chat).data
        assert data == serializers.ModelSerializer.to_representation(ChatSerializer(), chat)
        assert list(data) == ChatSerializer.Meta.fields
    shown = {c["id"]: c for c in ChatSerializer(selectors.chat_list(user=user), many=True).data}
    assert shown[fresh.pk]["last_message_at"] is None
    assert shown[active.pk]["last_message_at"] is not None
    assert shown[active.pk]["title"] == "Что такое интеграл?"
    assert shown[active.pk]["tutor"] == {"id": tutor.pk, "name": tutor.name, "is_available": False}


@pytest.mark.django_db
def test_datetimes_are_in_the_current_time_zone_as_drf_gives_them(chat, make_exchange):
    """The direct paths look the time zone up once per serializer: under
    another active zone (the staff's, tutor_platform.middleware) the JSON
    still matches DRF's field by field."""
    make_exchange(chat, "Который час?", "Полдень.")
    Chat.objects.filter(pk=chat.pk).update(last_message_at=timezone.now())
    messages = list(selectors.with_version_number(Message.objects.filter(chat=chat)).order_by("id"))
    selectors.annotate_messages(messages, chat_id=chat.pk)
    chats = list(selectors.chat_list(user=chat.user))
    with timezone.override("Asia/Vladivostok"):
        shown = MessageSerializer(messages, many=True).data
        assert shown == [generic(m) for m in messages]
        assert shown[0]["created_at"].endswith("+10:00")
        listed = ChatSerializer(chats, many=True).data
        assert listed == [serializers.ModelSerializer.to_representation(ChatSerializer(), c) for c in chats]
        assert listed[0]["last_message_at"].endswith("+10:00")
    assert MessageSerializer(messages, many=True).data[0]["created_at"].endswith("Z")
