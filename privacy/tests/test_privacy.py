"""Issue 15, for students: standing consent, export, erasure, revoking consent."""

import gc
import json
import tracemalloc
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import User
from accounts.roles import CONTENT_EDITORS
from chats.models import Chat, Message
from conftest import PASSWORD, bearer_client, feedback_on, requires_postgresql, run_in_threads
from feedback.models import ConsentRevocation, Feedback
from feedback.services import tutor_rating_recompute
from progress.models import Progress
from tutor_platform.pseudonyms import student_key

ME = "/api/v1/auth/me/"
EXPORT = "/api/v1/auth/me/export/"
REVOKE = "/api/v1/feedback/revoke-consent/"
REVOCATIONS = "/api/v1/ml/consent-revocations/"
LOGIN = "/api/v1/auth/login/"

pytestmark = pytest.mark.django_db


def export_of(client: APIClient) -> dict:
    response = client.get(EXPORT)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    return json.loads(b"".join(response.streaming_content))


def erase(client: APIClient, password: str = PASSWORD):
    return client.delete(ME, {"password": password}, format="json")


@pytest.fixture
def rated(user, chat, make_exchange):
    """Two replies of the user's chat, rated: one allowed for training (and
    processed by the ML team), one not."""
    _, kept = make_exchange(chat, question="Что такое интеграл?", answer="Площадь под графиком")
    _, private = make_exchange(chat, question="Мне 12 лет, помоги", answer="Конечно")
    consented = feedback_on(kept, feedback_type="detailed", rating=5, allow_training=True, processed=True)
    unconsented = feedback_on(private, feedback_type="detailed", rating=1, processed=True)
    tutor_rating_recompute(tutor_id=chat.tutor_id)
    return consented, unconsented


class TestStandingConsent:
    def test_defaults_to_false_and_is_set_with_patch(self, auth_client, user):
        assert auth_client.get(ME).json()["allow_training"] is False
        response = auth_client.patch(ME, {"allow_training": True}, format="json")
        assert (response.status_code, response.json()["allow_training"]) == (200, True)
        user.refresh_from_db()
        assert user.allow_training is True

    def test_a_non_boolean_is_400(self, auth_client, user):
        assert auth_client.patch(ME, {"allow_training": "yes please"}, format="json").status_code == 400
        user.refresh_from_db()
        assert user.allow_training is False


