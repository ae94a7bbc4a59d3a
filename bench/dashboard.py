"""The staff's usage dashboard with a million messages, against the admin index page.

    .venv/bin/python bench/dashboard.py          # ~2 minutes; needs PostgreSQL

On a fresh PostgreSQL database `tutor_dashboard_bench`: 20 tutors, 2 000
students and 1 000 000 messages (500 000 replies) spread over the last 60
days, inserted by PostgreSQL itself; the rollups are then built with
`rebuild_usage` (timed). Both pages are requested through Django's test
client as a logged-in superuser, after a warm-up, and the medians compared in
the same run: the dashboard reads only the rollups, so its time should not
depend on the messages (target: at most 2x the index page). Queries per
request are counted too.
"""

import statistics
import time

from in_process import django_on_fresh_database, drop_database

DB_NAME = "tutor_dashboard_bench"
MESSAGES = 1_000_000
TUTORS = 20
STUDENTS = 2_000
DAYS = 60
SAMPLES = 60


def main() -> None:
    django_on_fresh_database(DB_NAME)
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User
    from tutoring.models import Course, Tutor
    from tutoring.services import TutorContent, tutor_create
    from usage.models import TutorDailyUsage
    from usage.services import today

    course = Course.objects.create(name="Математика", slug="math", is_active=True)
    for n in range(TUTORS):
        content = TutorContent("Ты — репетитор.", "math-v1", "kb")
        tutor_create(tutor=Tutor(course=course, name=f"Репетитор {n}", is_active=True), content=content)
    User.objects.bulk_create(
        User(email=f"s{n}@bench.example.com", username=f"s{n}", password="!") for n in range(STUDENTS)
    )
    admin = User.objects.create_superuser(email="admin@bench.example.com", username="admin", password="x")
    started = time.monotonic()
    with connection.cursor() as cursor:
        # One chat per (student, tutor) pair used; pairs of user message and reply.
        cursor.execute(
            """
            INSERT INTO chats_chat (user_id, tutor_id, title, created_at)
            SELECT u.id, t.id, '', now() FROM accounts_user u
            JOIN tutoring_tutor t ON (t.id + u.id) %% 4 = 0
            WHERE u.email LIKE '%%@bench.example.com'
            """,
            [],
        )
        cursor.execute("SELECT array_agg(id) FROM chats_chat")
        chats = cursor.fetchone()[0]
        cursor.execute(
            """
            INSERT INTO chats_message (chat_id, role, content, attachments, metadata, reply_to_id,
                                       is_current, reply_error, tokens_used, latency_ms, created_at)
            SELECT (%s::bigint[])[1 + (n / 2) %% %s],
                   CASE WHEN n %% 2 = 0 THEN 'user' ELSE 'assistant' END,
                   'Сообщение номер ' || n, '[]'::jsonb, '{}'::jsonb, NULL, true, '',
                   CASE WHEN n %% 2 = 1 THEN 20 + n %% 400 END,
                   CASE WHEN n %% 2 = 1 THEN 300 + (n::bigint * 7919) %% 9000 END,
                   now() - ((n %% %s) * interval '1 day') - ((n %% 86400) * interval '1 second')
            FROM generate_series(0, %s - 1) AS n
            """,
            [chats, len(chats), DAYS, MESSAGES],
        )
        cursor.execute("ANALYZE")
    loaded = time.monotonic() - started
    first = today().fromordinal(today().toordinal() - DAYS - 1)
    started = time.monotonic()
    call_command("rebuild_usage", "--since", first.isoformat(), verbosity=0)
    rebuilt = time.monotonic() - started

    client = Client()
    client.force_login(admin)

    def timed(path: str) -> tuple[float, int]:
        for _ in range(10):
            assert client.get(path).status_code == 200
        times = []
        for _ in range(SAMPLES):
            begin = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - begin)
            assert response.status_code == 200
        with CaptureQueriesContext(connection) as queries:
            client.get(path)
        for query in queries.captured_queries:
            print(f"  {path}: {float(query['time']) * 1000:5.1f} ms  {query['sql'][:90]}")
        return statistics.median(times), len(queries.captured_queries)

    index, index_queries = timed("/admin/")
    board, board_queries = timed("/admin/usage/usagedashboard/")
    one, one_queries = timed("/admin/usage/usagedashboard/?tutor=1")
    rows = TutorDailyUsage.objects.count()
    print(
        f"{MESSAGES:,} messages loaded in {loaded:.0f} s; rebuild_usage over {DAYS + 2} days: {rebuilt:.1f} s"
    )
    print(f"({rows} tutor-day rows, {STUDENTS} students)\n")
    print("| page | median | queries | vs admin index (target ≤ 2) |")
    print("|---|---|---|---|")
    print(f"| admin index | {index * 1000:.1f} ms | {index_queries} | 1.00 |")
    print(f"| usage dashboard, all tutors | {board * 1000:.1f} ms | {board_queries} | {board / index:.2f} |")
    print(f"| usage dashboard, one tutor | {one * 1000:.1f} ms | {one_queries} | {one / index:.2f} |")
    drop_database(DB_NAME)


if __name__ == "__main__":
    main()
