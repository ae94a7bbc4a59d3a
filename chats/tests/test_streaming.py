"""Streaming replies (server-sent events): event order and shapes, AI-Core
streaming or not, failures before and during a stream, refusals as JSON, a
client that goes away, re-attaching, idempotent replays, two at once."""

import json
import time

import pytest
import responses
from django.db import OperationalError

from aicore.tests.test_stub_server import serve_stub
from chats.models import Chat, IdempotencyKey, Message
from chats.replies import live
from conftest import bearer_client, raw_ai_core, requires_postgresql, run_in_threads

AI_URL = "http://ai-core.test"
GENERATE = f"{AI_URL}/api/v1/generate"
SSE = {"HTTP_ACCEPT": "text/event-stream"}
QUESTION = "Как решить x² − 5x + 6 = 0?"

# The reply is generated in a thread of its own, with its own connection.
pytestmark = pytest.mark.django_db(transaction=True)


def parse(raw: bytes) -> list[tuple[str, object]]:
    events = []
    for block in raw.decode().split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith(":")]
        if not any(line.startswith("event: ") for line in lines):
            continue  # a comment, or the stream's `retry:`
        name = next(line[7:] for line in lines if line.startswith("event: "))
        data = json.loads(next(line[6:] for line in lines if line.startswith("data: ")))
        events.append((name, data))
    return events


def send(client, chat, content=QUESTION, **headers):
    return client.post(
        f"/api/v1/chats/{chat.id}/messages/", {"content": content}, format="json", **SSE, **headers
    )


def stream_of(response) -> list[tuple[str, object]]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/event-stream")
    return parse(b"".join(response.streaming_content))


def deltas(events) -> str:
    return "".join(data["content"] for name, data in events if name == "delta")


def sse_body(*events: dict) -> str:
    return "".join(f"data: {json.dumps(event, ensure_ascii=False)}\n\n" for event in events)


def test_a_streamed_send_with_the_stub(auth_client, chat):
    response = send(auth_client, chat)
    assert response["Cache-Control"] == "no-cache"
    assert response["X-Accel-Buffering"] == "no"
    events = stream_of(response)
    names = [name for name, _ in events]
    assert names[0] == "user_message" and names[-1] == "assistant_message"
    assert set(names[1:-1]) == {"delta"} and len(names) > 5  # word by word
    user_message, reply = events[0][1], events[-1][1]
    assert user_message["content"] == QUESTION
    saved = Message.objects.get(role="assistant")
    assert deltas(events) == reply["content"] == saved.content
    assert reply["id"] == saved.id and saved.reply_to_id == user_message["id"]
    assert set(reply["metadata"]) == {"tokens_used", "processing_time", "latency_ms"}


@responses.activate
def test_ai_core_events_are_relayed_and_their_extra_fields_kept(settings, auth_client, chat):
    settings.AI_CORE_URL = AI_URL
    body = sse_body({"delta": "Корни: "}, {"delta": "2 и 3."}, {"done": True, "tokens_used": 7})
    responses.post(GENERATE, body=body, content_type="text/event-stream")
    events = stream_of(send(auth_client, chat))
    # Relayed as they came, except the last unfinished word, held until
    # the built-in safety check has seen it whole.
    assert [data for name, data in events if name == "delta"] == [
        {"content": "Корни: "},
        {"content": "2 и "},
        {"content": "3."},
    ]
    assert json.loads(responses.calls[0].request.body)["stream"] is True
    saved = Message.objects.get(role="assistant")
    assert saved.content == "Корни: 2 и 3." and saved.metadata["tokens_used"] == 7


@responses.activate
def test_an_ai_core_that_answers_json_is_relayed_as_one_delta(settings, auth_client, chat):
    settings.AI_CORE_URL = AI_URL
    responses.post(GENERATE, json={"content": "Целиком.", "tokens_used": 3})
    events = stream_of(send(auth_client, chat))
    assert [name for name, _ in events] == ["user_message", "delta", "assistant_message"]
    assert deltas(events) == "Целиком." == Message.objects.get(role="assistant").content


