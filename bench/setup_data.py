"""Loads the benchmark's data and writes what the driver needs to a JSON file.

Run as `python manage.py shell -c "import bench.setup_data as s; s.main('out.json')"`
against the benchmark database (bench/run.py does it).
"""

import json

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from accounts.models import User
from accounts.tokens import token_pair
from chats.models import Chat, Message
from tutoring.models import Tutor

BIG_CHAT_MESSAGES = 100_000
STUDENTS = 200
PAGE_CHAT_MESSAGES = 50
LIST_CHATS = 50


def _token(user: User) -> str:
    return token_pair(user)["access"]


def _fill_chat(chat: Chat, count: int) -> None:
    """Alternating user/assistant messages, each reply answering the
    message before it, inserted by PostgreSQL itself."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO chats_message (chat_id, role, content, attachments, metadata, created_at)
            SELECT %s,
                   CASE WHEN n %% 2 = 0 THEN 'user' ELSE 'assistant' END,
                   'Сообщение номер ' || n || ': как решать квадратные уравнения?',
                   '[]'::jsonb, '{}'::jsonb, now() - (%s - n) * interval '1 second'
            FROM generate_series(1, %s) AS n
            """,
            [chat.pk, count, count],
        )
        cursor.execute(
            """
            UPDATE chats_message SET reply_to_id = asked.previous
            FROM (SELECT id, lag(id) OVER (ORDER BY id) AS previous
                  FROM chats_message WHERE chat_id = %s) AS asked
            WHERE chats_message.id = asked.id AND chats_message.role = 'assistant'
            """,
            [chat.pk],
        )


def _send_queries(client: Client, chat: Chat) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            f"/api/v1/chats/{chat.pk}/messages/",
            {"content": "Сколько будет 2+2?"},
            content_type="application/json",
        )
    assert response.status_code == 201, response.content
    return len(queries.captured_queries)


def main(out_path: str) -> None:
    tutor = Tutor.objects.filter(is_active=True).order_by("id").first()
    owner = User.objects.create_user(email="bench@example.com", username="bench", password="Bench-Pass-2026!")
    big = Chat.objects.create(user=owner, tutor=tutor, title="100 000 messages")
    _fill_chat(big, BIG_CHAT_MESSAGES)
    empty = Chat.objects.create(user=owner, tutor=tutor, title="empty")
    page = Chat.objects.create(user=owner, tutor=tutor, title="50 messages")
    _fill_chat(page, PAGE_CHAT_MESSAGES)
    Chat.objects.bulk_create(Chat(user=owner, tutor=tutor, title=f"chat {n}") for n in range(LIST_CHATS))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    students = [
        User(email=f"student{n}@bench.example.com", username=f"bench_student{n}", password="!")
        for n in range(STUDENTS)
    ]
    User.objects.bulk_create(students)
    students = list(User.objects.filter(email__endswith="@bench.example.com").order_by("id"))
    student_chats = Chat.objects.bulk_create(Chat(user=s, tutor=tutor) for s in students)

    # Item 3's "same number of queries": count them for a send into each chat.
    with override_settings(AI_CORE_URL="stub", ALLOWED_HOSTS=["testserver"]):
        client = Client(HTTP_AUTHORIZATION=f"Bearer {_token(owner)}")
        _send_queries(client, page)  # the day's first reply also counts the student once: not a steady send
        queries = {"big": _send_queries(client, big), "empty": _send_queries(client, empty)}
    Message.objects.filter(chat=empty).delete()

    first_big_id = Message.objects.filter(chat=big).order_by("id").values_list("id", flat=True).first()
    data = {
        "token": _token(owner),
        "big_chat": big.pk,
        "big_chat_early_before_id": first_big_id + 100,
        "empty_chat": empty.pk,
        "page_chat": page.pk,
        "send_queries": queries,
        "students": [
            {"token": _token(s), "chat": c.pk} for s, c in zip(students, student_chats, strict=True)
        ],
    }
    with open(out_path, "w") as out:
        json.dump(data, out)
