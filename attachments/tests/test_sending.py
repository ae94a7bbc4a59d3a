"""Sends that show uploads: the student's own only, kept on the message,
handed to AI-Core as signed links, again on regenerate and /reply/ (issue 28)."""

import json
from urllib.parse import urlsplit

import pytest
import responses
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.exceptions import ValidationError
from rest_framework.test import APIClient

from attachments.models import Attachment, Reference
from attachments.serializers import AttachmentSerializer
from chats.models import Message
from chats.replies import attaching, saving
from feedback.models import Feedback

pytestmark = pytest.mark.django_db

AI_URL = "http://ai-core.test"
GENERATE = f"{AI_URL}/api/v1/generate"


def send(client, chat, ids, content="Что здесь не так?", **extra):
    body = {"content": content, "attachments": [{"id": pk} for pk in ids]}
    return client.post(f"/api/v1/chats/{chat.pk}/messages/", body, format="json", **extra)


@pytest.fixture
def ai_core(settings):
    settings.AI_CORE_URL = AI_URL
    settings.BACKEND_URL = "https://tutor.example.com"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(GENERATE, json={"content": "Во второй строке знак потерян."})
        yield mock


def sent_bodies(mock) -> list[dict]:
    return [json.loads(call.request.body) for call in mock.calls if call.request.url == GENERATE]


class TestSend:
    def test_the_message_shows_the_uploads_in_order(self, auth_client, user, chat, make_attachment):
        first, second = make_attachment(user, name="стр1.png"), make_attachment(user, name="стр2.png")
        response = send(auth_client, chat, [second.pk, first.pk])
        assert response.status_code == 201, response.content
        shown = response.json()["user_message"]["attachments"]
        assert shown == [AttachmentSerializer(second).data, AttachmentSerializer(first).data]
        assert shown[0] == auth_client.get(f"/api/v1/attachments/{second.pk}/").json()
        message = Message.objects.get(role="user")
        assert set(Reference.objects.filter(message=message).values_list("attachment_id", flat=True)) == {
            first.pk, second.pk
        }  # fmt: skip
        page = auth_client.get(f"/api/v1/chats/{chat.pk}/messages/").json()["results"]
        assert page[0]["attachments"] == shown

    def test_the_stub_says_what_it_got(self, auth_client, user, chat, make_attachment):
        attachment = make_attachment(user, name="уравнение.png")
        reply = send(auth_client, chat, [attachment.pk]).json()["assistant_message"]["content"]
        assert "Вложения (1): «уравнение.png» (image, 64×48)." in reply

    def test_ai_core_gets_signed_links_it_can_fetch(self, auth_client, user, chat, make_attachment, ai_core):
        attachment = make_attachment(user, name="задача.png")
        assert send(auth_client, chat, [attachment.pk]).status_code == 201
        [sent] = sent_bodies(ai_core)[0]["attachments"]
        assert {key: sent[key] for key in sent if key != "url"} == {
            "id": attachment.pk, "kind": "image", "content_type": "image/png", "name": "задача.png",
            "size": attachment.size, "width": 64, "height": 48,
        }  # fmt: skip
        url = urlsplit(sent["url"])
        assert (url.scheme, url.netloc) == ("https", "tutor.example.com")
        fetched = APIClient().get(f"{url.path}?{url.query}")  # AI-Core has no token
        assert fetched.status_code == 200
        assert b"".join(fetched.streaming_content) == attachment.file.open("rb").read()

    def test_regenerate_and_reply_send_the_same_attachments(
        self, auth_client, user, chat, make_attachment, ai_core
    ):
        attachment = make_attachment(user)
        assert send(auth_client, chat, [attachment.pk]).status_code == 201
        assert auth_client.post(f"/api/v1/chats/{chat.pk}/regenerate/").status_code == 201
        ai_core.replace(responses.POST, GENERATE, status=500)
        assert send(auth_client, chat, [attachment.pk], content="А тут?").status_code == 502
        ai_core.replace(responses.POST, GENERATE, json={"content": "Теперь верно."})
        assert auth_client.post(f"/api/v1/chats/{chat.pk}/reply/").status_code == 201
        ids = [[item["id"] for item in body["attachments"]] for body in sent_bodies(ai_core)]
        assert ids[0] == ids[1] == [attachment.pk] and ids[-1] == [attachment.pk]
        assert len(ids) >= 4  # send, regenerate, the failed send (with its retries), reply

    def test_a_repeated_idempotency_key_keeps_one_message_and_one_reference(
        self, auth_client, user, chat, make_attachment
    ):
        attachment = make_attachment(user)
        first = send(auth_client, chat, [attachment.pk], HTTP_IDEMPOTENCY_KEY="k-1")
        again = send(auth_client, chat, [attachment.pk], HTTP_IDEMPOTENCY_KEY="k-1")
        assert first.json() == again.json()
        assert Reference.objects.count() == 1
        other = send(auth_client, chat, [], HTTP_IDEMPOTENCY_KEY="k-1")  # the same key, another body
        assert other.status_code == 422

    def test_attachments_cost_two_queries_and_none_without(self, auth_client, user, chat, make_attachment):
        attachment = make_attachment(user)
        counts = []
        for ids in ([], [attachment.pk], []):
            with CaptureQueriesContext(connection) as queries:
                assert send(auth_client, chat, ids).status_code == 201
            counts.append(len(queries))
        # The uploads read (one query) and their references inserted (one;
        # on PostgreSQL, in the user message's one statement).
        assert counts[1] - counts[2] == (1 if connection.vendor == "postgresql" else 2)

    @pytest.mark.django_db(transaction=True)  # the foreign key is checked when the write commits
    def test_an_upload_deleted_after_it_was_resolved_is_a_400_and_saves_nothing(
        self, user, chat, make_attachment
    ):
        attachment, before = make_attachment(user), (chat.title, chat.last_message_at)
        resolved = attaching.resolved(user, [attachment.pk])
        Attachment.objects.filter(pk=attachment.pk).delete()  # between resolving and saving
        with pytest.raises(ValidationError, match="deleted meanwhile"):
            saving.user_message_save(chat=chat, content="Вот задача", attachments=resolved)
        assert not Message.objects.exists() and not Reference.objects.exists()
        chat.refresh_from_db()
        assert (chat.title, chat.last_message_at) == before


