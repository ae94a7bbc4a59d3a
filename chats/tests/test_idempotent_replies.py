"""Issue 24, item 8: /regenerate/ and /reply/ honour Idempotency-Key as a send does."""

import pytest
import responses

from chats.models import Message
from chats.tests import test_variants
from chats.tests.test_streaming import parse
from chats.tests.test_variants import GENERATE, answers, regenerate, send
from usage.models import UserDailyUsage

pytestmark = pytest.mark.django_db


@pytest.fixture
def ai_core(settings):
    settings.AI_CORE_URL = test_variants.AI_URL
    settings.AI_CORE_MAX_RETRIES = 0
    with responses.RequestsMock() as mock:
        yield mock


def test_the_same_key_twice_on_regenerate_makes_one_variant_and_spends_one_reply(auth_client, chat, ai_core):
    answers(ai_core, "Первый ответ", "Второй ответ", "Третий ответ")
    send(auth_client, chat)
    first = regenerate(auth_client, chat, HTTP_IDEMPOTENCY_KEY="double-click")
    again = regenerate(auth_client, chat, HTTP_IDEMPOTENCY_KEY="double-click")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert first.json()["assistant_message"]["variant"] == {"index": 2, "count": 2}
    assert Message.objects.filter(role="assistant").count() == 2
    assert len(ai_core.calls) == 2  # the send and one regeneration
    assert UserDailyUsage.objects.get().messages == 2
    streamed = regenerate(
        auth_client, chat, HTTP_IDEMPOTENCY_KEY="double-click", HTTP_ACCEPT="text/event-stream"
    )
    events = parse(b"".join(streamed.streaming_content))
    assert [name for name, _ in events] == ["delta", "assistant_message"]
    assert events[-1][1] == first.json()["assistant_message"]
    another = regenerate(auth_client, chat, HTTP_IDEMPOTENCY_KEY="another-click")
    assert another.json()["assistant_message"]["variant"] == {"index": 3, "count": 3}


def test_a_repeated_reply_is_replayed_not_refused(auth_client, chat, ai_core):
    ai_core.post(GENERATE, status=502)
    asked = send(auth_client, chat).json()["user_message"]
    answers(ai_core, "Ответ")
    url = f"/api/v1/chats/{chat.id}/reply/"
    first = auth_client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")
    again = auth_client.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="retry-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert Message.objects.get(role="assistant").reply_to_id == asked["id"]
    assert Message.objects.filter(role="assistant").count() == 1
    assert len(ai_core.calls) == 2  # the failed send and one reply
    other_body = auth_client.post(
        url, {"message": asked["id"]}, format="json", HTTP_IDEMPOTENCY_KEY="retry-1"
    )
    assert other_body.status_code == 422 and other_body.json()["code"] == "idempotency_key_reused"
    without_key = auth_client.post(url, {}, format="json")
    assert without_key.status_code == 409 and without_key.json()["code"] == "nothing_to_reply"


def test_a_refused_regeneration_frees_its_key(auth_client, chat, ai_core):
    refused = regenerate(auth_client, chat, HTTP_IDEMPOTENCY_KEY="early")
    assert refused.status_code == 409 and refused.json()["code"] == "nothing_to_regenerate"
    answers(ai_core, "Ответ", "Другой ответ")
    send(auth_client, chat)
    assert regenerate(auth_client, chat, HTTP_IDEMPOTENCY_KEY="early").status_code == 201