@responses.activate
@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ({"status": 500}, "ai_core_bad_response"),
        # Two pieces, then the stream breaks off: no half reply is saved.
        ({"body": sse_body({"delta": "Сначала "}, {"delta": "мы"}), "content_type": "text/event-stream"},
         "ai_core_unavailable"),
        ({"body": sse_body({"delta": 42}), "content_type": "text/event-stream"}, "ai_core_bad_response"),
    ],
)  # fmt: skip
def test_ai_core_failing_before_or_during_the_stream_is_an_error_event(
    settings, auth_client, chat, answer, code
):
    settings.AI_CORE_URL = AI_URL
    settings.AI_CORE_MAX_RETRIES = 0
    responses.post(GENERATE, **answer)
    events = stream_of(send(auth_client, chat))
    assert events[0][0] == "user_message" and events[-1][0] == "error"
    error = events[-1][1]
    assert error["code"] == code and error["detail"]
    assert error["user_message"]["content"] == QUESTION
    assert list(Message.objects.values_list("role", flat=True)) == ["user"]


@pytest.fixture
def stalling_ai_core(settings):
    """Sends two events, then either nothing (stall) or an event every 0.3 s (drip)."""
    mode = {"after": "stall"}

    def answer(conn, stop) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(2 if mode["after"] == "stall" else 40):
            data = sse_body({"delta": "слово "}).encode()
            conn.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            if stop.wait(0.3):
                return
        stop.wait(10)

    with raw_ai_core(settings, answer):
        yield mode


@pytest.mark.parametrize(
    ("after", "timeouts"), [("stall", {"AI_CORE_TIMEOUT": 1}), ("drip", {"AI_CORE_STREAM_TIMEOUT": 2})]
)
def test_a_stream_that_stalls_or_never_ends_times_out(
    stalling_ai_core, settings, auth_client, chat, after, timeouts
):
    """Between pieces: AI_CORE_TIMEOUT; the whole reply: AI_CORE_STREAM_TIMEOUT (40 pieces take 12 s)."""
    stalling_ai_core["after"] = after
    for name, value in timeouts.items():
        setattr(settings, name, value)
    events = stream_of(send(auth_client, chat))
    assert deltas(events).startswith("слово слово ")
    assert events[-1][0] == "error" and events[-1][1]["code"] == "ai_core_timeout"
    assert not Message.objects.filter(role="assistant").exists()


def test_refusals_before_the_stream_are_json(api_client, auth_client, other_client, chat, make_tutor):
    assert (
        api_client.post(
            f"/api/v1/chats/{chat.id}/messages/", {"content": "x"}, format="json", **SSE
        ).status_code
        == 401
    )
    assert send(other_client, chat).status_code == 404
    blank = send(auth_client, chat, content="   ")
    assert blank.status_code == 400 and blank["Content-Type"] == "application/json"
    chat.tutor.is_active = False
    chat.tutor.save()
    refused = send(auth_client, chat)
    assert refused.status_code == 409 and refused.json()["code"] == "tutor_unavailable"
    assert not Message.objects.exists()
    nothing = auth_client.post(f"/api/v1/chats/{chat.id}/reply/", **SSE)
    assert nothing.status_code == 409 and nothing.json()["code"] == "nothing_to_reply"


def test_a_streamed_reply_to_the_last_message(auth_client, chat):
    Message.objects.create(chat=chat, role="user", content="Без ответа")
    events = stream_of(auth_client.post(f"/api/v1/chats/{chat.id}/reply/", **SSE))
    assert events[0][0] == "delta" and events[-1][0] == "assistant_message"
    assert deltas(events) == Message.objects.get(role="assistant").content
    again = auth_client.post(f"/api/v1/chats/{chat.id}/reply/", **SSE)
    assert again.status_code == 409 and again.json()["code"] == "nothing_to_reply"


