"""Issue 14: regenerate, variants, selection and each user message's reply status."""

import json
from datetime import timedelta

import pytest
import responses
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from chats.models import Chat, Message
from chats.tests.test_streaming import wait_for
from conftest import bearer_client, requires_postgresql, run_in_threads
from feedback.models import Feedback

pytestmark = pytest.mark.django_db

AI_URL = "http://ai-core.test"
GENERATE = f"{AI_URL}/api/v1/generate"


@pytest.fixture
def ai_core(settings):
    settings.AI_CORE_URL = AI_URL
    settings.AI_CORE_MAX_RETRIES = 0
    with responses.RequestsMock() as mock:
        yield mock


def answers(ai_core, *texts: str) -> None:
    for text in texts:
        ai_core.post(GENERATE, json={"content": text, "tokens_used": 3})


def send(client, chat, content="Что такое синус?"):
    return client.post(f"/api/v1/chats/{chat.id}/messages/", {"content": content}, format="json")


def regenerate(client, chat, **kwargs):
    return client.post(f"/api/v1/chats/{chat.id}/regenerate/", **kwargs)


def page(client, chat) -> list[dict]:
    return client.get(f"/api/v1/chats/{chat.id}/messages/").json()["results"]


class TestVariants:
    def test_regenerate_keeps_the_earlier_reply_as_a_variant(self, auth_client, chat, ai_core):
        answers(ai_core, "Первый ответ", "Второй ответ")
        first = send(auth_client, chat).json()["assistant_message"]
        assert first["variant"] == {"index": 1, "count": 1}

        response = regenerate(auth_client, chat)

        assert response.status_code == 201
        second = response.json()["assistant_message"]
        assert (second["content"], second["variant"]) == ("Второй ответ", {"index": 2, "count": 2})
        shown = page(auth_client, chat)
        assert [m["content"] for m in shown] == ["Что такое синус?", "Второй ответ"]
        assert shown[0]["reply_status"] == "answered"
        variants = auth_client.get(f"/api/v1/chats/{chat.id}/messages/{first['id']}/variants/").json()
        assert [(v["content"], v["variant"]) for v in variants] == [
            ("Первый ответ", {"index": 1, "count": 2}),
            ("Второй ответ", {"index": 2, "count": 2}),
        ]
        # The same question went to AI-Core with the same history.
        asked = [json.loads(call.request.body) for call in ai_core.calls]
        assert asked[0]["message"] == asked[1]["message"] and asked[0]["history"] == asked[1]["history"] == []

    def test_select_keeps_an_earlier_variant_and_the_history_uses_it(self, auth_client, chat, ai_core):
        answers(ai_core, "Первый ответ", "Второй ответ", "Дальше")
        first = send(auth_client, chat).json()["assistant_message"]
        regenerate(auth_client, chat)

        response = auth_client.post(f"/api/v1/chats/{chat.id}/messages/{first['id']}/select/")

        assert response.status_code == 200
        assert (response.json()["id"], response.json()["variant"]) == (first["id"], {"index": 1, "count": 2})
        assert [m["content"] for m in page(auth_client, chat)] == ["Что такое синус?", "Первый ответ"]
        assert Message.objects.filter(role="assistant", is_current=True).get().pk == first["id"]
        send(auth_client, chat, "А косинус?")
        history = json.loads(ai_core.calls[-1].request.body)["history"]
        assert history == [
            {"role": "user", "content": "Что такое синус?"},
            {"role": "assistant", "content": "Первый ответ"},
        ]

    def test_nothing_to_regenerate(self, auth_client, chat, ai_core):
        assert regenerate(auth_client, chat).json()["code"] == "nothing_to_regenerate"
        ai_core.post(GENERATE, status=503)
        send(auth_client, chat)  # fails: the last user message has no reply
        response = regenerate(auth_client, chat)
        assert (response.status_code, response.json()["code"]) == (409, "nothing_to_regenerate")
        assert not Message.objects.filter(role="assistant").exists()

    def test_a_deactivated_tutor_is_not_asked_again(self, auth_client, chat, ai_core):
        answers(ai_core, "Ответ")
        send(auth_client, chat)
        chat.tutor.is_active = False
        chat.tutor.save()
        assert regenerate(auth_client, chat).json()["code"] == "tutor_unavailable"

    def test_selecting_needs_a_reply_of_this_chat(self, auth_client, other_client, chat, other_chat, ai_core):
        answers(ai_core, "Ответ")
        sent = send(auth_client, chat).json()
        select = f"/api/v1/chats/{chat.id}/messages/{{}}/select/"
        assert auth_client.post(select.format(sent["user_message"]["id"])).status_code == 400
        assert auth_client.post(select.format(999999)).status_code == 404
        assert other_client.post(select.format(sent["assistant_message"]["id"])).status_code == 404
        wrong_chat = f"/api/v1/chats/{other_chat.id}/messages/{sent['assistant_message']['id']}/select/"
        assert other_client.post(wrong_chat).status_code == 404

    def test_feedback_on_a_retired_variant_and_clearing_keep_working(self, auth_client, chat, ai_core):
        answers(ai_core, "Первый ответ", "Второй ответ")
        first = send(auth_client, chat).json()["assistant_message"]
        regenerate(auth_client, chat)
        body = {"message": first["id"], "feedback_type": "detailed", "rating": 2, "allow_training": True}
        assert auth_client.post("/api/v1/feedback/", body, format="json").status_code == 201
        assert auth_client.delete(f"/api/v1/chats/{chat.id}/messages/").status_code == 204
        assert not Message.objects.exists()
        assert Feedback.objects.get().reply_content == "Первый ответ"

    @pytest.mark.django_db(transaction=True)  # the reply is written by another thread
    def test_a_streamed_regeneration_sends_the_same_events(self, auth_client, chat, ai_core):
        answers(ai_core, "Первый ответ", "Второй ответ")
        send(auth_client, chat)
        response = regenerate(auth_client, chat, HTTP_ACCEPT="text/event-stream")
        assert response.status_code == 200
        text = b"".join(response.streaming_content).decode()
        assert "event: delta" in text
        final = json.loads(text.split("event: assistant_message\ndata: ")[1].split("\n")[0])
        assert (final["content"], final["variant"]) == ("Второй ответ", {"index": 2, "count": 2})

    def test_a_regeneration_racing_a_clear_is_discarded(self, auth_client, chat, ai_core):
        answers(ai_core, "Ответ")
        send(auth_client, chat)

        def clear_meanwhile(request):
            Message.objects.filter(chat=chat).delete()
            return 200, {}, json.dumps({"content": "Поздно"})

        ai_core.add_callback(responses.POST, GENERATE, callback=clear_meanwhile)
        response = regenerate(auth_client, chat)
        assert (response.status_code, response.json()["code"]) == (409, "reply_discarded")
        assert not Message.objects.exists()

    @pytest.mark.parametrize("rows", [1, 50])
    def test_a_page_with_variants_has_a_constant_query_count(
        self, auth_client, chat, rows, django_assert_num_queries
    ):
        for n in range(rows):
            asked = Message.objects.create(chat=chat, role="user", content=f"Вопрос {n}")
            Message.objects.create(
                chat=chat, role="assistant", content="old", reply_to=asked, is_current=False
            )
            Message.objects.create(chat=chat, role="assistant", content="new", reply_to=asked)
        Chat.objects.filter(pk=chat.pk).update(has_variants=True)  # as the regeneration would
        # 1 the chat with its user, 2 the page, 3 every variant of its replies.
        with django_assert_num_queries(3):
            shown = page(auth_client, chat)
        assert len(shown) == min(2 * rows, 50)
        assert all(m["variant"] == {"index": 2, "count": 2} for m in shown if m["role"] == "assistant")

    def test_a_page_of_a_chat_never_regenerated_needs_no_variants_query(
        self, auth_client, chat, make_exchange, django_assert_num_queries
    ):
        for n in range(25):
            make_exchange(chat, question=f"Вопрос {n}", answer=f"Ответ {n}")
        with django_assert_num_queries(2):  # the chat with its user; the page
            shown = page(auth_client, chat)
        assert len(shown) == 50
        assert all(m["variant"] == {"index": 1, "count": 1} for m in shown if m["role"] == "assistant")
        assert all(m["reply_status"] == "answered" for m in shown if m["role"] == "user")

    def test_the_newest_page_of_a_chat_never_regenerated_knows_its_unanswered_messages(
        self, auth_client, chat, make_exchange, django_assert_num_queries
    ):
        """No query finds a reply that could only be on this page: a failed
        message stays failed, a fresh one pending, an answered one answered."""
        make_exchange(chat, question="Первый", answer="Ответ")
        Message.objects.create(chat=chat, role="user", content="Сбой", reply_error="ai_core_timeout")
        make_exchange(chat, question="Второй", answer="Ещё ответ")
        Message.objects.create(chat=chat, role="user", content="Только что")
        with django_assert_num_queries(2):  # the chat with its user; the page
            shown = page(auth_client, chat)
        assert [(m["content"], m["reply_status"]) for m in shown if m["role"] == "user"] == [
            ("Первый", "answered"),
            ("Сбой", "failed"),
            ("Второй", "answered"),
            ("Только что", "pending"),
        ]

    def test_a_message_whose_reply_is_on_the_next_page_is_answered(self, auth_client, chat, make_exchange):
        make_exchange(chat)
        _, reply = make_exchange(chat, question="Второй вопрос")
        url = f"/api/v1/chats/{chat.id}/messages/?before_id={reply.pk}"
        shown = auth_client.get(url).json()["results"]
        assert [(m["content"], m["reply_status"]) for m in shown][-1] == ("Второй вопрос", "answered")

    def test_the_first_regeneration_marks_the_chat_and_the_page_counts_variants(
        self, auth_client, chat, ai_core
    ):
        answers(ai_core, "Первый ответ", "Второй ответ")
        send(auth_client, chat)
        assert not Chat.objects.get(pk=chat.pk).has_variants
        regenerate(auth_client, chat)
        assert Chat.objects.get(pk=chat.pk).has_variants
        assert page(auth_client, chat)[1]["variant"] == {"index": 2, "count": 2}

    @pytest.mark.django_db(transaction=True)
    def test_the_migration_marks_the_chats_with_variants(self, chat, make_exchange):
        plain = Chat.objects.create(user=chat.user, tutor=chat.tutor)
        make_exchange(plain)
        asked, _ = make_exchange(chat)
        Message.objects.filter(reply_to=asked).update(is_current=False)
        Message.objects.create(chat=chat, role="assistant", content="Новый", reply_to=asked)
        executor = MigrationExecutor(connection)
        executor.migrate([("chats", "0011_experiment_arm")])
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
        assert set(Chat.objects.filter(has_variants=True).values_list("pk", flat=True)) == {chat.pk}