class TestExport:
    def test_a_browser_app_on_another_origin_can_read_the_file_name(self, auth_client, settings):
        """Issue 26, item 15: CORS exposes Content-Disposition."""
        settings.CORS_ALLOWED_ORIGINS = ["http://localhost:5173"]
        response = auth_client.get("/api/v1/auth/me/export/", HTTP_ORIGIN="http://localhost:5173")
        assert response["Access-Control-Allow-Origin"] == "http://localhost:5173"
        exposed = {name.strip().lower() for name in response["Access-Control-Expose-Headers"].split(",")}
        assert {"content-disposition", "x-request-id", "retry-after"} <= exposed
        assert response["Content-Disposition"].startswith('attachment; filename="tutor-platform-export-')

    def test_everything_of_the_user_and_nothing_else(
        self, auth_client, user, chat, other_chat, tutor, make_exchange, rated
    ):
        User.objects.filter(pk=user.pk).update(preferences={"theme": "тёмная"})
        empty = Chat.objects.create(user=user, tutor=tutor, title="Пустой")
        make_exchange(other_chat, question="Чужой вопрос", answer="Чужой ответ")
        Progress.objects.create(user=user, tutor=tutor, total_minutes=42)

        document = export_of(auth_client)

        assert set(document) == {
            "profile",
            "preferences",
            "chats",
            "feedback",
            "progress",
            "usage",
            "attachments",
        }
        assert document["profile"]["email"] == user.email
        assert document["preferences"] == {"theme": "тёмная"}
        assert [c["id"] for c in document["chats"]] == [chat.id, empty.id]
        contents = [m["content"] for m in document["chats"][0]["messages"]]
        assert contents == ["Что такое интеграл?", "Площадь под графиком", "Мне 12 лет, помоги", "Конечно"]
        assert document["chats"][1]["messages"] == []
        assert document["chats"][0]["tutor"] == {"id": tutor.id, "name": tutor.name, "is_available": True}
        assert {f["id"] for f in document["feedback"]} == {f.id for f in rated}
        assert document["feedback"][0]["reply"] == "Площадь под графиком"
        assert document["progress"] == [
            {"tutor": {"id": tutor.id, "name": tutor.name}, "total_minutes": 42,
             "updated_at": document["progress"][0]["updated_at"]}
        ]  # fmt: skip
        (day,) = document["usage"]
        assert (day["messages"], day["tokens"]) == (2, 24)  # make_exchange's replies use 12 tokens each

        raw = json.dumps(document, ensure_ascii=False)
        assert "Чужой" not in raw
        assert tutor.system_prompt not in raw
        assert "model_id" not in raw  # reply metadata goes through the students' allow-list

    def test_query_count_does_not_grow_with_chats(
        self, auth_client, user, tutor, make_exchange, django_assert_max_num_queries
    ):
        for _ in range(30):
            make_exchange(Chat.objects.create(user=user, tutor=tutor))
        with CaptureQueriesContext(connection) as queries:
            export_of(auth_client)
        # Token user; then profile, chats, messages, feedback, progress: one
        # query each (a server-side cursor on PostgreSQL may add fetches).
        selects = [q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
        assert len(selects) <= 6

    def test_memory_does_not_grow_with_the_number_of_messages(self, auth_client, user, tutor):
        def peak_while_exporting(messages: int) -> int:
            Chat.objects.filter(user=user).delete()
            chat = Chat.objects.create(user=user, tutor=tutor)
            Message.objects.bulk_create(
                Message(chat=chat, role="user", content="Сообщение для экспорта " * 20)
                for _ in range(messages)
            )
            response = auth_client.get(EXPORT)
            gc.collect()  # garbage of earlier tests must not be collected (or not) inside the window
            tracemalloc.start()
            size = sum(len(piece) for piece in response.streaming_content)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert size > messages * 400  # the document really holds every message
            return peak

        # Beyond one chunk of rows (500), six times the messages (about 5 MB
        # more of document) must not raise the peak: rows are not collected.
        # Kept rows would make it several times higher; the margin is for the
        # allocator and for other threads of the test process.
        small, large = peak_while_exporting(1500), peak_while_exporting(9000)
        assert large < small * 1.5, (small, large)

    def test_needs_a_token(self, api_client):
        assert api_client.get(EXPORT).status_code == 401


class TestErasure:
    def test_wrong_password_is_400_and_erases_nothing(self, auth_client, user, rated):
        response = erase(auth_client, "not-my-password")
        assert response.status_code == 400
        assert "password" in response.json()
        assert User.objects.filter(pk=user.pk).exists()
        assert Feedback.objects.filter(user=user).count() == 2

    def test_erases_the_account_and_keeps_consented_feedback_unlinked(
        self, api_client, user, chat, tutor, rated
    ):
        consented, unconsented = rated
        Progress.objects.create(user=user, tutor=tutor, total_minutes=5)
        tokens = api_client.post(LOGIN, {"email": user.email, "password": PASSWORD}, format="json").json()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")

        assert erase(client).status_code == 204

        assert not User.objects.filter(pk=user.pk).exists()
        assert not Chat.objects.filter(pk=chat.pk).exists()
        assert not Message.objects.filter(chat_id=chat.pk).exists()
        assert not Progress.objects.exists()
        kept = Feedback.objects.get()
        assert kept.pk == consented.pk
        assert (kept.user_id, kept.chat_id, kept.message_id) == (None, None, None)
        assert kept.reply_content == "Площадь под графиком"
        tutor.refresh_from_db()
        assert (tutor.rating, tutor.total_feedbacks) == (Decimal("5.00"), 1)
        # The deleted processed item goes on the ML team's purge list; the kept
        # one (no history to drop) is unchanged and still theirs to use.
        logged = set(ConsentRevocation.objects.values_list("feedback_id", "reason"))
        assert logged == {(unconsented.pk, "erased")}
        assert (kept.allow_training, kept.processed) == (True, True)

        assert client.get(ME).status_code == 401
        refreshed = api_client.post("/api/v1/auth/refresh/", {"refresh": tokens["refresh"]}, format="json")
        assert refreshed.status_code == 401
        login = api_client.post(LOGIN, {"email": user.email, "password": PASSWORD}, format="json")
        assert login.status_code == 401
        again = api_client.post(
            "/api/v1/auth/register/",
            {"email": user.email, "username": user.username, "password": PASSWORD},
            format="json",
        )
        assert again.status_code == 201

    def test_kept_feedback_keeps_only_the_rated_exchange_and_the_admin_log_forgets_the_user(
        self, user, chat, make_exchange, ml_user
    ):
        """Issue 24, item 10: a name and a phone number from messages the student
        never rated stayed in the kept feedback's history; the admin log kept the email."""
        from django.contrib.admin.models import CHANGE, LogEntry
        from django.contrib.contenttypes.models import ContentType

        make_exchange(
            chat, question="Меня зовут Аня Смирнова, телефон +7 900 123-45-67", answer="Привет, Аня!"
        )
        _, rated_reply = make_exchange(chat, question="Что такое дробь?", answer="Часть целого")
        client = bearer_client(user)
        submitted = client.post(
            "/api/v1/feedback/",
            {"message": rated_reply.pk, "feedback_type": "detailed", "rating": 5, "allow_training": True},
            format="json",
        )
        assert submitted.status_code == 201
        item = Feedback.objects.get()
        assert "+7 900 123-45-67" in json.dumps(item.history, ensure_ascii=False)
        ml = bearer_client(ml_user)
        assert (
            ml.post("/api/v1/ml/feedback/mark-processed/", {"ids": [item.pk]}, format="json").status_code
            == 200
        )
        Chat.objects.filter(pk=chat.pk).update(title="Аня Смирнова, +7 900 123-45-67")
        for model, pk, name in (
            (User, user.pk, user.email),
            (Chat, chat.pk, "Аня Смирнова, +7 900 123-45-67"),
        ):
            LogEntry.objects.create(
                user=ml_user, content_type=ContentType.objects.get_for_model(model), object_id=str(pk),
                object_repr=name, action_flag=CHANGE, change_message='[{"changed": {"fields": ["Title"]}}]',
            )  # fmt: skip

        assert erase(client).status_code == 204

        item.refresh_from_db()
        assert item.history == []  # only what the consent covered: the rated exchange
        assert (item.prompt_content, item.reply_content) == ("Что такое дробь?", "Часть целого")
        assert (item.allow_training, item.processed) == (True, False)
        # One truth: the copy the ML team processed is to be purged, and the item,
        # as it now stands, is offered again.
        assert list(ConsentRevocation.objects.values_list("feedback_id", "reason")) == [(item.pk, "erased")]
        listed = ml.get("/api/v1/ml/feedback/", {"allow_training": "true"}).json()["results"]
        assert [entry["id"] for entry in listed] == [item.pk]
        everything = json.dumps(listed, ensure_ascii=False) + json.dumps(
            list(LogEntry.objects.values()), ensure_ascii=False, default=str
        )
        for trace in ("+7 900 123-45-67", "Смирнова", user.email):
            assert trace not in everything
        assert set(LogEntry.objects.values_list("object_repr", flat=True)) == {"(erased)"}

    def test_a_superuser_deleting_the_user_in_the_admin_erases_the_same_way(self, admin_client, user, rated):
        consented, _ = rated
        response = admin_client.post(f"/admin/accounts/user/{user.pk}/delete/", {"post": "yes"})
        assert response.status_code == 302
        assert not User.objects.filter(pk=user.pk).exists()
        assert list(Feedback.objects.values_list("pk", "user_id")) == [(consented.pk, None)]
        from django.contrib.admin.models import LogEntry

        assert not LogEntry.objects.filter(object_repr__icontains=user.email).exists()

    def test_a_plain_cascade_is_refused(self, user, rated):
        from django.db.models import ProtectedError

        with pytest.raises(ProtectedError):
            user.delete()

    def test_wrong_passwords_are_throttled(self, auth_client, user, rates):
        rates(login="3/min")
        codes = [erase(auth_client, f"guess-{n}").status_code for n in range(4)]
        assert codes == [400, 400, 400, 429]
        assert erase(auth_client).status_code == 429  # the right one too, until the window closes
        assert User.objects.filter(pk=user.pk).exists()

    @requires_postgresql
    @pytest.mark.django_db(transaction=True)
    def test_ratings_stay_exact_with_feedback_arriving_during_an_erasure(self, make_user, tutor):
        erased, *others = [make_user() for _ in range(6)]
        replies = {}
        for person in (erased, *others):
            chat = Chat.objects.create(user=person, tutor=tutor)
            for n in range(3):
                asked = Message.objects.create(chat=chat, role="user", content=f"Вопрос {n}")
                replies.setdefault(person.pk, []).append(
                    Message.objects.create(chat=chat, role="assistant", content="Ответ", reply_to=asked)
                )
        for reply in replies[erased.pk]:
            feedback_on(reply, feedback_type="detailed", rating=1, allow_training=reply.pk % 2 == 0)
        tutor_rating_recompute(tutor_id=tutor.id)

        def work(index: int):
            if index == 0:
                return erase(bearer_client(erased)).status_code
            person = others[index - 1]
            return [
                bearer_client(person)
                .post(
                    "/api/v1/feedback/",
                    {"message": reply.pk, "feedback_type": "detailed", "rating": 2 + index % 4},
                    format="json",
                )
                .status_code
                for reply in replies[person.pk]
            ]

        results = run_in_threads(1 + len(others), work)
        assert results[0] == 204
        assert all(codes == [201, 201, 201] for codes in results[1:]), results
        tutor.refresh_from_db()
        ratings = list(
            Feedback.objects.filter(tutor=tutor, feedback_type="detailed").values_list("rating", flat=True)
        )
        assert len(ratings) == 15 + sum(1 for r in replies[erased.pk] if r.pk % 2 == 0)
        expected = (Decimal(sum(ratings)) / len(ratings)).quantize(Decimal("0.01"))
        assert (tutor.rating, tutor.total_feedbacks) == (expected, len(ratings))


class TestRevokeConsent:
    def test_turns_consent_off_everywhere_and_logs_what_was_processed(
        self, auth_client, user, chat, make_exchange, rated
    ):
        consented, _ = rated
        _, fresh = make_exchange(chat)
        waiting = feedback_on(fresh, allow_training=True)  # consented but not yet processed
        User.objects.filter(pk=user.pk).update(allow_training=True)

        response = auth_client.post(REVOKE)

        assert response.status_code == 200
        assert response.json() == {"updated": 2}
        assert not Feedback.objects.filter(allow_training=True).exists()
        user.refresh_from_db()
        assert user.allow_training is False
        # Only what the ML team already took needs purging on their side.
        assert list(ConsentRevocation.objects.values_list("feedback_id", "reason")) == [
            (consented.pk, "revoked")
        ]
        assert waiting.pk not in ConsentRevocation.objects.values_list("feedback_id", flat=True)
        assert auth_client.post(REVOKE).json() == {"updated": 0}

    def test_leaves_other_users_alone(self, auth_client, other_chat, make_exchange):
        _, theirs = make_exchange(other_chat)
        other = feedback_on(theirs, allow_training=True, processed=True)
        auth_client.post(REVOKE)
        other.refresh_from_db()
        assert other.allow_training is True
        assert not ConsentRevocation.objects.exists()

    def test_unticking_or_deleting_one_processed_item_is_logged_too(self, auth_client, rated, make_exchange):
        consented, _ = rated
        body = {
            "message": consented.message_id,
            "feedback_type": "detailed",
            "rating": 5,
            "allow_training": False,
        }
        assert auth_client.post("/api/v1/feedback/", body, format="json").status_code == 200
        assert list(ConsentRevocation.objects.values_list("feedback_id", "reason")) == [
            (consented.pk, "revoked")
        ]

        ConsentRevocation.objects.all().delete()
        Feedback.objects.filter(pk=consented.pk).update(allow_training=True, processed=True)
        assert auth_client.delete(f"/api/v1/feedback/{consented.pk}/").status_code == 204
        assert list(ConsentRevocation.objects.values_list("feedback_id", "reason")) == [
            (consented.pk, "revoked")
        ]


class TestRevocationLog:
    def test_the_ml_team_reads_it_since_a_moment(self, client_for, ml_user, auth_client, rated):
        auth_client.post(REVOKE)
        ml = client_for(ml_user)
        body = ml.get(REVOCATIONS).json()
        assert [(r["feedback_id"], r["reason"]) for r in body["results"]] == [(rated[0].pk, "revoked")]
        since = body["results"][0]["revoked_at"]
        assert len(ml.get(REVOCATIONS, {"since": since}).json()["results"]) == 1  # inclusive
        assert ml.get(REVOCATIONS, {"since": "2999-01-01T00:00:00Z"}).json() == {"results": []}
        assert ml.get(REVOCATIONS, {"since": "yesterday"}).status_code == 400
        assert ml.get(REVOCATIONS, {"after": since}).status_code == 400

    def test_is_for_the_ml_team_only(self, client_for, make_staff, auth_client, api_client):
        editor = make_staff(CONTENT_EDITORS)
        assert client_for(editor).get(REVOCATIONS).status_code == 403
        assert auth_client.get(REVOCATIONS).status_code == 403
        assert api_client.get(REVOCATIONS).status_code == 401


class TestPseudonymousStudents:
    def test_the_ml_team_sees_a_stable_key_that_names_nobody(
        self, client_for, ml_user, user, other_user, rated
    ):
        ml = client_for(ml_user)
        items = ml.get("/api/v1/ml/feedback/", {"processed": "true"}).json()["results"]
        keys = {item["student"] for item in items}
        assert keys == {student_key(user.pk)}
        (key,) = keys
        assert key != student_key(other_user.pk)
        raw = json.dumps(items, ensure_ascii=False)
        assert user.email not in raw and user.username not in raw and f'"user": {user.pk}' not in raw

    def test_erased_students_have_no_key(self, client_for, ml_user, auth_client, rated):
        erase(auth_client)
        (item,) = client_for(ml_user).get("/api/v1/ml/feedback/", {"processed": "true"}).json()["results"]
        assert (item["student"], item["chat"], item["message"]) == (None, None, None)

    def test_the_admin_shows_keys_not_emails_to_the_ml_team(self, client, make_user, user, chat, rated):
        member = make_user(is_staff=True)
        member.groups.add(Group.objects.get(name="ML team"))
        client.force_login(member)
        for url in (
            f"/admin/feedback/feedback/{rated[0].pk}/change/",
            "/admin/chats/chat/",
            f"/admin/chats/chat/{chat.pk}/change/",
        ):
            html = client.get(url).content.decode()
            assert student_key(user.pk) in html, url
            assert user.email not in html, url
            assert "/admin/accounts/user/" not in html, url