@pytest.fixture(scope="module")
def slow_words():
    """The real stub over HTTP, one word every 0.05 s (a reply takes about 1.5 s)."""
    yield from serve_stub("--chunk-delay", "0.05")


def wait_for(predicate, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OperationalError as exc:
            # SQLite's shared in-memory test database refuses a read while the
            # reply thread's write transaction holds the table (no busy wait).
            if "locked" not in str(exc):
                raise
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_client_that_goes_away_loses_nothing(slow_words, settings, auth_client, chat):
    settings.AI_CORE_URL = slow_words
    response = send(auth_client, chat)
    received = b""
    for chunk in response.streaming_content:
        received += chunk
        if b"event: delta" in received:
            break
    response.close()  # the tab is closed after the first word
    assert auth_client.get(f"/api/v1/chats/{chat.id}/messages/").json()["reply_in_progress"] is True
    wait_for(lambda: Message.objects.filter(role="assistant").exists())
    saved = Message.objects.get(role="assistant")
    assert QUESTION in saved.content and saved.content.endswith("метод решения.")
    assert auth_client.get(f"/api/v1/chats/{chat.id}/messages/").json()["reply_in_progress"] is False


def test_re_attaching_gets_everything_so_far_then_the_rest(slow_words, settings, user, chat):
    settings.AI_CORE_URL = slow_words
    first_tab, second_tab = bearer_client(user), bearer_client(user)
    assert second_tab.get(f"/api/v1/chats/{chat.id}/stream/").status_code == 204  # nothing runs yet
    response = send(first_tab, chat)
    received = b""
    for chunk in response.streaming_content:
        received += chunk
        if received.count(b"event: delta") >= 3:
            break
    response.close()
    followed = stream_of(second_tab.get(f"/api/v1/chats/{chat.id}/stream/", **SSE))
    assert followed[0][0] == "delta" and len(followed[0][1]["content"]) > 0
    assert followed[-1][0] == "assistant_message"
    saved = Message.objects.get(role="assistant")
    assert deltas(followed) == saved.content == followed[-1][1]["content"]
    assert second_tab.get(f"/api/v1/chats/{chat.id}/stream/").status_code == 204


def test_a_finished_key_is_replayed_as_a_stream(auth_client, chat):
    first = stream_of(send(auth_client, chat, HTTP_IDEMPOTENCY_KEY="tab-1"))
    assert IdempotencyKey.objects.get().state == IdempotencyKey.State.DONE
    replayed = stream_of(send(auth_client, chat, HTTP_IDEMPOTENCY_KEY="tab-1"))
    assert [name for name, _ in replayed] == ["user_message", "delta", "assistant_message"]
    # The live stream announced the message while its reply was pending; the
    # replay tells how it ended.
    assert (first[0][1]["reply_status"], replayed[0][1]["reply_status"]) == ("pending", "answered")
    assert replayed[0][1] == first[0][1] | {"reply_status": "answered"} and replayed[-1][1] == first[-1][1]
    assert deltas(replayed) == deltas(first)
    assert Message.objects.count() == 2
    as_json = auth_client.post(
        f"/api/v1/chats/{chat.id}/messages/",
        {"content": QUESTION},
        format="json",
        HTTP_IDEMPOTENCY_KEY="tab-1",
    )
    assert as_json.status_code == 201 and as_json.json()["assistant_message"] == first[-1][1]


@requires_postgresql
def test_two_streams_into_one_chat_at_once(user, chat):
    def stream(index: int) -> list:
        return stream_of(send(bearer_client(user), Chat.objects.get(pk=chat.pk), content=f"Вопрос {index}"))

    results = run_in_threads(2, stream)
    assert all(isinstance(events, list) for events in results), results
    for index, events in enumerate(results):
        assert events[-1][0] == "assistant_message"
        assert f"Вопрос {index}" in deltas(events)
    assert Message.objects.filter(chat=chat, role="assistant").count() == 2


@requires_postgresql
def test_an_open_stream_holds_no_database_connection(auth_client, chat):
    """400 open streams emptied the pool when each relaying thread kept its connection."""
    from django.db import connection

    response = send(auth_client, chat)
    assert connection.connection is None  # handed back before the first byte is relayed
    assert stream_of(response)[-1][0] == "assistant_message"


def test_keep_alive_comments_while_the_tutor_is_quiet(slow_words, settings, auth_client, chat, monkeypatch):
    """A comment whenever nothing was sent for KEEPALIVE_SECONDS (15 s; here 10 ms against 50 ms words)."""
    from chats.replies import streaming

    monkeypatch.setattr(streaming, "KEEPALIVE_SECONDS", 0.01)
    settings.AI_CORE_URL = slow_words
    raw = b"".join(send(auth_client, chat).streaming_content)
    assert raw.count(b": keep-alive\n\n") >= 3
    assert parse(raw)[-1][0] == "assistant_message"  # comments do not disturb the events


def test_a_streamed_send_counts_against_the_ai_budget(auth_client, chat, monkeypatch):
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "ai_send": "2/min"}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    stream_of(send(auth_client, chat))
    auth_client.post(f"/api/v1/chats/{chat.id}/messages/", {"content": "JSON"}, format="json")
    throttled = send(auth_client, chat)
    assert throttled.status_code == 429 and throttled.json()["code"] == "throttled"
    assert Message.objects.filter(role="user").count() == 2


