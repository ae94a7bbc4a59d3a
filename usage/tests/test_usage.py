"""Issue 16: usage accounting, the daily rollups, their rebuild, and the quotas."""

import json
from datetime import UTC, date, datetime

import pytest
import responses
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.forms.models import model_to_dict

from chats.models import Chat, Message
from chats.tests.test_streaming import SSE, parse
from conftest import PASSWORD, bearer_client, requires_postgresql, run_in_threads
from usage.models import LATENCY_BUCKETS, DailyStudents, TutorDailyStudent, TutorDailyUsage, UserDailyUsage

pytestmark = pytest.mark.django_db

AI_URL = "http://ai-core.test"
GENERATE = f"{AI_URL}/api/v1/generate"
USAGE = "/api/v1/auth/me/usage/"


@pytest.fixture
def ai_core(settings):
    settings.AI_CORE_URL = AI_URL
    settings.AI_CORE_MAX_RETRIES = 0
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def answering(ai_core, tokens: int | None = 7) -> None:
    body = {"content": "Ответ"} | ({"tokens_used": tokens} if tokens is not None else {})
    ai_core.post(GENERATE, json=body)


def send(client, chat, content="Что такое синус?", **extra):
    return client.post(f"/api/v1/chats/{chat.id}/messages/", {"content": content}, format="json", **extra)


def rollups() -> dict:
    """Every rollup row, comparable (ids left out)."""

    def rows(model, *key):
        return {
            tuple(getattr(row, part) for part in key): {
                name: value for name, value in model_to_dict(row).items() if name not in ("id", *key)
            }
            for row in model.objects.all()
        }

    return {
        "users": rows(UserDailyUsage, "day", "user"),
        "tutors": rows(TutorDailyUsage, "day", "tutor"),
        "students": set(TutorDailyStudent.objects.values_list("day", "tutor", "user")),
        "all_students": set(DailyStudents.objects.values_list("day", "students")),
    }


class TestAccounting:
    def test_a_reply_records_its_tokens_and_latency_and_is_counted(self, auth_client, user, chat, ai_core):
        answering(ai_core, tokens=42)
        answering(ai_core, tokens=None)  # AI-Core need not say

        first = send(auth_client, chat).json()["assistant_message"]
        second = send(auth_client, chat).json()["assistant_message"]

        assert first["tokens_used"] == 42 and second["tokens_used"] is None
        saved = Message.objects.get(pk=first["id"])
        assert (saved.tokens_used, saved.latency_ms) == (42, first["latency_ms"])
        assert isinstance(first["latency_ms"], int)
        today = datetime.now(UTC).date()
        mine = UserDailyUsage.objects.get(user=user, day=today)
        assert (mine.messages, mine.tokens, mine.reserved) == (2, 42, 0)
        tutor_day = TutorDailyUsage.objects.get(tutor=chat.tutor, day=today)
        assert (tutor_day.messages, tutor_day.tokens, tutor_day.failures) == (2, 42, 0)
        assert tutor_day.latency_le_250 == 2  # `responses` answers at once
        assert sum(getattr(tutor_day, bucket) for bucket in LATENCY_BUCKETS) == 2
        assert list(TutorDailyStudent.objects.values_list("tutor", "user")) == [(chat.tutor_id, user.id)]
        assert tutor_day.students == 1
        assert DailyStudents.objects.get(day=today).students == 1

    def test_an_ai_core_failure_is_counted_for_the_tutor_and_costs_the_student_nothing(
        self, auth_client, user, chat, ai_core, settings
    ):
        settings.AI_DAILY_MESSAGES_PER_USER = 1
        ai_core.post(GENERATE, status=503)
        answering(ai_core)

        assert send(auth_client, chat).status_code == 502
        row = UserDailyUsage.objects.get(user=user)
        assert (row.messages, row.reserved) == (0, 0)
        assert TutorDailyUsage.objects.get(tutor=chat.tutor).failures == 1
        # The failed try did not use the day's only reply: the retry gets it.
        retried = auth_client.post(f"/api/v1/chats/{chat.id}/reply/")
        assert retried.status_code == 201
        row.refresh_from_db()
        assert (row.messages, row.reserved) == (1, 0)
        assert send(auth_client, chat).json()["code"] == "quota_exceeded"

    @pytest.mark.django_db(transaction=True)
    def test_a_streamed_send_that_fails_gives_the_reply_back(self, auth_client, user, chat, ai_core):
        ai_core.post(GENERATE, status=500)

        events = parse(b"".join(send(auth_client, chat, **SSE).streaming_content))

        assert events[-1][0] == "error"
        row = UserDailyUsage.objects.get(user=user)
        assert (row.messages, row.reserved) == (0, 0)
        assert TutorDailyUsage.objects.get(tutor=chat.tutor).failures == 1

    def test_a_reply_discarded_by_a_clear_costs_nothing(self, auth_client, user, chat, ai_core):
        def clear_meanwhile(request):
            Message.objects.filter(chat=chat).delete()
            return 200, {}, json.dumps({"content": "Поздно", "tokens_used": 9})

        ai_core.add_callback(responses.POST, GENERATE, callback=clear_meanwhile)

        assert send(auth_client, chat).json()["code"] == "reply_discarded"
        row = UserDailyUsage.objects.get(user=user)
        assert (row.messages, row.tokens, row.reserved) == (0, 0, 0)
        assert not TutorDailyUsage.objects.filter(messages__gt=0).exists()

    def test_a_rating_notes_the_tutors_mean_on_the_day(self, auth_client, chat, ai_core):
        answering(ai_core)
        reply = send(auth_client, chat).json()["assistant_message"]

        body = {"message": reply["id"], "feedback_type": "detailed", "rating": 4}
        assert auth_client.post("/api/v1/feedback/", body, format="json").status_code == 201

        assert str(TutorDailyUsage.objects.get(tutor=chat.tutor).rating) == "4.00"

    @pytest.mark.django_db(transaction=True)
    def test_the_migration_fills_the_columns_and_the_rollups_of_existing_replies(self, make_exchange, chat):
        make_exchange(chat)
        executor = MigrationExecutor(connection)
        executor.migrate([("aicore", None), ("chats", "0004_variants")])
        old_apps = executor.loader.project_state([("chats", "0004_variants")]).apps
        old_apps.get_model("chats", "Message").objects.filter(role="assistant").update(
            metadata={"tokens_used": 12, "latency_ms": 900}
        )
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())

        reply = Message.objects.get(role="assistant")
        assert (reply.tokens_used, reply.latency_ms) == (12, 900)
        tutor_day = TutorDailyUsage.objects.get(tutor=chat.tutor)
        assert (tutor_day.messages, tutor_day.tokens, tutor_day.latency_le_1000) == (1, 12, 1)


