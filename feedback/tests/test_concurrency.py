"""Real threads on PostgreSQL: ratings and ML marks stay exact under parallel requests."""

from decimal import ROUND_HALF_UP, Decimal

import pytest

from chats.models import Chat, Message
from conftest import bearer_client, feedback_on, requires_postgresql, run_in_threads
from feedback.models import Feedback

pytestmark = [pytest.mark.django_db(transaction=True), requires_postgresql]

THREADS = 24


def test_simultaneous_ratings_leave_the_exact_mean_and_count(make_user, tutor):
    students = [make_user() for _ in range(THREADS)]
    replies = []
    for student in students:
        chat = Chat.objects.create(user=student, tutor=tutor)
        asked = Message.objects.create(chat=chat, role="user", content="?")
        replies.append(Message.objects.create(chat=chat, role="assistant", content="!", reply_to=asked))
    ratings = [1 + (i * 7) % 5 for i in range(THREADS)]
    clients = [bearer_client(s) for s in students]

    def rate(i: int) -> int:
        body = {"message": replies[i].id, "feedback_type": "detailed", "rating": ratings[i]}
        return clients[i].post("/api/v1/feedback/", body, format="json").status_code

    assert run_in_threads(THREADS, rate) == [201] * THREADS
    tutor.refresh_from_db()
    expected = (Decimal(sum(ratings)) / THREADS).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert tutor.total_feedbacks == THREADS
    assert tutor.rating == expected


def test_simultaneous_updates_of_one_feedback_keep_one_row(user, chat):
    asked = Message.objects.create(chat=chat, role="user", content="?")
    reply = Message.objects.create(chat=chat, role="assistant", content="!", reply_to=asked)
    client = bearer_client(user)

    def rate(i: int) -> int:
        body = {"message": reply.id, "feedback_type": "detailed", "rating": 1 + i % 5}
        return client.post("/api/v1/feedback/", body, format="json").status_code

    statuses = run_in_threads(12, rate)
    assert sorted(statuses) == [200] * 11 + [201]
    feedback = Feedback.objects.get()
    chat.tutor.refresh_from_db()
    assert (chat.tutor.total_feedbacks, chat.tutor.rating) == (1, Decimal(feedback.rating))


def test_overlapping_mark_processed_batches_both_succeed(user, chat, ml_user):
    items = [feedback_on(Message.objects.create(chat=chat, role="assistant", content="!")) for _ in range(40)]
    ids = [f.id for f in items]
    batches = [ids[:30], list(reversed(ids[10:]))]
    client = bearer_client(ml_user)

    def mark(i: int):
        response = client.post("/api/v1/ml/feedback/mark-processed/", {"ids": batches[i]}, format="json")
        return response.status_code, response.json()["updated"]

    results = run_in_threads(2, mark)
    assert [status for status, _ in results] == [200, 200]
    assert sum(updated for _, updated in results) == 40
    assert Feedback.objects.filter(processed=True).count() == 40
