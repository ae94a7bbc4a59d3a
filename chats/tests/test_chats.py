from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from accounts.tokens import BearerAuthentication, token_pair
from chats.models import Chat, Message
from chats.replies.saving import derive_title
from conftest import feedback_on
from feedback.models import Feedback

CHATS = "/api/v1/chats/"

pytestmark = pytest.mark.django_db


def detail(chat) -> str:
    return f"{CHATS}{chat.id}/"


class TestCreate:
    def test_creates_own_chat(self, auth_client, user, tutor):
        response = auth_client.post(CHATS, {"tutor": tutor.id, "title": "Дроби"}, format="json")
        assert response.status_code == 201
        body = response.json()
        assert set(body) == {"id", "tutor", "title", "created_at", "last_message_at"}
        assert body["tutor"] == {"id": tutor.id, "name": "Анна", "is_available": True}
        assert body["title"] == "Дроби"
        assert body["last_message_at"] is None
        assert Chat.objects.get(pk=body["id"]).user == user

    def test_title_is_optional(self, auth_client, tutor):
        response = auth_client.post(CHATS, {"tutor": tutor.id}, format="json")
        assert response.status_code == 201
        assert response.json()["title"] == ""

    def test_user_in_the_body_is_ignored(self, auth_client, user, other_user, tutor):
        response = auth_client.post(CHATS, {"tutor": tutor.id, "user": other_user.id}, format="json")
        assert Chat.objects.get(pk=response.json()["id"]).user == user

    @pytest.mark.parametrize("body", [{}, {"tutor": 999999}, {"tutor": "abc"}, {"tutor": None}])
    def test_bad_tutor_is_400(self, auth_client, body):
        response = auth_client.post(CHATS, body, format="json")
        assert response.status_code == 400
        assert "tutor" in response.json()
        assert not Chat.objects.exists()

    def test_inactive_tutor_is_400_with_a_message_a_student_can_read(self, auth_client, make_tutor):
        hidden = make_tutor(is_active=False)
        response = auth_client.post(CHATS, {"tutor": hidden.id}, format="json")
        assert response.status_code == 400
        assert response.json() == {
            "tutor": ["This tutor does not exist or is no longer available. Please choose another tutor."]
        }
        assert not Chat.objects.exists()

    def test_a_chat_says_when_its_tutor_was_deactivated(self, auth_client, chat):
        """Issue 11: the chat JSON tells the UI to stop offering the input box."""
        assert auth_client.get(detail(chat)).json()["tutor"]["is_available"] is True
        chat.tutor.course.is_active = False
        chat.tutor.course.save()
        assert auth_client.get(detail(chat)).json()["tutor"]["is_available"] is False
        listed = auth_client.get(CHATS).json()["results"]
        assert [item["tutor"]["is_available"] for item in listed] == [False]

    def test_title_over_255_is_400(self, auth_client, tutor):
        assert (
            auth_client.post(CHATS, {"tutor": tutor.id, "title": "я" * 256}, format="json").status_code == 400
        )

    def test_requires_a_token(self, api_client, tutor):
        assert api_client.post(CHATS, {"tutor": tutor.id}, format="json").status_code == 401