def test_erasing_a_student_removes_their_usage_and_keeps_the_tutors_totals(auth_client, user, chat, ai_core):
    answering(ai_core, tokens=11)
    assert send(auth_client, chat).status_code == 201

    assert auth_client.delete("/api/v1/auth/me/", {"password": PASSWORD}, format="json").status_code == 204

    assert not UserDailyUsage.objects.exists() and not TutorDailyStudent.objects.exists()
    tutor_day = TutorDailyUsage.objects.get(tutor=chat.tutor)
    assert (tutor_day.messages, tutor_day.tokens, tutor_day.students) == (1, 11, 1)  # no one in them


class TestRebuild:
    def test_rebuild_equals_what_the_sends_counted(self, user, other_user, chat, make_tutor, ai_core):
        other_tutor = make_tutor(name="Физика")
        chats = [chat, Chat.objects.create(user=user, tutor=other_tutor)]
        chats.append(Chat.objects.create(user=other_user, tutor=other_tutor))
        for index in range(9):
            answering(ai_core, tokens=index)
            client = bearer_client(chats[index % 3].user)
            assert send(client, chats[index % 3]).status_code == 201
        ai_core.post(GENERATE, status=502)
        assert send(bearer_client(user), chat).status_code == 502
        live = rollups()
        today = datetime.now(UTC).date()
        assert live["tutors"][(today, other_tutor)]["messages"] == 6
        assert live["tutors"][(today, other_tutor)]["students"] == 2
        assert live["all_students"] == {(today, 2)}
        # Damage every count the messages can restore.
        UserDailyUsage.objects.update(messages=99, tokens=0)
        TutorDailyUsage.objects.update(messages=0, tokens=5, students=7, latency_le_250=0, latency_ms_sum=1)
        TutorDailyStudent.objects.all().delete()
        DailyStudents.objects.update(students=40)

        call_command("rebuild_usage", "--since", today.isoformat(), "--until", today.isoformat(), verbosity=0)

        assert rollups() == live  # failures kept, the rest recounted

    def test_rebuild_touches_only_its_days(self, chat, make_exchange):
        make_exchange(chat)
        UserDailyUsage.objects.create(user=chat.user, day=date(2026, 1, 1), messages=5)

        call_command("rebuild_usage", "--since", "2026-01-02", "--until", "2026-01-31", verbosity=0)

        assert UserDailyUsage.objects.get(day=date(2026, 1, 1)).messages == 5

    def test_rebuild_refuses_a_backwards_range(self, db):
        with pytest.raises(CommandError, match="--until"):
            call_command("rebuild_usage", "--since", "2026-02-01", "--until", "2026-01-01")