@responses.activate
def test_a_chat_cleared_while_the_tutor_writes_ends_in_reply_discarded(settings, auth_client, chat):
    from chats import services

    settings.AI_CORE_URL = AI_URL

    def clear_meanwhile(request):
        services.chat_clear_history(chat=Chat.objects.get(pk=chat.pk))
        return 200, {"Content-Type": "text/event-stream"}, sse_body({"delta": "поздно"}, {"done": True})

    responses.add_callback(responses.POST, GENERATE, callback=clear_meanwhile)
    events = stream_of(send(auth_client, chat))
    assert events[-1][0] == "error"
    assert events[-1][1]["code"] == "reply_discarded"
    assert events[-1][1]["user_message"]["content"] == QUESTION
    assert not Message.objects.exists()


@responses.activate
def test_a_streamed_retry_of_a_failed_key_checks_the_tutor_again(settings, auth_client, chat):
    settings.AI_CORE_URL = AI_URL
    settings.AI_CORE_MAX_RETRIES = 0
    responses.post(GENERATE, status=500)
    assert (
        stream_of(send(auth_client, chat, HTTP_IDEMPOTENCY_KEY="k"))[-1][1]["code"] == "ai_core_bad_response"
    )
    chat.tutor.is_active = False
    chat.tutor.save()
    refused = send(auth_client, chat, HTTP_IDEMPOTENCY_KEY="k")
    assert refused.status_code == 409 and refused.json()["code"] == "tutor_unavailable"
    assert len(responses.calls) == 1
    assert IdempotencyKey.objects.get().state == IdempotencyKey.State.FAILED


def test_the_text_so_far_is_written_at_most_every_publish_seconds(monkeypatch):
    """Issue 17: a cache write per streamed word was 70 % of a word's CPU."""
    clock = [1000.0]
    monkeypatch.setattr(live.time, "monotonic", lambda: clock[0])
    writes = []
    monkeypatch.setattr(live, "_set", lambda chat_id, entry, seconds, **index: writes.append(entry["text"]))
    progress = live.Publisher(7, 70)
    for word in ["Раз", "Раз два", "Раз два три"]:
        progress.grew(word)
        clock[0] += live.PUBLISH_SECONDS / 3
    progress.grew("Раз два три четыре")  # a whole PUBLISH_SECONDS after the first word
    live.finished(7, 70, "Раз два три четыре пять", event="assistant_message", data={"message": 1})
    assert writes == ["", "Раз", "Раз два три четыре", "Раз два три четыре пять"]