class TestRefused:
    def test_another_users_upload_is_400_and_nothing_happens(
        self, auth_client, user, other_user, chat, make_attachment, ai_core
    ):
        theirs = make_attachment(other_user)
        response = send(auth_client, chat, [theirs.pk])
        assert response.status_code == 400
        assert "attachments" in response.json()
        assert not Message.objects.exists() and not Reference.objects.exists()
        assert sent_bodies(ai_core) == []
        assert auth_client.get("/api/v1/auth/me/usage/").json()["messages"] == 0

    def test_a_deleted_upload_is_400(self, auth_client, user, chat, make_attachment):
        attachment = make_attachment(user)
        auth_client.delete(f"/api/v1/attachments/{attachment.pk}/")
        assert send(auth_client, chat, [attachment.pk]).status_code == 400
        assert not Message.objects.exists()

    def test_the_same_upload_twice_is_400(self, auth_client, user, chat, make_attachment):
        attachment = make_attachment(user)
        assert send(auth_client, chat, [attachment.pk, attachment.pk]).status_code == 400


class TestTrainingData:
    def test_feedback_keeps_what_was_shown_without_the_name(self, auth_client, user, chat, make_attachment):
        attachment = make_attachment(user, name="Иванов контрольная.png")
        reply = send(auth_client, chat, [attachment.pk]).json()["assistant_message"]
        response = auth_client.post(
            "/api/v1/feedback/",
            {"message": reply["id"], "feedback_type": "detailed", "rating": 5, "allow_training": True},
            format="json",
        )
        assert response.status_code == 201, response.content
        kept = Feedback.objects.get().prompt_attachments
        assert kept == [{
            "kind": "image", "content_type": "image/png", "size": attachment.size, "width": 64, "height": 48,
            "sha256": attachment.sha256,
        }]  # fmt: skip
        assert "Иванов" not in json.dumps(kept, ensure_ascii=False)