class TestListAndDetail:
    def test_lists_only_own_chats_most_recently_active_first(self, auth_client, user, other_chat, make_tutor):
        now = timezone.now()
        tutor = make_tutor()
        old = Chat.objects.create(user=user, tutor=tutor, last_message_at=now - timedelta(days=2))
        recent = Chat.objects.create(user=user, tutor=tutor, last_message_at=now - timedelta(minutes=1))
        fresh_empty = Chat.objects.create(user=user, tutor=tutor)
        response = auth_client.get(CHATS)
        assert response.status_code == 200
        assert [c["id"] for c in response.json()["results"]] == [fresh_empty.id, recent.id, old.id]

    def test_filter_by_tutor(self, auth_client, chat, user, make_tutor):
        other_tutor = make_tutor()
        Chat.objects.create(user=user, tutor=other_tutor)
        response = auth_client.get(CHATS, {"tutor": chat.tutor_id})
        assert [c["id"] for c in response.json()["results"]] == [chat.id]

    def test_bad_tutor_filter_is_400(self, auth_client):
        assert auth_client.get(CHATS, {"tutor": "x"}).status_code == 400

    def test_retrieve_own(self, auth_client, chat):
        assert auth_client.get(detail(chat)).json()["title"] == "Квадратные уравнения"

    @pytest.mark.parametrize(("rows", "queries"), [(0, 2), (1, 2), (20, 2), (21, 3), (50, 3)])
    def test_list_query_count_is_constant(
        self, auth_client, user, tutor, django_assert_num_queries, rows, queries
    ):
        Chat.objects.bulk_create(Chat(user=user, tutor=tutor) for _ in range(rows))
        # 1: the user of the token, 2: the page joined with its tutor, read one
        # row long; only a list longer than a page (20) is counted (issue 32).
        with django_assert_num_queries(queries):
            body = auth_client.get(CHATS).json()
        assert body["count"] == rows and len(body["results"]) == min(rows, 20)
        assert (body["next"] is not None) is (rows > 20) and body["previous"] is None

    def test_a_long_list_counts_only_its_own_chats(self, auth_client, user, other_user, tutor, make_tutor):
        other_tutor = make_tutor()
        Chat.objects.bulk_create(Chat(user=user, tutor=tutor) for _ in range(23))
        Chat.objects.bulk_create(Chat(user=user, tutor=other_tutor) for _ in range(21))
        Chat.objects.bulk_create(Chat(user=other_user, tutor=tutor) for _ in range(30))
        assert auth_client.get(CHATS).json()["count"] == 44
        by_tutor = auth_client.get(CHATS, {"tutor": tutor.pk}).json()
        assert (by_tutor["count"], len(by_tutor["results"])) == (23, 20)
        assert auth_client.get(CHATS, {"tutor": other_tutor.pk}).json()["count"] == 21
        assert auth_client.get(CHATS, {"tutor": 999999}).json()["count"] == 0

    def test_the_second_page_is_counted_as_before(self, auth_client, user, tutor):
        Chat.objects.bulk_create(Chat(user=user, tutor=tutor) for _ in range(25))
        second = auth_client.get(f"{CHATS}?page=2").json()
        assert (second["count"], len(second["results"]), second["next"]) == (25, 5, None)
        assert auth_client.get(f"{CHATS}?page=3").status_code == 404


class TestOwnership:
    """Another user's chat answers 404 on every endpoint and stays untouched."""

    @pytest.mark.parametrize(
        "method, suffix, body",
        [
            ("get", "", None),
            ("patch", "", {"title": "взлом"}),
            ("delete", "", None),
            ("get", "messages/", None),
            ("post", "messages/", {"content": "привет"}),
            ("delete", "messages/", None),
            ("post", "reply/", None),
        ],
    )
    def test_other_users_chat_is_404(self, auth_client, other_chat, make_exchange, method, suffix, body):
        make_exchange(other_chat)
        response = getattr(auth_client, method)(detail(other_chat) + suffix, body, format="json")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        other_chat.refresh_from_db()
        assert other_chat.title == "Чужой чат"
        assert other_chat.messages.count() == 2


class TestRenameAndDelete:
    def test_patch_renames(self, auth_client, chat):
        response = auth_client.patch(detail(chat), {"title": "Теорема Виета"}, format="json")
        assert response.status_code == 200
        assert response.json()["title"] == "Теорема Виета"
        chat.refresh_from_db()
        assert chat.title == "Теорема Виета"

    def test_patch_cannot_move_the_chat_to_another_tutor(self, auth_client, chat, make_tutor):
        other = make_tutor()
        auth_client.patch(detail(chat), {"title": "x", "tutor": other.id}, format="json")
        chat.refresh_from_db()
        assert chat.tutor_id != other.id

    def test_put_is_not_allowed(self, auth_client, chat):
        assert auth_client.put(detail(chat), {"title": "x"}, format="json").status_code == 405

    def test_delete_removes_chat_and_messages_but_keeps_feedback(
        self, auth_client, user, chat, make_exchange
    ):
        _, replied = make_exchange(chat)
        feedback_on(replied)
        assert auth_client.delete(detail(chat)).status_code == 204
        assert not Chat.objects.filter(pk=chat.pk).exists()
        assert not Message.objects.exists()
        feedback = Feedback.objects.get()
        assert (feedback.chat_id, feedback.message_id) == (None, None)
        assert feedback.reply_content == "4"


