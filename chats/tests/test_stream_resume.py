"""Issue 24, items 1, 2 and 9: SSE ids and resuming with Last-Event-ID,
limits on re-attached streams, and replies whose process died."""

import time

import pytest
import responses

from aicore.tests.test_stub_server import serve_stub
from chats.models import IdempotencyKey, Message
from chats.replies import heartbeat, idempotency, live
from chats.tests.test_streaming import (
    GENERATE,
    SSE,
    deltas,
    parse,
    send,
    stream_of,
    wait_for,
)
from conftest import bearer_client
from usage.models import UserDailyUsage

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def slow_stub():
    """The real stub over HTTP, one word every 0.05 s."""
    yield from serve_stub("--chunk-delay", "0.05")


def blocks(raw: bytes) -> list[dict[str, str]]:
    """Each SSE block as {field: value}, comments left out."""
    found = []
    for block in raw.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if fields:
            found.append(fields)
    return found


def test_a_stream_starts_with_retry_and_every_delta_carries_the_characters_so_far(auth_client, chat):
    response = send(auth_client, chat)
    assert response.status_code == 200
    raw = b"".join(response.streaming_content)
    parsed = blocks(raw)
    assert parsed[0] == {"retry": "3000"}
    so_far = 0
    ids = []
    for fields, (name, data) in zip(parsed[1:], parse(raw), strict=True):
        if name == "delta":
            so_far += len(data["content"])
            ids.append(int(fields["id"]))
            assert int(fields["id"]) == so_far
        else:
            assert "id" not in fields
    assert len(ids) > 5 and ids[-1] == len(Message.objects.get(role="assistant").content)


def running_reply(chat, text: str) -> Message:
    """A user message whose reply is being written (as another process would publish it)."""
    asked = Message.objects.create(chat=chat, role="user", content="Вопрос")
    live.grew(chat.pk, asked.pk, text)
    return asked


def finish(chat, asked: Message, text: str) -> Message:
    reply = Message.objects.create(chat=chat, role="assistant", content=text, reply_to=asked)
    live.finished(chat.pk, asked.pk, text, event="assistant_message", data={"message": reply.pk})
    return reply


@pytest.mark.parametrize("how", ["header", "query"])
def test_re_attaching_with_last_event_id_sends_only_what_was_missed(auth_client, chat, how):
    text = "Корни уравнения: 2 и 3."
    asked = running_reply(chat, text[:10])
    finish(chat, asked, text)
    live.grew(chat.pk, asked.pk, text[:10])  # still running when the client comes back
    url = f"/api/v1/chats/{chat.id}/stream/"
    if how == "header":
        response = auth_client.get(url, HTTP_LAST_EVENT_ID="7", **SSE)
    else:
        response = auth_client.get(url, {"last_event_id": 7}, **SSE)
    chunks = iter(response.streaming_content)
    assert next(chunks) == b"retry: 3000\n\n"
    first = blocks(next(chunks))[0]
    assert first["event"] == "delta" and first["id"] == "10"
    assert parse(f"event: delta\ndata: {first['data']}\n\n".encode())[0][1]["content"] == text[7:10]
    live.finished(chat.pk, asked.pk, text, event="assistant_message", data={"message": asked.pk + 1})
    rest = parse(b"".join(chunks))
    assert deltas(rest) == text[10:]
    assert rest[-1][0] == "assistant_message" and rest[-1][1]["content"] == text


@pytest.mark.parametrize("value", ["-1", "abc", "1.5"])
def test_a_bad_resume_position_is_400(auth_client, chat, value):
    running_reply(chat, "Текст")
    response = auth_client.get(f"/api/v1/chats/{chat.id}/stream/", HTTP_LAST_EVENT_ID=value, **SSE)
    assert response.status_code == 400
    assert "last_event_id" in response.json()


def test_at_most_two_streams_per_chat_and_five_per_student(user, make_exchange, tutor):
    from chats.models import Chat

    client = bearer_client(user)
    chats = [Chat.objects.create(user=user, tutor=tutor) for _ in range(3)]
    for chat in chats:
        running_reply(chat, "Пишу")
    url = "/api/v1/chats/{}/stream/"
    opened = [client.get(url.format(chats[0].id), **SSE) for _ in range(2)]
    assert [r.status_code for r in opened] == [200, 200]
    third = client.get(url.format(chats[0].id), **SSE)
    assert third.status_code == 429
    assert third.json()["code"] == "too_many_streams"
    opened += [client.get(url.format(chat.id), **SSE) for chat in chats[1:] for _ in range(2)]
    assert [r.status_code for r in opened] == [200] * 5 + [429]  # the student's sixth
    opened[0].close()  # a tab closed: its place is free again
    assert client.get(url.format(chats[1].id), **SSE).status_code == 429  # that chat has two
    again = client.get(url.format(chats[0].id), **SSE)
    assert again.status_code == 200
    for response in [*opened, again]:
        response.close()


