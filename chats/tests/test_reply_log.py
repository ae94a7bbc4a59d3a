"""Issue 26, item 7: one log line per reply, however it ended, carrying the
request id of the request that asked for it, although a streamed reply is
written in a thread of its own; and a streamed send's access line written
when the stream ends, not when its headers go out."""

import logging

import pytest
import responses

from chats.models import Message
from chats.tests.test_streaming import AI_URL, GENERATE, send, stream_of
from tutor_platform.logging import RequestIDFilter

pytestmark = pytest.mark.django_db(transaction=True)  # a streamed reply has a connection of its own


@pytest.fixture
def logged(caplog):
    """caplog, its records stamped with the request id as the real handler's are."""
    stamp = RequestIDFilter()
    caplog.handler.addFilter(stamp)
    caplog.set_level(logging.INFO)
    yield caplog
    caplog.handler.removeFilter(stamp)


def lines_of(caplog, logger: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == logger]


def test_a_streamed_reply_is_one_line_from_its_thread_with_the_requests_id(auth_client, chat, logged):
    events = stream_of(send(auth_client, chat, HTTP_X_REQUEST_ID="send-abc"))
    asked, reply = Message.objects.order_by("id")

    (line,) = lines_of(logged, "chats.replies")
    assert line.threadName == f"reply-{asked.pk}"  # written by the generation thread...
    assert line.request_id == "send-abc"  # ...with the request's context
    assert line.levelname == "INFO"
    assert (line.kind, line.outcome, line.code) == ("send", "answered", None)
    assert (line.chat, line.user_message, line.reply) == (chat.pk, asked.pk, reply.pk)
    assert line.tokens == reply.tokens_used and reply.tokens_used > 0
    assert line.getMessage() == (
        f"send answered chat={chat.pk} message={asked.pk} reply={reply.pk} tokens={reply.tokens_used} "
        f"{line.duration_ms:.1f}ms"
    )
    assert events[-1][1]["id"] == reply.pk
    # The access line is written once the stream has ended: after the reply's, and as long.
    (access,) = lines_of(logged, "tutor_platform.access")
    assert logged.records.index(access) > logged.records.index(line)
    assert (access.request_id, access.method, access.status) == ("send-abc", "POST", 200)
    assert access.duration_ms >= line.duration_ms
    assert access.client == "127.0.0.1" and access.user_id == chat.user_id


@responses.activate
@pytest.mark.parametrize("stream", [True, False])
def test_a_failed_reply_is_a_warning_with_its_code(settings, auth_client, chat, logged, stream):
    settings.AI_CORE_URL = AI_URL
    settings.AI_CORE_MAX_RETRIES = 0
    responses.post(GENERATE, status=500)
    if stream:
        code = stream_of(send(auth_client, chat, HTTP_X_REQUEST_ID="fails-1"))[-1][1]["code"]
    else:
        answer = auth_client.post(
            f"/api/v1/chats/{chat.id}/messages/",
            {"content": "Вопрос"},
            format="json",
            HTTP_X_REQUEST_ID="fails-1",
        )
        assert answer.status_code == 502
        code = answer.json()["code"]
    asked = Message.objects.get()

    (line,) = lines_of(logged, "chats.replies")
    assert line.levelname == "WARNING" and line.request_id == "fails-1"
    assert (line.outcome, line.code, line.reply, line.tokens) == ("failed", code, None, None)
    assert code == "ai_core_bad_response" and asked.reply_error == code
    assert line.getMessage().startswith(
        f"send ai_core_bad_response chat={chat.pk} message={asked.pk} reply=- tokens=- "
    )
    (access,) = lines_of(logged, "tutor_platform.access")
    assert access.status == (200 if stream else 502)


def test_a_safe_reply_and_a_regeneration_are_lines_too(starter_lists, auth_client, chat, logged):
    safe = auth_client.post(
        f"/api/v1/chats/{chat.id}/messages/", {"content": "Я больше не хочу жить"}, format="json"
    )
    assert safe.status_code == 201
    asked = auth_client.post(
        f"/api/v1/chats/{chat.id}/messages/", {"content": "Что такое дробь?"}, format="json"
    )
    again = auth_client.post(f"/api/v1/chats/{chat.id}/regenerate/")
    assert again.status_code == 201

    lines = lines_of(logged, "chats.replies")
    assert [(line.kind, line.outcome) for line in lines] == [
        ("send", "safe_reply"),
        ("send", "answered"),
        ("regenerate", "answered"),
    ]
    assert lines[0].reply == safe.json()["assistant_message"]["id"] and lines[0].tokens is None
    assert lines[1].user_message == lines[2].user_message == asked.json()["user_message"]["id"]
    assert lines[2].reply == again.json()["assistant_message"]["id"]