class TestTitles:
    def test_short_message_becomes_the_title(self):
        assert derive_title("  Как решать\n квадратные   уравнения? ") == "Как решать квадратные уравнения?"

    def test_long_message_is_cut_at_a_word_near_60_characters(self):
        text = "Объясните, пожалуйста, как решать квадратные уравнения через дискриминант и теорему Виета"
        title = derive_title(text)
        assert len(title) <= 61
        assert title.endswith("…")
        assert text.startswith(title[:-1])


class TestTheUserIsLoadedWithTheChat:
    """Issue 17: on a chat's own URL the user comes in the chat's query
    (accounts.tokens.BearerAuthentication); simplejwt's checks of the
    user must hold there exactly as on /auth/me/, before the chat is used."""

    URLS = [
        ("get", "{}"),
        ("patch", "{}"),
        ("delete", "{}"),
        ("get", "{}messages/"),
        ("post", "{}messages/"),
        ("delete", "{}messages/"),
        ("post", "{}reply/"),
        ("post", "{}regenerate/"),
        ("get", "{}stream/"),
    ]

    def refusal(self, client, chat) -> list[tuple[int, str]]:
        """What each chat URL answers (status, code), compared with /auth/me/'s."""
        me = client.get("/api/v1/auth/me/")
        answers = []
        for method, url in self.URLS:
            body = {"content": "Привет", "title": "Новое"} if method in ("post", "patch") else None
            response = getattr(client, method)(url.format(detail(chat)), body, format="json")
            answers.append((response.status_code, response.json()["code"]))
            assert response.json() == me.json()
        return answers

    @pytest.fixture
    def kept(self, chat, make_exchange):
        make_exchange(chat)
        return chat

    def assert_untouched(self, chat, title="Квадратные уравнения"):
        chat.refresh_from_db()
        assert chat.title == title
        assert Message.objects.filter(chat=chat).count() == 2

    @pytest.mark.parametrize("owner", [True, False], ids=["own chat", "another user's chat"])
    def test_a_deactivated_user_is_401_and_changes_nothing(self, user, other_user, client_for, kept, owner):
        holder = user if owner else other_user
        client = client_for(holder)
        holder.is_active = False
        holder.save()
        assert set(self.refusal(client, kept)) == {(401, "user_inactive")}
        self.assert_untouched(kept)

    def test_a_token_from_before_a_password_change_is_401(self, user, client_for, kept):
        client = client_for(user)
        user.set_password("A-New-Strong-Pass-2026")
        user.save()
        assert set(self.refusal(client, kept)) == {(401, "password_changed")}
        self.assert_untouched(kept)

    def test_a_deleted_users_token_is_401_on_what_were_its_chats(self, make_user, client_for, tutor):
        doomed = make_user()
        chat = Chat.objects.create(user=doomed, tutor=tutor)
        client = client_for(doomed)
        doomed.delete()
        assert set(self.refusal(client, chat)) == {(401, "user_not_found")}

    def test_an_active_user_gets_404_on_another_users_chat(self, other_client, kept):
        for method, url in self.URLS:
            response = getattr(other_client, method)(url.format(detail(kept)), {}, format="json")
            assert response.status_code == 404, url
        self.assert_untouched(kept)

    def test_the_owner_is_the_request_user(self, auth_client, user, kept):
        response = auth_client.patch(detail(kept), {"title": "Новое"}, format="json")
        assert response.status_code == 200
        self.assert_untouched(kept, "Новое")
        assert Chat.objects.get(pk=kept.pk).user == user

    def test_a_user_the_token_does_not_name_is_never_taken(self, user, other_user):
        token = AccessToken(token_pair(user)["access"])
        other_user.password = user.password  # the same hash: only the id tells them apart
        assert BearerAuthentication().verify(token, other_user) == user