@responses.activate
def test_an_error_event_carries_retry_after(settings, auth_client, chat):
    settings.AI_CORE_URL = "http://ai-core.test"
    settings.AI_CORE_MAX_RETRIES = 0
    responses.post(GENERATE, status=503, headers={"Retry-After": "7"})
    events = stream_of(send(auth_client, chat))
    assert events[-1][0] == "error"
    assert events[-1][1]["code"] == "ai_core_unavailable" and events[-1][1]["retry_after"] == 7


class TestAReplyWhoseProcessDied:
    """What another process's heartbeat thread does (heartbeat.reap) when a
    reply stops beating: here the dead process is written into the index
    as it would have left it."""

    def die_mid_reply(self, chat, user, key: str | None = None) -> Message:
        from usage import services as usage

        reservation = usage.reserve(user)
        asked = running_reply(chat, "Половина отв")
        if key is not None:
            IdempotencyKey.objects.create(
                user=user,
                key=key,
                fingerprint=idempotency.fingerprint(chat=chat.pk, content="Вопрос", attachments=[]),
                user_message=asked,
                created_at=asked.created_at,
            )
        dead = heartbeat.Watched(chat.pk, asked.pk, user.pk, reservation.day, False, "dead")
        from django.core.cache import cache

        # Its last beat is now: this process's own heartbeat thread (which reaps
        # every second too) leaves it alone; the reaps below look from later.
        cache.set(heartbeat.INDEX_KEY, {dead.member: time.time()}, None)
        return asked

    def test_it_is_ended_as_interrupted_and_the_reservation_given_back(self, settings, user, chat):
        settings.AI_DAILY_MESSAGES_PER_USER = 3
        client = bearer_client(user)
        asked = self.die_mid_reply(chat, user, key="k-1")
        assert UserDailyUsage.objects.get(user=user).reserved == 1
        page = client.get(f"/api/v1/chats/{chat.id}/messages/").json()
        assert page["reply_in_progress"] is True and page["results"][0]["reply_status"] == "pending"
        follower = client.get(f"/api/v1/chats/{chat.id}/stream/", **SSE)
        assert follower.status_code == 200

        later = time.time() + heartbeat.DEAD_SECONDS + 1
        ended = heartbeat.reap(now=later)

        assert [watched.user_message_id for watched in ended] == [asked.pk]
        assert heartbeat.reap(now=later) == []  # ended once
        assert UserDailyUsage.objects.get(user=user).reserved == 0
        events = parse(b"".join(follower.streaming_content))
        assert events[0] == ("delta", {"content": "Половина отв"})
        assert events[-1][0] == "error" and events[-1][1]["code"] == "reply_interrupted"
        page = client.get(f"/api/v1/chats/{chat.id}/messages/").json()
        assert page["reply_in_progress"] is False
        shown = page["results"][0]
        assert (shown["reply_status"], shown["reply_error"]) == ("failed", "reply_interrupted")
        assert IdempotencyKey.objects.get().state == IdempotencyKey.State.FAILED
        # The same key is retried at once, and answers the saved message.
        retried = client.post(
            f"/api/v1/chats/{chat.id}/messages/",
            {"content": "Вопрос"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="k-1",
        )
        assert retried.status_code == 201, retried.content
        assert retried.json()["user_message"]["id"] == asked.pk
        assert Message.objects.filter(role="user").count() == 1

    def test_a_reply_still_beating_is_left_alone(self, settings, user, chat):
        from django.core.cache import cache

        asked = running_reply(chat, "Пишу")
        alive = heartbeat.Watched(chat.pk, asked.pk, user.pk, asked.created_at.date(), False, "alive")
        cache.set(heartbeat.INDEX_KEY, {alive.member: time.time() - 2}, None)
        assert heartbeat.reap() == []
        assert Message.objects.get(pk=asked.pk).reply_error == ""

    def test_a_reply_of_this_process_beats_while_it_runs_and_leaves_the_index_at_its_end(
        self, slow_stub, settings, auth_client, chat
    ):
        from django.core.cache import cache

        settings.AI_CORE_URL = slow_stub
        response = send(auth_client, chat)
        chunks = iter(response.streaming_content)
        while b"event: delta" not in next(chunks):
            pass
        heartbeat.beat()
        index = cache.get(heartbeat.INDEX_KEY)
        assert len(index) == 1 and next(iter(index)).startswith(f"{chat.pk}:")
        assert heartbeat.reap(now=time.time()) == []  # it beats: not dead
        b"".join(chunks)
        wait_for(lambda: Message.objects.filter(role="assistant").exists())
        wait_for(lambda: not cache.get(heartbeat.INDEX_KEY))