class TestQuotas:
    @pytest.fixture(autouse=True)
    def limit(self, settings):
        settings.AI_DAILY_MESSAGES_PER_USER = 2

    def assert_refused(self, response) -> None:
        assert response.status_code == 429, response.content
        body = response.json()
        assert set(body) == {"detail", "code", "resets_at"}
        assert body["code"] == "quota_exceeded"
        resets = datetime.fromisoformat(body["resets_at"])
        assert resets.tzinfo is not None and (resets.hour, resets.minute, resets.second) == (0, 0, 0)
        assert 0 < int(response["Retry-After"]) <= 86400

    def test_a_send_over_the_limit_is_refused_and_saves_nothing(self, auth_client, user, chat, ai_core):
        answering(ai_core)
        answering(ai_core)
        assert [send(auth_client, chat).status_code for _ in range(2)] == [201, 201]
        calls = len(ai_core.calls)

        refused = send(auth_client, chat, content="Третий вопрос")

        self.assert_refused(refused)
        assert len(ai_core.calls) == calls  # AI-Core was not asked
        assert not Message.objects.filter(content="Третий вопрос").exists()
        assert UserDailyUsage.objects.get(user=user).reserved == 0

    def test_a_streamed_send_is_refused_before_the_stream(self, auth_client, chat, ai_core, settings):
        settings.AI_DAILY_MESSAGES_PER_USER = 1
        answering(ai_core)
        assert send(auth_client, chat).status_code == 201

        refused = send(auth_client, chat, **SSE)

        self.assert_refused(refused)
        assert refused["Content-Type"] == "application/json"
        assert Message.objects.filter(chat=chat).count() == 2

    def test_regenerate_and_reply_count_too(self, auth_client, chat, ai_core):
        answering(ai_core)
        answering(ai_core)
        assert send(auth_client, chat).status_code == 201
        assert auth_client.post(f"/api/v1/chats/{chat.id}/regenerate/").status_code == 201

        self.assert_refused(auth_client.post(f"/api/v1/chats/{chat.id}/regenerate/"))
        Message.objects.create(chat=chat, role="user", content="Без ответа")
        self.assert_refused(auth_client.post(f"/api/v1/chats/{chat.id}/reply/", **SSE))
        assert Message.objects.filter(chat=chat, role="assistant").count() == 2

    def test_the_token_limit(self, auth_client, chat, ai_core, settings):
        settings.AI_DAILY_MESSAGES_PER_USER = 0
        settings.AI_DAILY_TOKENS_PER_USER = 100
        answering(ai_core, tokens=60)
        answering(ai_core, tokens=60)
        assert [send(auth_client, chat).status_code for _ in range(2)] == [
            201,
            201,
        ]  # 60 < 100 before the second

        self.assert_refused(send(auth_client, chat))

    def test_the_staff_override_for_one_student(
        self, auth_client, other_client, user, other_user, chat, ai_core
    ):
        user.daily_messages_limit = 0  # no limit for this one
        user.save()
        other_user.daily_messages_limit = 1
        other_user.save()
        other_chat = Chat.objects.create(user=other_user, tutor=chat.tutor)
        for _ in range(4):
            answering(ai_core)

        assert [send(auth_client, chat).status_code for _ in range(3)] == [201, 201, 201]
        assert [send(other_client, other_chat).status_code for _ in range(2)] == [201, 429]

    def test_the_override_is_set_in_the_admin_by_a_superuser(self, client, admin_user, user, staff_in):
        client.force_login(admin_user)
        form = client.get(f"/admin/accounts/user/{user.pk}/change/").context["adminform"].form
        data = {name: value for name, value in form.initial.items() if value is not None}
        data |= {"groups": [], "user_permissions": [], "daily_messages_limit": "3", "daily_tokens_limit": ""}
        assert client.post(f"/admin/accounts/user/{user.pk}/change/", data).status_code == 302
        user.refresh_from_db()
        assert (user.daily_messages_limit, user.daily_tokens_limit) == (3, None)

        staff_in("Content editors")
        assert client.get(f"/admin/accounts/user/{user.pk}/change/").status_code == 403

    def test_resets_at_is_the_next_utc_midnight(self, user, chat, ai_core, settings):
        settings.AI_DAILY_MESSAGES_PER_USER = 1
        answering(ai_core)
        answering(ai_core)
        with time_machine.travel(datetime(2027, 3, 31, 23, 59, 58, tzinfo=UTC), tick=False):
            auth_client = bearer_client(user)  # a token of that time
            assert send(auth_client, chat).status_code == 201
            refused = send(auth_client, chat)
            assert refused.json()["resets_at"] == "2027-04-01T00:00:00Z"
            assert refused["Retry-After"] == "2"
            usage = auth_client.get(USAGE).json()
            assert (usage["date"], usage["resets_at"]) == ("2027-03-31", "2027-04-01T00:00:00Z")
        with time_machine.travel(datetime(2027, 4, 1, 0, 0, 1, tzinfo=UTC), tick=False):
            assert send(bearer_client(user), chat).status_code == 201
        days = dict(UserDailyUsage.objects.filter(user=user).values_list("day", "messages"))
        assert days == {date(2027, 3, 31): 1, date(2027, 4, 1): 1}

    def test_a_reply_saved_after_midnight_counts_on_its_day(self, user, chat, ai_core):
        with time_machine.travel(datetime(2027, 3, 31, 23, 59, 59, tzinfo=UTC), tick=False) as clock:
            auth_client = bearer_client(user)

            def late_answer(request):
                clock.move_to(datetime(2027, 4, 1, 0, 0, 2, tzinfo=UTC))
                return 200, {}, json.dumps({"content": "Уже завтра", "tokens_used": 5})

            ai_core.add_callback(responses.POST, GENERATE, callback=late_answer)
            assert send(auth_client, chat).status_code == 201

        rows = {row.day: (row.messages, row.tokens, row.reserved) for row in UserDailyUsage.objects.all()}
        assert rows == {date(2027, 3, 31): (0, 0, 0), date(2027, 4, 1): (1, 5, 0)}
        assert TutorDailyUsage.objects.get().day == date(2027, 4, 1)