class TestReplyStatus:
    def test_through_failures_and_retries(self, auth_client, chat, ai_core):
        ai_core.post(GENERATE, status=503)
        ai_core.post(GENERATE, body=responses.ConnectionError("refused"))
        first = send(auth_client, chat, "Первый вопрос").json()["user_message"]
        second = send(auth_client, chat, "Второй вопрос").json()["user_message"]
        assert (first["reply_status"], first["reply_error"]) == ("failed", "ai_core_bad_response")
        assert (second["reply_status"], second["reply_error"]) == ("failed", "ai_core_unavailable")
        shown = page(auth_client, chat)
        assert [(m["reply_status"], m["reply_error"]) for m in shown] == [
            ("failed", "ai_core_bad_response"),
            ("failed", "ai_core_unavailable"),
        ]

        # The older one is answered by naming it; the default is the last message.
        answers(ai_core, "Ответ на первый", "Ответ на второй")
        reply = auth_client.post(f"/api/v1/chats/{chat.id}/reply/", {"message": first["id"]}, format="json")
        assert reply.status_code == 201
        assert reply.json()["assistant_message"]["variant"] == {"index": 1, "count": 1}
        assert auth_client.post(f"/api/v1/chats/{chat.id}/reply/").status_code == 201
        shown = page(auth_client, chat)
        assert [(m["role"], m["reply_status"], m["reply_error"]) for m in shown] == [
            ("user", "answered", None),
            ("user", "answered", None),
            ("assistant", None, None),
            ("assistant", None, None),
        ]
        again = auth_client.post(f"/api/v1/chats/{chat.id}/reply/", {"message": first["id"]}, format="json")
        assert (again.status_code, again.json()["code"]) == (409, "nothing_to_reply")

    def test_a_message_whose_reply_was_never_finished_shows_failed_and_can_be_answered(
        self, auth_client, chat, ai_core
    ):
        fresh = Message.objects.create(chat=chat, role="user", content="Только что")
        assert page(auth_client, chat)[0]["reply_status"] == "pending"  # its reply may be on the way
        # A worker died mid-reply long ago: nothing will answer it.
        Message.objects.filter(pk=fresh.pk).update(created_at=timezone.now() - timedelta(minutes=10))
        shown = page(auth_client, chat)[0]
        assert (shown["reply_status"], shown["reply_error"]) == ("failed", "reply_interrupted")
        answers(ai_core, "Ответ")
        assert (
            auth_client.post(
                f"/api/v1/chats/{chat.id}/reply/", {"message": fresh.pk}, format="json"
            ).status_code
            == 201
        )
        assert page(auth_client, chat)[0]["reply_status"] == "answered"

    def test_a_failed_regeneration_leaves_the_message_answered(self, auth_client, chat, ai_core):
        answers(ai_core, "Ответ")
        send(auth_client, chat)
        ai_core.post(GENERATE, status=504)
        failed = regenerate(auth_client, chat)
        assert failed.status_code == 502
        assert failed.json()["user_message"]["reply_status"] == "answered"
        assert page(auth_client, chat)[0]["reply_status"] == "answered"
        assert Message.objects.filter(role="assistant").count() == 1

    def test_reply_names_a_message_of_this_chat_only(self, auth_client, other_client, chat, ai_core):
        ai_core.post(GENERATE, status=503)
        asked = send(auth_client, chat).json()["user_message"]
        reply = f"/api/v1/chats/{chat.id}/reply/"
        assert auth_client.post(reply, {"message": 999999}, format="json").status_code == 404
        assert auth_client.post(reply, {"message": "x"}, format="json").status_code == 400
        assert other_client.post(reply, {"message": asked["id"]}, format="json").status_code == 404

    @pytest.mark.django_db(transaction=True)  # the reply is written by another thread
    def test_a_stream_the_client_left_still_ends_answered(self, auth_client, chat, ai_core):
        answers(ai_core, "Ответ")
        response = auth_client.post(
            f"/api/v1/chats/{chat.id}/messages/", {"content": "Вопрос"}, format="json",
            HTTP_ACCEPT="text/event-stream",
        )  # fmt: skip
        chunks = iter(response.streaming_content)
        assert next(chunks) == b"retry: 3000\n\n"
        first_event = next(chunks).decode()
        assert '"reply_status":"pending"' in first_event.replace(" ", "")
        response.close()  # the student closed the tab
        wait_for(lambda: Message.objects.filter(role="assistant").exists())  # the reply goes on in its thread
        assert page(auth_client, chat)[0]["reply_status"] == "answered"


@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_concurrent_regenerations_and_selections_keep_exactly_one_current(user, tutor, settings):
    settings.AI_CORE_URL = "stub"
    chat = Chat.objects.create(user=user, tutor=tutor)
    client = bearer_client(user)
    first = send(client, chat).json()["assistant_message"]

    def work(index: int) -> int:
        mine = bearer_client(user)
        if index % 2:
            return mine.post(f"/api/v1/chats/{chat.id}/messages/{first['id']}/select/").status_code
        return regenerate(mine, chat).status_code

    results = run_in_threads(6, work)
    assert sorted(results) == [200, 200, 200, 201, 201, 201]
    replies = Message.objects.filter(chat=chat, role="assistant")
    assert replies.count() == 4
    assert replies.filter(is_current=True).count() == 1
