"""The indexes the message page, the history and the chat list rely on are used."""

import pytest
from django.db import connection

from chats.models import Chat, Message
from chats.selectors import chat_list, message_page
from conftest import requires_postgresql

pytestmark = [pytest.mark.django_db, requires_postgresql]


def plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.fixture
def long_chat(chat, user, tutor):
    """One chat among 500 whose messages interleave, as in a real database."""
    chats = [chat, *Chat.objects.bulk_create(Chat(user=user, tutor=tutor) for _ in range(499))]
    Message.objects.bulk_create(
        (Message(chat=chats[n % len(chats)], role="user", content=f"сообщение {n}") for n in range(30_000)),
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE chats_message")
    return chat


def test_deep_message_page_uses_the_chat_id_index(long_chat):
    before_id = Message.objects.filter(chat=long_chat).order_by("id").values_list("id", flat=True)[30]
    query = Message.objects.filter(chat=long_chat, id__lt=before_id).order_by("-id")[:21]
    text = plan(query)
    assert "message_chat_id_idx" in text
    assert "Seq Scan" not in text
    assert len(message_page(chat=long_chat, limit=20, before_id=before_id).results) == 20


def test_history_window_uses_the_chat_id_index(long_chat):
    last = Message.objects.filter(chat=long_chat).order_by("-id").first()
    query = (
        Message.objects.filter(chat=long_chat, id__lt=last.id)
        .order_by("-id")
        .values_list("role", "content")[:20]
    )
    text = plan(query)
    assert "message_chat_id_idx" in text
    assert "Sort" not in text.split("Limit", 1)[1]  # read in index order, no sort of the chat


def test_chat_list_order_matches_the_activity_index(user, tutor):
    Chat.objects.bulk_create(Chat(user=user, tutor=tutor) for _ in range(50))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    text = plan(chat_list(user=user)[:20])
    assert "chat_user_activity_idx" in text