class TestUsageEndpoint:
    def test_shows_todays_use_and_the_limits(self, auth_client, user, chat, ai_core, settings):
        settings.AI_DAILY_MESSAGES_PER_USER = 50
        answering(ai_core, tokens=30)
        send(auth_client, chat)

        body = auth_client.get(USAGE).json()

        today = datetime.now(UTC).date()
        assert body == {
            "date": today.isoformat(),
            "messages": 1,
            "tokens": 30,
            "messages_limit": 50,
            "tokens_limit": None,
            "resets_at": f"{date.fromordinal(today.toordinal() + 1).isoformat()}T00:00:00Z",
        }

    def test_the_override_and_no_limits(self, auth_client, user):
        body = auth_client.get(USAGE).json()
        assert (body["messages"], body["messages_limit"], body["tokens_limit"]) == (0, None, None)
        user.daily_tokens_limit = 5000
        user.save()
        assert auth_client.get(USAGE).json()["tokens_limit"] == 5000

    def test_needs_a_token(self, api_client):
        assert api_client.get(USAGE).status_code == 401


@requires_postgresql
@pytest.mark.django_db(transaction=True)
class TestUnderConcurrency:
    def test_concurrent_sends_never_pass_the_message_limit(self, user, tutor, settings):
        settings.AI_CORE_URL = "stub"
        settings.AI_DAILY_MESSAGES_PER_USER = 3
        chats = [Chat.objects.create(user=user, tutor=tutor) for _ in range(8)]

        results = run_in_threads(8, lambda index: send(bearer_client(user), chats[index]).status_code)

        assert sorted(results) == [201] * 3 + [429] * 5
        row = UserDailyUsage.objects.get(user=user)
        assert (row.messages, row.reserved) == (3, 0)
        assert Message.objects.filter(role="assistant").count() == 3

    def test_rollups_are_exact_after_concurrent_sends_and_failures(self, user, other_user, tutor, settings):
        settings.AI_CORE_URL = AI_URL
        settings.AI_CORE_MAX_RETRIES = 0
        users = [user, other_user]
        chats = [Chat.objects.create(user=users[index % 2], tutor=tutor) for index in range(10)]

        def answer(request):
            asked = json.loads(request.body)["message"]
            if asked.endswith("fail"):
                return 503, {}, "{}"
            return 200, {}, json.dumps({"content": "Ответ", "tokens_used": 10})

        with responses.RequestsMock() as mock:
            mock.add_callback(responses.POST, GENERATE, callback=answer)
            results = run_in_threads(
                10,
                lambda i: send(
                    bearer_client(chats[i].user), chats[i], content=f"{i} {'fail' if i < 3 else 'ok'}"
                ),
            )

        assert sorted(r.status_code for r in results) == [201] * 7 + [502] * 3
        tutor_day = TutorDailyUsage.objects.get(tutor=tutor)
        assert (tutor_day.messages, tutor_day.tokens, tutor_day.failures) == (7, 70, 3)
        per_user = {row.user_id: (row.messages, row.reserved) for row in UserDailyUsage.objects.all()}
        replies = Message.objects.filter(role="assistant")
        assert per_user == {account.id: (replies.filter(chat__user=account).count(), 0) for account in users}
        assert TutorDailyStudent.objects.count() == 2
        live = rollups()
        today = datetime.now(UTC).date().isoformat()
        call_command("rebuild_usage", "--since", today, "--until", today, verbosity=0)
        assert rollups() == live
