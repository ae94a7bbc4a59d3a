"""Issue 31: the platform on any OpenAI-compatible model server, and tutors
routed to providers. Against a fake OpenAI-compatible server over real HTTP
(it records what it was asked) and the stub's own OpenAI mode."""

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth.models import Group, Permission

from accounts.roles import sync_roles
from aicore import client as aicore
from aicore.routing import Provider, parse_providers, split_model
from aicore.tests.test_stub_server import serve_stub
from attachments.links import signed_url
from chats.models import Message
from chats.tests.test_streaming import deltas, parse
from conftest import free_port
from usage.models import UserDailyUsage

# Streamed replies are written by a thread of their own: it must see the test's rows.
pytestmark = pytest.mark.django_db(transaction=True)

Answer = Callable[[BaseHTTPRequestHandler], None]


def completion(content: str, total_tokens: int | None = 42, finish_reason: str = "stop") -> dict:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "served-model",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}
        ],
    }
    if total_tokens is not None:
        body["usage"] = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": total_tokens}
    return body


def chunk(content: str | None = None, finish_reason: str | None = None) -> dict:
    delta = {"content": content} if content is not None else {}
    return {"object": "chat.completion.chunk", "model": "served-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}  # fmt: skip


def usage_chunk(total_tokens: int) -> dict:
    return {"object": "chat.completion.chunk", "choices": [], "usage": {"total_tokens": total_tokens}}


def as_json(body: dict, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        handler.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return answer


def as_events(events: list[dict | str], pause: float = 0.0) -> Answer:
    """Server-sent events (a string goes as it is: `[DONE]`), the body ended by closing."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Connection", "close")
        handler.end_headers()
        for event in events:
            text = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)
            handler.wfile.write(f"data: {text}\n\n".encode())
            handler.wfile.flush()
            time.sleep(pause)
        handler.close_connection = True

    return answer


def dripping(seconds: float) -> Answer:
    """Headers at once, then a byte of JSON every 0.2 s for `seconds`: never a whole answer."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass  # the backend hung up: what this test wants
        handler.close_connection = True

    return answer


class FakeOpenAI:
    """An OpenAI-compatible server on a port of its own: `answers` are used
    in order (then `completion("Ответ модели")`), every request is kept."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: deque[Answer] = deque()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                fake.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers)})
                as_json({"object": "list", "data": [{"id": "m-small"}, {"id": "m-large"}]})(self)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(
                    {"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body}
                )
                (fake.answers.popleft() if fake.answers else as_json(completion("Ответ модели")))(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"

    @property
    def posted(self) -> list[dict]:
        return [request for request in self.requests if request["method"] == "POST"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def openai_default(settings, fake_openai) -> FakeOpenAI:
    """The default model server is the fake one, spoken to in OpenAI's protocol."""
    settings.AI_CORE_URL = fake_openai.url
    settings.AI_CORE_PROTOCOL = "openai"
    settings.AI_CORE_API_KEY = "sk-test"
    settings.AI_CORE_MAX_RETRIES = 1
    return fake_openai


def send(client, chat, content="Сколько будет 2+2?", **extra):
    return client.post(f"/api/v1/chats/{chat.pk}/messages/", {"content": content}, format="json", **extra)


def stream(client, chat, content="Сколько будет 2+2?"):
    response = send(client, chat, content, HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 200
    return parse(b"".join(response.streaming_content))


class TestChatCompletions:
    def test_a_reply_is_asked_for_and_read_as_chat_completions(self, auth_client, chat, openai_default):
        first = send(auth_client, chat)
        assert first.status_code == 201, first.content
        openai_default.answers.append(as_json(completion("Четыре.", total_tokens=57)))
        second = send(auth_client, chat, "А 3+3?")
        assert second.status_code == 201, second.content

        (asked, again) = openai_default.posted
        version = chat.tutor.current_version
        assert asked["path"] == "/v1/chat/completions"
        assert asked["body"]["model"] == version.model_id
        assert asked["body"]["stream"] is False and "stream_options" not in asked["body"]
        system, question = asked["body"]["messages"]
        assert system["role"] == "system" and question == {"role": "user", "content": "Сколько будет 2+2?"}
        # The tutor's prompt, then the learner context as text (issue 29).
        prompt, learner = system["content"].split("\n\n", 1)
        assert prompt == version.system_prompt
        assert learner.startswith(
            "Learner context:\n- teaching mode: socratic\n- the student asks for: question"
        )
        assert asked["body"]["user"]  # the student's pseudonymous key, never their id
        assert str(chat.user_id) != asked["body"]["user"]
        assert asked["headers"]["Authorization"] == "Bearer sk-test"
        assert asked["headers"]["Idempotency-Key"] and asked["headers"]["X-Request-ID"]
        # The history goes as the messages between the system prompt and the question.
        assert again["body"]["messages"][1:] == [
            {"role": "user", "content": "Сколько будет 2+2?"},
            {"role": "assistant", "content": "Ответ модели"},
            {"role": "user", "content": "А 3+3?"},
        ]
        reply = second.json()["assistant_message"]
        assert reply["content"] == "Четыре."
        stored = Message.objects.get(pk=reply["id"])
        assert stored.tokens_used == 57
        assert stored.metadata["finish_reason"] == "stop"
        assert stored.metadata["served_model"] == "served-model"
        mine = UserDailyUsage.objects.get(user=chat.user)
        assert (mine.messages, mine.tokens) == (2, 42 + 57)

    def test_a_streamed_reply_relays_the_deltas_and_counts_the_usage(self, auth_client, chat, openai_default):
        openai_default.answers.append(
            as_events(
                [
                    chunk("Че"),
                    chunk("тыре"),
                    chunk("."),
                    chunk(finish_reason="stop"),
                    usage_chunk(31),
                    "[DONE]",
                ]
            )
        )
        events = stream(auth_client, chat)
        # (The relay may join pieces that arrive together into one delta.)
        assert deltas(events) == "Четыре."
        assert events[-1][0] == "assistant_message" and events[-1][1]["content"] == "Четыре."
        asked = openai_default.posted[0]["body"]
        assert asked["stream"] is True and asked["stream_options"] == {"include_usage": True}
        stored = Message.objects.get(pk=events[-1][1]["id"])
        assert (stored.tokens_used, stored.metadata["finish_reason"]) == (31, "stop")

    def test_a_stream_without_a_usage_chunk_is_a_reply_without_a_count(
        self, auth_client, chat, openai_default
    ):
        openai_default.answers.append(as_events([chunk("Да."), chunk(finish_reason="stop"), "[DONE]"]))
        events = stream(auth_client, chat)
        assert events[-1][0] == "assistant_message"
        stored = Message.objects.get(pk=events[-1][1]["id"])
        assert (stored.content, stored.tokens_used) == ("Да.", None)

    def test_an_error_object_mid_stream_fails_the_reply(self, auth_client, chat, openai_default):
        openai_default.answers.append(
            as_events([chunk("Нача"), {"error": {"message": "CUDA out of memory", "type": "server_error"}}])
        )
        events = stream(auth_client, chat)
        assert events[-1] == ("error", events[-1][1]) and events[-1][1]["code"] == "ai_core_bad_response"
        assert "CUDA" not in json.dumps(events)  # the server's own words stay in its logs
        asked = Message.objects.get(role=Message.Role.USER)
        assert asked.reply_error == "ai_core_bad_response"
        assert not Message.objects.filter(role=Message.Role.ASSISTANT).exists()

    def test_a_stream_cut_before_done_fails_the_reply(self, auth_client, chat, openai_default):
        openai_default.answers.append(as_events([chunk("Нача")]))
        events = stream(auth_client, chat)
        assert events[-1][0] == "error" and events[-1][1]["code"] == "ai_core_unavailable"

    def test_images_go_as_image_url_parts_with_the_signed_link(
        self, auth_client, user, chat, make_attachment, openai_default, settings
    ):
        settings.BACKEND_URL = "https://tutor.example.com"
        image = make_attachment(user, name="задача.png")
        sent = auth_client.post(
            f"/api/v1/chats/{chat.pk}/messages/",
            {"content": "Что здесь не так?", "attachments": [{"id": image.pk}]},
            format="json",
        )
        assert sent.status_code == 201, sent.content
        question = openai_default.posted[0]["body"]["messages"][-1]
        assert question["role"] == "user"
        text, picture = question["content"]
        assert text == {"type": "text", "text": "Что здесь не так?"}
        assert picture["type"] == "image_url"
        link, _, signature = picture["image_url"]["url"].partition("?")
        assert link == signed_url(image.pk).partition("?")[0]  # the signature carries the time
        assert link.startswith("https://tutor.example.com/") and signature

    def test_a_429_with_retry_after_is_retried_once(self, auth_client, chat, openai_default):
        openai_default.answers.append(
            as_json({"error": {"message": "rate limited"}}, 429, {"Retry-After": "0"})
        )
        sent = send(auth_client, chat)
        assert sent.status_code == 201, sent.content
        first, second = openai_default.posted
        assert first["headers"]["Idempotency-Key"] == second["headers"]["Idempotency-Key"]

    def test_a_429_without_retry_after_is_not_retried(self, auth_client, chat, openai_default):
        openai_default.answers.append(as_json({"error": {"message": "quota"}}, 429))
        sent = send(auth_client, chat)
        assert sent.status_code == 502 and sent.json()["code"] == "ai_core_bad_response"
        assert len(openai_default.posted) == 1

    def test_a_dripping_server_is_cut_at_the_deadline(self, auth_client, chat, openai_default, settings):
        settings.AI_CORE_TIMEOUT = 1.0
        openai_default.answers.append(dripping(6))
        started = time.monotonic()
        sent = send(auth_client, chat)
        assert sent.status_code == 504 and sent.json()["code"] == "ai_core_timeout"
        assert time.monotonic() - started < 3

    def test_an_answer_without_text_is_a_bad_response(self, auth_client, chat, openai_default):
        openai_default.answers.append(
            as_json({"choices": [{"message": {"role": "assistant", "content": None}}]})
        )
        sent = send(auth_client, chat)
        assert sent.status_code == 502 and sent.json()["code"] == "ai_core_bad_response"

    def test_regenerate_asks_the_same_way(self, auth_client, chat, openai_default):
        reply = send(auth_client, chat).json()["assistant_message"]
        again = auth_client.post(f"/api/v1/chats/{chat.pk}/regenerate/")
        assert again.status_code == 201, again.content
        assert again.json()["assistant_message"]["id"] != reply["id"]
        first, second = (request["body"]["messages"] for request in openai_default.posted)
        assert second[1:] == first[1:]
        assert "struggling: none (score 0.0)" in first[0]["content"]
        assert "(score 0.17)" in second[0]["content"]  # asking again is evidence: one regeneration


class TestRouting:
    @pytest.fixture
    def providers(self, settings, fake_openai):
        """`fast` is the fake server; nothing listens where `down` is."""
        settings.AI_PROVIDERS = {
            "fast": Provider("fast", "openai", fake_openai.url, "sk-fast"),
            "down": Provider("down", "openai", f"http://127.0.0.1:{free_port()}/v1"),
        }
        settings.AI_CORE_CIRCUIT_FAILURES = 2
        settings.AI_CORE_MAX_RETRIES = 0
        return fake_openai

    def test_two_tutors_on_two_providers_one_of_them_down(self, auth_client, user, make_tutor, providers):
        fast = make_tutor(model_id="fast/m-small").chats.create(user=user)
        down = make_tutor(model_id="down/m-large").chats.create(user=user)
        for _ in range(2):
            failed = send(auth_client, down)
            assert failed.status_code == 503 and failed.json()["code"] == "ai_core_unavailable"
        paused = send(auth_client, down)  # its breaker is open: not even tried
        assert paused.status_code == 503 and int(paused["Retry-After"]) > 0

        answered = send(auth_client, fast)
        assert answered.status_code == 201, answered.content
        (asked,) = providers.posted
        assert asked["body"]["model"] == "m-small"  # the provider's prefix taken off
        assert asked["headers"]["Authorization"] == "Bearer sk-fast"

    def test_a_model_id_whose_prefix_is_no_provider_goes_to_the_default(
        self, auth_client, user, make_tutor, providers
    ):
        chat = make_tutor(model_id="meta-llama/Llama-3.1-8B").chats.create(user=user)
        sent = send(auth_client, chat)
        assert sent.status_code == 201
        assert sent.json()["assistant_message"]["content"].startswith("[stub · meta-llama/Llama-3.1-8B]")
        assert providers.posted == []

    def test_health_reports_each_provider_by_name(self, api_client, providers):
        body = api_client.get("/api/v1/health/").json()
        assert body["providers"] == {"fast": "ok", "down": "unavailable"}
        assert body["ai_core"] == "stub" and body["status"] == "ok"
        assert {request["path"] for request in providers.requests} == {"/v1/models"}

    def test_the_try_it_panel_asks_the_provider_the_draft_names(self, client, staff_in, providers):
        sync_roles(Group, Permission)  # the roles' migration data is flushed between transactional tests
        staff_in("Content editors")
        draft = {"question": "Как решать x² = 4?", "system_prompt": "Черновик", "model_id": "fast/m-large"}
        answered = client.post("/admin/tutoring/tutor/try/", draft)
        assert answered.status_code == 200
        assert answered.json() == {"draft": {"content": "Ответ модели"}}
        (asked,) = providers.posted
        assert asked["body"]["model"] == "m-large"
        system, question = asked["body"]["messages"]
        assert system["content"].startswith("Черновик\n\nLearner context:\n- teaching mode: socratic")
        assert question == {"role": "user", "content": "Как решать x² = 4?"}

    def test_the_admin_offers_the_providers_models(self, admin_client, tutor, providers):
        page = admin_client.get(f"/admin/tutoring/tutor/{tutor.pk}/change/").content.decode()
        assert 'list="model_id-models"' in page
        assert '<option value="fast/m-small"><option value="fast/m-large"></datalist>' in page
        admin_client.get(f"/admin/tutoring/tutor/{tutor.pk}/change/")
        assert len([r for r in providers.requests if r["path"] == "/v1/models"]) == 1  # cached


def test_health_lists_no_provider_when_there_is_none(api_client):
    assert api_client.get("/api/v1/health/").json()["providers"] == {}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("[1]", "is a JSON object"),
        ("{not json", "is not JSON"),
        ('{"Local": {"url": "http://x"}}', "is not a provider name"),
        ('{"local": {"url": "ftp://x"}}', "url is an http(s) base URL"),
        ('{"local": {"url": "http://x", "protocol": "grpc"}}', "protocol is one of aicore, openai"),
        ('{"local": {"url": "http://x", "key": "sk-1"}}', "has only `protocol`, `url` and `api_key_env`"),
        (
            '{"local": {"url": "http://x", "api_key_env": "MISSING_KEY"}}',
            "MISSING_KEY, the variable with its key",
        ),
        ('{"local": {"url": "http://x", "api_key_env": "lower; rm"}}', "the name of an environment variable"),
    ],
)
def test_a_provider_list_that_cannot_work_is_refused(raw, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_providers(raw, {})


def test_providers_read_their_keys_from_the_environment():
    raw = '{"openai": {"url": "https://api.openai.com/v1/", "api_key_env": "OPENAI_KEY"}, "local": {"url": "http://127.0.0.1:11434/v1"}}'
    providers = parse_providers(raw, {"OPENAI_KEY": "sk-secret"})
    assert providers == {
        "openai": Provider("openai", "openai", "https://api.openai.com/v1", "sk-secret"),
        "local": Provider("local", "openai", "http://127.0.0.1:11434/v1", ""),
    }
    assert split_model("openai/gpt-4o-mini", providers) == ("openai", "gpt-4o-mini")
    assert split_model("openai/", providers) == (None, "openai/")
    assert split_model("gpt-4o-mini", providers) == (None, "gpt-4o-mini")


@pytest.fixture(scope="module")
def openai_stub():
    for url in serve_stub("--protocol", "openai"):
        yield f"{url}/v1"


@pytest.mark.system  # starts the stub's server: not in `-m "not system"`
def test_the_stub_answers_the_openai_protocol_end_to_end(auth_client, chat, settings, openai_stub):
    settings.AI_CORE_URL, settings.AI_CORE_PROTOCOL = openai_stub, "openai"
    sent = send(auth_client, chat, "Что такое дробь?")
    assert sent.status_code == 201, sent.content
    reply = Message.objects.get(pk=sent.json()["assistant_message"]["id"])
    assert (
        reply.content.startswith(f"[stub · {chat.tutor.model_id}]") and "«Что такое дробь?»" in reply.content
    )
    assert reply.tokens_used and reply.tokens_used > 0
    events = stream(auth_client, chat, "А что такое доля?")
    assert "".join(data["content"] for name, data in events if name == "delta") == events[-1][1]["content"]
    assert "Я вижу 2 предыдущих сообщений" in events[-1][1]["content"]
    assert Message.objects.get(pk=events[-1][1]["id"]).tokens_used > 0
    assert aicore.get_client().default.models() == ["stub-model", "stub-model-large"]
