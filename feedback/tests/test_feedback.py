from decimal import Decimal

import pytest

from chats.models import Message
from feedback.models import Feedback

FEEDBACK = "/api/v1/feedback/"

pytestmark = pytest.mark.django_db


@pytest.fixture
def reply(chat, make_exchange) -> Message:
    _, replied = make_exchange(chat, question="Как найти дискриминант?", answer="D = b² − 4ac")
    return replied


def rate(client, message, rating=5, **extra):
    body = {"message": message.id, "feedback_type": "detailed", "rating": rating, **extra}
    return client.post(FEEDBACK, body, format="json")


def react(client, message, reaction="understood", **extra):
    body = {"message": message.id, "feedback_type": "quick", "quick_reaction": reaction, **extra}
    return client.post(FEEDBACK, body, format="json")


class TestSubmit:
    def test_detailed_feedback_is_created_with_server_derived_fields(self, auth_client, user, chat, reply):
        response = rate(auth_client, reply, 4, positive_text="Понятно!", improvement_text="Больше примеров")
        assert response.status_code == 201
        body = response.json()
        assert set(body) == {
            "id", "chat", "message", "tutor", "feedback_type", "rating", "positive_text",
            "improvement_text", "quick_reaction", "allow_training", "processed", "created_at",
        }  # fmt: skip
        assert (body["chat"], body["message"], body["tutor"]) == (chat.id, reply.id, chat.tutor_id)
        assert (body["rating"], body["allow_training"], body["processed"]) == (4, False, False)
        feedback = Feedback.objects.get()
        assert feedback.user == user
        assert feedback.reply_content == "D = b² − 4ac"
        assert feedback.prompt_content == "Как найти дискриминант?"
        assert feedback.reply_metadata == reply.metadata

    def test_chat_tutor_and_user_in_the_body_are_ignored(
        self, auth_client, user, other_user, chat, reply, make_tutor, other_chat
    ):
        stranger_tutor = make_tutor()
        rate(
            auth_client,
            reply,
            user=other_user.id,
            chat=other_chat.id,
            tutor=stranger_tutor.id,
            processed=True,
        )
        feedback = Feedback.objects.get()
        assert (feedback.user, feedback.chat, feedback.tutor) == (user, chat, chat.tutor)
        assert feedback.processed is False

    def test_posting_again_updates_instead_of_voting_twice(self, auth_client, reply):
        first = rate(auth_client, reply, 1)
        second = rate(auth_client, reply, 5, improvement_text="")
        assert (first.status_code, second.status_code) == (201, 200)
        assert first.json()["id"] == second.json()["id"]
        assert Feedback.objects.count() == 1
        reply.chat.tutor.refresh_from_db()
        assert (reply.chat.tutor.rating, reply.chat.tutor.total_feedbacks) == (Decimal("5.00"), 1)

    def test_an_update_goes_back_into_the_ml_queue(self, auth_client, reply, ml_user):
        rate(auth_client, reply, 3)
        Feedback.objects.update(processed=True)
        rate(auth_client, reply, 4)
        assert Feedback.objects.get().processed is False

    def test_an_update_changes_only_the_fields_sent(self, auth_client, reply):
        rate(
            auth_client,
            reply,
            2,
            positive_text="Хорошо",
            improvement_text="Больше примеров",
            allow_training=True,
        )
        Feedback.objects.update(processed=True)
        response = rate(auth_client, reply, 4)
        assert response.status_code == 200
        feedback = Feedback.objects.get()
        assert (feedback.rating, feedback.positive_text, feedback.improvement_text) == (
            4, "Хорошо", "Больше примеров"
        )  # fmt: skip
        assert feedback.allow_training is True
        assert feedback.processed is False

        react(auth_client, reply, "too_hard", allow_training=True)
        react(auth_client, reply, "incorrect")
        quick = Feedback.objects.get(feedback_type="quick")
        assert (quick.quick_reaction, quick.allow_training) == ("incorrect", True)

    def test_an_update_that_changes_nothing_stays_processed(self, auth_client, reply):
        rate(auth_client, reply, 4, positive_text="Ясно")
        Feedback.objects.update(processed=True)
        assert rate(auth_client, reply, 4, positive_text="Ясно").status_code == 200
        assert Feedback.objects.get().processed is True

    def test_fields_can_be_cleared_by_sending_them_empty(self, auth_client, reply):
        rate(auth_client, reply, 4, improvement_text="Медленнее", allow_training=True)
        rate(auth_client, reply, 4, improvement_text="", allow_training=False)
        feedback = Feedback.objects.get()
        assert (feedback.improvement_text, feedback.allow_training) == ("", False)

    def test_quick_feedback_with_a_rating_is_400_and_changes_nothing(self, auth_client, reply):
        react(auth_client, reply, "understood")
        response = react(auth_client, reply, "too_hard", rating=5)
        assert response.status_code == 400
        assert "rating" in response.json()
        assert Feedback.objects.get().quick_reaction == "understood"

    def test_detailed_feedback_with_a_reaction_is_400(self, auth_client, reply):
        response = rate(auth_client, reply, 5, quick_reaction="incorrect")
        assert response.status_code == 400
        assert "quick_reaction" in response.json()
        assert not Feedback.objects.exists()

    def test_null_rating_and_empty_reaction_are_the_same_as_absent(self, auth_client, reply):
        assert react(auth_client, reply, "understood", rating=None).status_code == 201
        assert rate(auth_client, reply, 3, quick_reaction="").status_code == 201

    def test_quick_and_detailed_on_the_same_message_are_separate(self, auth_client, reply):
        assert rate(auth_client, reply, 5).status_code == 201
        assert react(auth_client, reply, "too_easy").status_code == 201
        assert Feedback.objects.count() == 2

    def test_quick_feedback_leaves_the_rating_alone(self, auth_client, reply):
        rate(auth_client, reply, 3)
        react(auth_client, reply, "incorrect")
        tutor = reply.chat.tutor
        tutor.refresh_from_db()
        assert (tutor.rating, tutor.total_feedbacks) == (Decimal("3.00"), 1)

    def test_rating_is_the_mean_of_every_users_detailed_feedback(
        self, auth_client, other_client, chat, other_chat, reply, make_exchange
    ):
        _, other_reply = make_exchange(other_chat)
        _, second_reply = make_exchange(chat)
        rate(auth_client, reply, 5)
        rate(auth_client, second_reply, 4)
        rate(other_client, other_reply, 4)
        chat.tutor.refresh_from_db()
        assert (chat.tutor.rating, chat.tutor.total_feedbacks) == (Decimal("4.33"), 3)

    def test_users_message_is_400(self, auth_client, chat, reply):
        prompt = Message.objects.get(role="user")
        response = rate(auth_client, prompt)
        assert response.status_code == 400
        assert "message" in response.json()
        assert not Feedback.objects.exists()

    def test_another_users_message_is_404(self, auth_client, other_chat, make_exchange):
        _, foreign = make_exchange(other_chat)
        assert rate(auth_client, foreign).status_code == 404
        assert not Feedback.objects.exists()

    def test_missing_message_is_404(self, auth_client):
        assert auth_client.post(FEEDBACK, {"message": 10**12, "feedback_type": "quick",
                                           "quick_reaction": "understood"}, format="json").status_code == 404  # fmt: skip

    @pytest.mark.parametrize(
        "body, field",
        [
            ({"feedback_type": "detailed"}, "rating"),
            ({"feedback_type": "detailed", "rating": 0}, "rating"),
            ({"feedback_type": "detailed", "rating": 6}, "rating"),
            ({"feedback_type": "detailed", "rating": "five"}, "rating"),
            ({"feedback_type": "quick"}, "quick_reaction"),
            ({"feedback_type": "quick", "quick_reaction": "meh"}, "quick_reaction"),
            ({"feedback_type": "thumbs", "rating": 5}, "feedback_type"),
            ({"rating": 5}, "feedback_type"),
            ({"feedback_type": "detailed", "rating": 5, "positive_text": "я" * 5001}, "positive_text"),
            ({"feedback_type": "detailed", "rating": 5, "allow_training": "maybe"}, "allow_training"),
        ],
    )
    def test_invalid_fields_are_400(self, auth_client, reply, body, field):
        response = auth_client.post(FEEDBACK, {"message": reply.id, **body}, format="json")
        assert response.status_code == 400
        assert field in response.json()
        assert not Feedback.objects.exists()

    @pytest.mark.parametrize("message", [None, "abc", 0, -1])
    def test_invalid_message_is_400(self, auth_client, message):
        body = {"message": message, "feedback_type": "quick", "quick_reaction": "understood"}
        response = auth_client.post(FEEDBACK, body, format="json")
        assert response.status_code == 400
        assert "message" in response.json()

    def test_requires_a_token(self, api_client, reply):
        assert rate(api_client, reply).status_code == 401


