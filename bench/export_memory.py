"""Memory of a student's data export (`GET /api/v1/auth/me/export/`) as the data grows.

    .venv/bin/python bench/export_memory.py          # ~1 minute; needs PostgreSQL

On a fresh PostgreSQL database `tutor_export_bench`, one student gets 1 000,
then 100 000 messages (in 50 chats, with feedback and progress); the export is
written through the real view with Django's test client, and the peak of
memory allocated while it streams (tracemalloc) is reported for both, with
the document's size. Flat memory means the 100 000-message peak is close to
the 1 000-message one although the document is 100 times larger.
"""

import tracemalloc

from in_process import django_on_fresh_database, drop_database

DB_NAME = "tutor_export_bench"


def main() -> None:
    django_on_fresh_database(DB_NAME)
    from rest_framework.test import APIClient

    from accounts.models import User
    from accounts.tokens import token_pair
    from chats.models import Chat, Message
    from feedback.models import Feedback
    from progress.models import Progress
    from tutoring.models import Course, Tutor
    from tutoring.services import TutorContent, tutor_create

    course = Course.objects.create(name="Математика", slug="math", is_active=True)
    tutor = tutor_create(
        tutor=Tutor(course=course, name="Анна", is_active=True),
        content=TutorContent("Ты — репетитор.", "math-v1", "kb"),
    )
    student = User.objects.create_user(email="bench@example.com", username="bench", password="x")
    Progress.objects.create(user=student, tutor=tutor, total_minutes=100)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair(student)['access']}")
    text = "Объясни, пожалуйста, как решать квадратные уравнения через дискриминант. " * 3

    def grow_to(total: int) -> None:
        chats = list(Chat.objects.filter(user=student)) or [
            Chat.objects.create(user=student, tutor=tutor, title=f"Чат {n}") for n in range(50)
        ]
        have = Message.objects.filter(chat__user=student).count()
        batch = []
        for n in range(have, total):
            role = "user" if n % 2 == 0 else "assistant"
            batch.append(Message(chat=chats[n % 50], role=role, content=text, metadata={"tokens_used": 40}))
            if len(batch) == 5000:
                Message.objects.bulk_create(batch)
                batch = []
        Message.objects.bulk_create(batch)
        replies = Message.objects.filter(chat__user=student, role="assistant", feedback__isnull=True)[:200]
        Feedback.objects.bulk_create(
            Feedback(
                user=student,
                message=r,
                chat_id=r.chat_id,
                tutor=tutor,
                feedback_type="quick",
                quick_reaction="understood",
                reply_content=r.content,
            )
            for r in replies
        )

    def measure() -> tuple[int, int]:
        response = client.get("/api/v1/auth/me/export/")
        assert response.status_code == 200
        tracemalloc.start()
        size = sum(len(piece) for piece in response.streaming_content)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return size, peak

    rows = []
    for total in (1_000, 100_000):
        grow_to(total)
        size, peak = measure()
        rows.append((total, size, peak))
    print("| messages | document | peak memory while streaming |")
    print("|---|---|---|")
    for total, size, peak in rows:
        print(f"| {total:,} | {size / 2**20:.1f} MiB | {peak / 2**20:.1f} MiB |")
    (small, _, small_peak), (large, _, large_peak) = rows
    print(f"\n{large // small}x the messages: peak x{large_peak / small_peak:.2f}.")
    drop_database(DB_NAME)


if __name__ == "__main__":
    main()
