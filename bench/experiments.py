"""An experiment's statistics with a million replies, against the admin index page.

    .venv/bin/python bench/experiments.py          # a few minutes; needs PostgreSQL

On a fresh PostgreSQL database `tutor_experiments_bench`: one tutor with a
running two-arm experiment, 2 000 students, 1 000 000 replies in the arms
(5 % regenerated, 1 % withheld, a struggle level on each), 100 000 feedback
items on them and 10 000 AI-Core failures, inserted by PostgreSQL itself,
with the per-student rollup the statistics read (usage.ArmStudentUsage)
counted from them.
The experiment's admin page, the ML API's `/ml/experiments/{id}/` and the
guardrail (`guard`) are timed after a warm-up, and their medians compared
with the admin index page's in the same run, as bench/dashboard.py does for
the usage dashboard. Queries per request are counted too.
"""

import statistics
import time

from in_process import django_on_fresh_database, drop_database

DB_NAME = "tutor_experiments_bench"
REPLIES = 1_000_000
FEEDBACK_EVERY = 10
FAILURE_EVERY = 100
STUDENTS = 2_000
SAMPLES = 15


def _rollup_sql() -> str:
    """usage.ArmStudentUsage from the loaded messages and feedback (one
    failure per FAILURE_EVERY replies)."""
    from usage.models import LATENCY_BOUNDS_MS, latency_bucket

    low, buckets = 0, []
    for high in LATENCY_BOUNDS_MS:
        buckets.append((latency_bucket(high), f"m.latency_ms > {low} AND m.latency_ms <= {high}"))
        low = high
    buckets.append((latency_bucket(low + 1), f"m.latency_ms > {low}"))
    counted = {
        "replies": "true",
        "regenerated": "NOT m.is_current",
        "withheld": "m.moderation = 'withheld'",
        **{f"struggle_{level}": f"m.metadata->'learner'->'struggle'->>'level' = '{level}'"
           for level in ("none", "some", "high")},
        **dict(buckets),
        "detailed_count": "f.feedback_type = 'detailed'",
        **{f"reaction_{r}": f"f.quick_reaction = '{r}'"
           for r in ("understood", "too_hard", "need_more_examples", "too_easy", "incorrect")},
    }  # fmt: skip
    columns = ", ".join(counted)
    sums = ", ".join(f"COUNT(*) FILTER (WHERE {condition})" for condition in counted.values())
    return f"""
        INSERT INTO usage_armstudentusage (arm_id, user_id, {columns}, rating_sum, rating_squares, failures)
        SELECT m.experiment_arm_id, c.user_id, {sums},
               COALESCE(SUM(f.rating), 0), COALESCE(SUM(f.rating * f.rating), 0), COUNT(*) / %s
        FROM chats_message m JOIN chats_chat c ON c.id = m.chat_id
        LEFT JOIN feedback_feedback f ON f.message_id = m.id
        GROUP BY m.experiment_arm_id, c.user_id
    """  # noqa: S608 (only column names and fixed conditions)