class TestListAndDelete:
    def test_lists_only_own_feedback(self, auth_client, other_client, reply, other_chat, make_exchange):
        _, foreign = make_exchange(other_chat)
        rate(other_client, foreign)
        mine = rate(auth_client, reply).json()
        body = auth_client.get(FEEDBACK).json()
        assert [item["id"] for item in body["results"]] == [mine["id"]]

    def test_delete_recomputes_the_rating(self, auth_client, chat, reply, make_exchange):
        _, second = make_exchange(chat)
        rate(auth_client, reply, 2)
        kept = rate(auth_client, second, 4).json()
        doomed = Feedback.objects.get(message=reply)
        assert auth_client.delete(f"{FEEDBACK}{doomed.id}/").status_code == 204
        chat.tutor.refresh_from_db()
        assert (chat.tutor.rating, chat.tutor.total_feedbacks) == (Decimal("4.00"), 1)
        assert list(Feedback.objects.values_list("id", flat=True)) == [kept["id"]]
        auth_client.delete(f"{FEEDBACK}{kept['id']}/")
        chat.tutor.refresh_from_db()
        assert (chat.tutor.rating, chat.tutor.total_feedbacks) == (Decimal("0.00"), 0)

    def test_deleting_another_users_feedback_is_404(
        self, auth_client, other_client, other_chat, make_exchange
    ):
        _, foreign = make_exchange(other_chat)
        theirs = rate(other_client, foreign).json()
        assert auth_client.delete(f"{FEEDBACK}{theirs['id']}/").status_code == 404
        assert auth_client.get(f"{FEEDBACK}{theirs['id']}/").status_code == 404
        assert Feedback.objects.filter(pk=theirs["id"]).exists()

    @pytest.mark.parametrize(("rows", "queries"), [(1, 2), (50, 3)])
    def test_list_query_count_is_constant(
        self, auth_client, user, chat, make_exchange, django_assert_num_queries, rows, queries
    ):
        for _ in range(rows):
            _, replied = make_exchange(chat)
            Feedback.objects.create(
                user=user, chat=chat, message=replied, tutor=chat.tutor, feedback_type="quick",
                quick_reaction="understood", reply_content="x",
            )  # fmt: skip
        # 1: token user, 2: the page (one row more), 3: count, when it is longer than a page.
        with django_assert_num_queries(queries):
            assert auth_client.get(FEEDBACK).status_code == 200


class TestOutlivesTheChat:
    def test_clearing_the_chat_keeps_feedback_and_its_copies(self, auth_client, chat, reply):
        rate(auth_client, reply, 5, allow_training=True)
        assert auth_client.delete(f"/api/v1/chats/{chat.id}/messages/").status_code == 204
        feedback = Feedback.objects.get()
        assert feedback.message is None
        assert (feedback.reply_content, feedback.prompt_content) == (
            "D = b² − 4ac",
            "Как найти дискриминант?",
        )
        assert auth_client.get(FEEDBACK).json()["results"][0]["message"] is None

    def test_deleting_the_chat_keeps_feedback_and_the_rating(self, auth_client, chat, reply):
        rate(auth_client, reply, 2)
        assert auth_client.delete(f"/api/v1/chats/{chat.id}/").status_code == 204
        feedback = Feedback.objects.get()
        assert (feedback.chat, feedback.message) == (None, None)
        chat.tutor.refresh_from_db()
        assert (chat.tutor.rating, chat.tutor.total_feedbacks) == (Decimal("2.00"), 1)
