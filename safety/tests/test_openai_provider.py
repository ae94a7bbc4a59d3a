"""The `openai` check against a local OpenAI-compatible /moderations server
(a real HTTP server in a thread, never a mock of the client): its verdict,
its timeout and its failure, under both MODERATION_ON_ERROR settings."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chats.models import Message
from chats.tests.test_streaming import stream_of
from safety.models import Flag

pytestmark = pytest.mark.django_db


class FakeModeration:
    """Flags `self_harm` or `sexual` (OpenAI's names) when the text has the
    trigger word; can be slow or broken."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.delay = 0.0
        self.status = 200
        self.triggers = {"ТРИГГЕР": "sexual/minors", "УНЫНИЕ": "self-harm/intent"}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(
                    {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                )
                time.sleep(fake.delay)
                text = body["input"] if isinstance(body["input"], str) else body["input"][0]["text"]
                found = {name for trigger, name in fake.triggers.items() if trigger in text}
                names = ["sexual", "sexual/minors", "self-harm", "self-harm/intent", "violence", "harassment"]
                answer = {
                    "id": "modr-1",
                    "model": body["model"],
                    "results": [
                        {
                            "flagged": bool(found),
                            "categories": {name: name in found for name in names},
                            "category_scores": {name: 0.97 if name in found else 0.001 for name in names},
                        }
                    ],
                }
                raw = json.dumps(answer).encode()
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def moderation(settings):
    fake = FakeModeration()
    settings.MODERATION_PROVIDERS = ["rules", "openai"]
    settings.MODERATION_URL = fake.url
    settings.MODERATION_API_KEY = "mod-key"
    settings.MODERATION_TIMEOUT = 0.5
    yield fake
    fake.close()


def send(client, chat, content):
    return client.post(f"/api/v1/chats/{chat.id}/messages/", {"content": content}, format="json")


def test_its_verdict_is_mapped_to_the_categories_and_acted_on(moderation, auth_client, chat):
    response = send(auth_client, chat, "какой-то ТРИГГЕР без плохих слов")

    assert response.status_code == 400
    assert response.json()["categories"] == ["sexual"]
    first = moderation.requests[0]
    assert first["path"] == "/v1/moderations" and first["auth"] == "Bearer mod-key"
    assert first["body"] == {"model": "omni-moderation-latest", "input": "какой-то ТРИГГЕР без плохих слов"}
    flag = Flag.objects.get()
    assert flag.providers == "openai" and flag.scores == {"openai": {"sexual/minors": 0.97}}
    assert not Message.objects.exists()


def test_both_checks_run_and_the_strictest_action_wins(moderation, auth_client, chat):
    # rules: profanity (flag); openai: self-harm (respond)
    response = send(auth_client, chat, "блять, такое УНЫНИЕ")
    assert response.status_code == 201
    assert response.json()["assistant_message"]["moderation"] == "safe_reply"
    flag = Flag.objects.get()
    assert flag.categories == ["self_harm", "profanity"] and flag.action == "respond"
    assert flag.providers == "rules,openai"


def test_the_reply_is_checked_by_it_too(moderation, auth_client, chat):
    # The stub echoes the message: the input passes (no trigger in it), the reply is checked separately.
    moderation.triggers = {"Вы написали": "sexual"}
    response = send(auth_client, chat, "Что такое синус?")
    assert response.status_code == 201
    reply = response.json()["assistant_message"]
    assert reply["moderation"] == "withheld"
    assert next(request["body"]["input"] for request in moderation.requests) == "Что такое синус?"
    assert "Вы написали" in moderation.requests[-1]["body"]["input"]


def test_a_timeout_lets_the_message_through_and_records_it_unchecked(moderation, auth_client, chat):
    moderation.delay = 1.5
    started = time.monotonic()
    response = send(auth_client, chat, "Что такое синус?")
    assert response.status_code == 201
    assert time.monotonic() - started < 1.5 * 2  # two checks (in, out), each cut at 0.5 s
    flags = list(Flag.objects.order_by("id"))
    assert [(f.stage, f.unchecked, f.action, f.categories) for f in flags] == [
        ("input", True, "flag", []),
        ("output", True, "flag", []),
    ]
    assert flags[0].providers == "openai (failed)"
    assert flags[0].message_id == Message.objects.get(role="user").id


def test_a_failure_with_on_error_block_is_503_and_saves_nothing(moderation, settings, auth_client, chat):
    settings.MODERATION_ON_ERROR = "block"
    moderation.status = 500
    response = send(auth_client, chat, "Что такое синус?")
    assert response.status_code == 503
    assert response.json()["code"] == "moderation_unavailable" and response["Retry-After"] == "5"
    assert not Message.objects.exists()
    flag = Flag.objects.get()
    assert (flag.unchecked, flag.action) == (True, "block")


def test_a_failing_service_trips_the_circuit_breaker(moderation, settings, auth_client, chat):
    settings.AI_CORE_CIRCUIT_FAILURES = 2
    moderation.status = 500
    for _ in range(2):
        send(auth_client, chat, "Что такое синус?")
    calls = len(moderation.requests)
    send(auth_client, chat, "Что такое косинус?")
    assert len(moderation.requests) == calls  # paused: not called again
    assert Flag.objects.filter(unchecked=True).count() >= 3


@pytest.mark.django_db(transaction=True)
def test_a_streamed_reply_is_checked_at_sentence_ends_and_retracted(
    starter_lists, moderation, auth_client, chat
):
    # The stub streams word by word and echoes the message: its second sentence trips the check.
    moderation.triggers = {"Вы написали": "sexual"}
    response = auth_client.post(
        f"/api/v1/chats/{chat.id}/messages/",
        {"content": "Что такое синус?"},
        format="json",
        HTTP_ACCEPT="text/event-stream",
    )
    events = stream_of(response)
    relayed = "".join(data["content"] for name, data in events if name == "delta")
    assert relayed.startswith("[stub")  # the text before the sentence that was found
    assert events[-1][0] == "moderated" and events[-1][1]["moderation"] == "withheld"
    saved = Message.objects.get(role="assistant")
    assert saved.content == events[-1][1]["content"] and "Вы написали" not in saved.content
    inputs = [request["body"]["input"] for request in moderation.requests]
    assert inputs[0] == "Что такое синус?" and len(inputs) >= 2


def test_a_sends_images_are_checked_by_their_signed_links(
    moderation, auth_client, user, chat, make_attachment, settings
):
    settings.BACKEND_URL = "https://tutor.example.com"
    image = make_attachment(user, name="фото.png")
    response = auth_client.post(
        f"/api/v1/chats/{chat.id}/messages/",
        {"content": "Что на фото?", "attachments": [{"id": image.pk}]},
        format="json",
    )
    assert response.status_code == 201
    text, picture = moderation.requests[0]["body"]["input"]
    assert text == {"type": "text", "text": "Что на фото?"}
    assert picture["type"] == "image_url"
    assert picture["image_url"]["url"].startswith(
        f"https://tutor.example.com/api/v1/attachments/{image.pk}/content/?signature="
    )