def main() -> None:
    django_on_fresh_database(DB_NAME)
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    from accounts.models import User
    from tutoring.experiments import experiment_start, guard
    from tutoring.models import Course, Experiment, ExperimentArm, Tutor
    from tutoring.services import TutorContent, tutor_create, tutor_version_save

    course = Course.objects.create(name="Математика", slug="math", is_active=True)
    tutor = tutor_create(
        tutor=Tutor(course=course, name="Анна", is_active=True), content=TutorContent("Ты — репетитор.", "m1")
    )
    v1 = tutor.current_version
    v2 = tutor_version_save(tutor=tutor, content=TutorContent("Ты — репетитор. Задавай вопросы.", "m1"))
    experiment = Experiment.objects.create(tutor=tutor, name="Наводящие вопросы")
    for position, version in enumerate((v1, v2)):
        ExperimentArm.objects.create(experiment=experiment, position=position, version=version, weight=50)
    experiment_start(experiment=experiment, by=None)
    User.objects.bulk_create(
        User(email=f"s{n}@bench.example.com", username=f"s{n}", password="!") for n in range(STUDENTS)
    )
    admin = User.objects.create_superuser(email="admin@bench.example.com", username="admin", password="x")
    arms = list(experiment.arms.order_by("position").values_list("id", "version_id"))
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO chats_chat (user_id, tutor_id, title, created_at) "
            "SELECT id, %s, '', now() FROM accounts_user WHERE email LIKE '%%@bench.example.com'",
            [tutor.pk],
        )
        cursor.execute("SELECT array_agg(id ORDER BY id) FROM chats_chat")
        chats = cursor.fetchone()[0]
        cursor.execute(
            """
            INSERT INTO chats_message (chat_id, role, content, attachments, metadata, reply_to_id, is_current,
                                       reply_error, tokens_used, latency_ms, moderation, intent, created_at,
                                       experiment_arm_id, tutor_version_id)
            SELECT (%(chats)s::bigint[])[1 + n %% %(n_chats)s], 'assistant', 'Ответ номер ' || n, '[]'::jsonb,
                   jsonb_build_object('learner', jsonb_build_object('struggle', jsonb_build_object(
                       'level', (ARRAY['none', 'none', 'some', 'high'])[1 + n %% 4]))),
                   NULL, n %% 20 <> 0, '', 50, 300 + (n::bigint * 7919) %% 9000,
                   CASE WHEN n %% 100 = 7 THEN 'withheld' ELSE '' END, '',
                   now() - (n %% 86400) * interval '1 second',
                   CASE WHEN (n / %(n_chats)s) %% 2 = 0 THEN %(arm_a)s ELSE %(arm_b)s END,
                   CASE WHEN (n / %(n_chats)s) %% 2 = 0 THEN %(version_a)s ELSE %(version_b)s END
            FROM generate_series(0, %(replies)s - 1) AS n
            """,
            {"chats": chats, "n_chats": len(chats), "replies": REPLIES,
             "arm_a": arms[0][0], "arm_b": arms[1][0], "version_a": arms[0][1], "version_b": arms[1][1]},
        )  # fmt: skip
        cursor.execute(
            """
            INSERT INTO feedback_feedback (user_id, chat_id, message_id, tutor_id, tutor_version_id,
                experiment_arm_id, feedback_type, rating, positive_text, improvement_text, quick_reaction,
                allow_training, processed, reply_content, reply_metadata, prompt_content, prompt_attachments,
                history, created_at, updated_at)
            SELECT c.user_id, m.chat_id, m.id, c.tutor_id, m.tutor_version_id, m.experiment_arm_id,
                   CASE WHEN m.id %% 2 = 0 THEN 'detailed' ELSE 'quick' END,
                   CASE WHEN m.id %% 2 = 0 THEN 1 + m.id %% 5 END, '', '',
                   CASE WHEN m.id %% 2 = 1 THEN (ARRAY['understood', 'too_hard', 'incorrect'])[1 + m.id %% 3]
                        ELSE '' END,
                   false, false, m.content, '{}'::jsonb, '', '[]'::jsonb, '[]'::jsonb, now(), now()
            FROM chats_message m JOIN chats_chat c ON c.id = m.chat_id
            WHERE m.id %% %s = 0
            """,
            [FEEDBACK_EVERY],
        )
        # The rollup as the send flow and feedback would have kept it: counted from the rows above.
        cursor.execute(_rollup_sql(), [FAILURE_EVERY])
        cursor.execute("ANALYZE")
    loaded = time.monotonic() - started

    client = Client()
    client.force_login(admin)
    api = APIClient()
    api.force_authenticate(admin)

    def timed(name: str, request) -> tuple[float, int]:
        for _ in range(3):
            request()
        times = []
        for _ in range(SAMPLES):
            begin = time.perf_counter()
            request()
            times.append(time.perf_counter() - begin)
        with CaptureQueriesContext(connection) as queries:
            request()
        for query in queries.captured_queries:
            print(f"  {name}: {float(query['time']) * 1000:7.1f} ms  {query['sql'][:90]}")
        return statistics.median(times), len(queries.captured_queries)

    def page(path: str):
        def get() -> None:
            assert client.get(path).status_code == 200

        return get

    def api_detail() -> None:
        assert api.get(f"/api/v1/ml/experiments/{experiment.pk}/").status_code == 200

    index, index_queries = timed("admin index", page("/admin/"))
    admin_page, admin_queries = timed(
        "experiment page", page(f"/admin/tutoring/experiment/{experiment.pk}/change/")
    )
    detail, detail_queries = timed("ML API", api_detail)
    experiment.refresh_from_db()  # running
    guarded, guard_queries = timed("guardrail", lambda: guard(experiment))
    loaded_rows = f"{REPLIES:,} replies, {REPLIES // FEEDBACK_EVERY:,} feedback items"
    loaded_rows += f", {REPLIES // FAILURE_EVERY:,} failures and the rollup"
    print(f"\n{loaded_rows} loaded in {loaded:.0f} s ({STUDENTS} students)\n")
    print("| request | median | queries | vs admin index |")
    print("|---|---|---|---|")
    print(f"| admin index | {index * 1000:.1f} ms | {index_queries} | 1.00 |")
    for name, took, queries in (
        ("experiment page (admin)", admin_page, admin_queries),
        ("`/ml/experiments/{id}/`", detail, detail_queries),
        ("guardrail (`guard`)", guarded, guard_queries),
    ):
        print(f"| {name} | {took * 1000:.1f} ms | {queries} | {took / index:.2f} |")
    drop_database(DB_NAME)


if __name__ == "__main__":
    main()
