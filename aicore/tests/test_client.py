"""AI-Core faked at the HTTP boundary: what is sent, and how each failure maps."""

import json

import pytest
import requests
import responses
from django.db import connection
from responses import matchers
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from aicore.circuit import CircuitBreaker
from chats.models import Message
from conftest import raw_ai_core
from tutor_platform.pseudonyms import student_key

AI_URL = "http://ai-core.test"
GENERATE = f"{AI_URL}/api/v1/generate"
HEALTH = f"{AI_URL}/api/v1/health"


@pytest.fixture
def ai_core(settings):
    settings.AI_CORE_URL = AI_URL
    settings.AI_CORE_TIMEOUT = 7
    settings.AI_CORE_CONNECT_TIMEOUT = 2
    settings.AI_CORE_MAX_RETRIES = 2
    settings.AI_CORE_API_KEY = ""
    with responses.RequestsMock() as mock:
        yield mock


def direct_client(breaker: CircuitBreaker | None = None, url: str = AI_URL):
    """An AICoreClient made directly, not from the settings."""
    from aicore.client import AICoreClient

    return AICoreClient(
        base_url=url,
        timeout=1,
        stream_timeout=1,
        connect_timeout=1,
        max_retries=0,
        retry_backoff=0,
        api_key="",
        breaker=breaker or CircuitBreaker(failure_threshold=5, reset_seconds=30),
    )


def refused() -> requests.ConnectionError:
    """What requests raises when nothing listens: the request never left."""
    cause = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    return requests.ConnectionError(MaxRetryError(None, GENERATE, cause))


def dropped() -> requests.ConnectionError:
    """What requests raises when the connection drops after the request was sent."""
    return requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")))


def send(client, chat, content="Объясните теорему Пифагора", headers=None):
    return client.post(
        f"/api/v1/chats/{chat.id}/messages/", {"content": content}, format="json", headers=headers or {}
    )


def assert_failure_kept_user_message(response, status: int, code: str, content: str) -> None:
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code
    assert body["detail"]
    assert body["user_message"]["content"] == content
    assert body["user_message"]["role"] == "user"
    assert list(Message.objects.values_list("role", "content")) == [("user", content)]


@pytest.mark.django_db
class TestRequest:
    def test_sends_the_contract_body_and_headers(self, ai_core, settings, auth_client, chat, make_exchange):
        settings.AI_CORE_API_KEY = "secret-key"
        make_exchange(chat, question="Привет", answer="Здравствуйте!")
        ai_core.post(
            GENERATE,
            json={"content": "a² + b² = c²", "tokens_used": 42, "processing_time": 1.5, "confidence": 0.9},
        )
        response = send(auth_client, chat, headers={"X-Request-ID": "req-abc-1"})
        assert response.status_code == 201
        request = ai_core.calls[0].request
        sent = json.loads(request.body)
        user_message = Message.objects.filter(role="user").last()
        assert sent == {
            "student": student_key(chat.user_id),
            "chat_id": chat.id,
            "tutor_id": chat.tutor.id,
            "tutor_version": 1,
            "model_id": "math-v1",
            "knowledge_base_id": "kb-math",
            "system_prompt": chat.tutor.system_prompt,
            "message": "Объясните теорему Пифагора",
            "history": [
                {"role": "user", "content": "Привет"},
                {"role": "assistant", "content": "Здравствуйте!"},
            ],
            "attachments": [],
            "learner": {
                "profile": {"grade": None, "level": None, "language": None, "goals": ""},
                "teaching_mode": "socratic",
                "intent": "question",
                "progress_minutes": 0,
                "struggle": {"level": "none", "score": 0.0, "evidence": []},
            },
        }
        assert request.headers["X-Request-ID"] == "req-abc-1"
        assert request.headers["Authorization"] == "Bearer secret-key"
        assert request.req_kwargs["timeout"] == (2, 7)
        answer = Message.objects.get(reply_to=user_message)
        assert answer.content == "a² + b² = c²"
        assert answer.metadata["tokens_used"] == 42
        assert answer.metadata["processing_time"] == 1.5
        assert answer.metadata["confidence"] == 0.9
        assert answer.metadata["model_id"] == "math-v1"
        assert answer.metadata["latency_ms"] >= 0
        assert "content" not in answer.metadata

    def test_no_authorization_header_without_an_api_key(self, ai_core, auth_client, chat):
        ai_core.post(GENERATE, json={"content": "ok"})
        send(auth_client, chat)
        assert "Authorization" not in ai_core.calls[0].request.headers
        assert len(ai_core.calls[0].request.headers["X-Request-ID"]) == 32


@pytest.mark.django_db
class TestFailures:
    def test_read_timeout_is_504_after_one_call(self, ai_core, auth_client, chat):
        ai_core.post(GENERATE, body=requests.ReadTimeout("slow"))
        response = send(auth_client, chat)
        assert_failure_kept_user_message(response, 504, "ai_core_timeout", "Объясните теорему Пифагора")
        assert len(ai_core.calls) == 1

    def test_connection_refused_is_503_with_retry_after_after_the_retries(self, ai_core, auth_client, chat):
        ai_core.post(GENERATE, body=refused())
        response = send(auth_client, chat)
        assert_failure_kept_user_message(response, 503, "ai_core_unavailable", "Объясните теорему Пифагора")
        assert int(response["Retry-After"]) > 0
        assert len(ai_core.calls) == 3

    def test_503_with_retry_after_is_retried_up_to_the_limit_then_503(self, ai_core, auth_client, chat):
        ai_core.post(GENERATE, status=503, json={"detail": "overloaded"}, headers={"Retry-After": "7"})
        response = send(auth_client, chat)
        assert_failure_kept_user_message(response, 503, "ai_core_unavailable", "Объясните теорему Пифагора")
        assert response["Retry-After"] == "7"
        assert len(ai_core.calls) == 3

    @pytest.mark.parametrize("status", [502, 503])
    def test_502_and_503_without_retry_after_may_have_reached_ai_core_and_are_not_retried(
        self, ai_core, auth_client, chat, status
    ):
        """Item 13: only a request that provably never reached AI-Core is sent again."""
        ai_core.post(GENERATE, status=status, json={"detail": "overloaded"})
        response = send(auth_client, chat)
        assert_failure_kept_user_message(response, 502, "ai_core_bad_response", "Объясните теорему Пифагора")
        assert len(ai_core.calls) == 1

    def test_connection_dropped_after_sending_is_not_retried(self, ai_core, auth_client, chat):
        """Item 13: one send cost three generations when a dropped answer was retried."""
        ai_core.post(GENERATE, body=dropped())
        response = send(auth_client, chat)
        assert_failure_kept_user_message(response, 503, "ai_core_unavailable", "Объясните теорему Пифагора")
        assert len(ai_core.calls) == 1

    def test_retries_carry_one_idempotency_key(self, ai_core, auth_client, chat):
        """Item 13: AI-Core can deduplicate a retried generation; each send has its own key."""
        ai_core.post(GENERATE, body=refused())
        ai_core.post(GENERATE, json={"content": "ok"})
        assert send(auth_client, chat).status_code == 201
        ai_core.post(GENERATE, json={"content": "ещё"})
        assert send(auth_client, chat, content="ещё").status_code == 201
        keys = [call.request.headers["Idempotency-Key"] for call in ai_core.calls]
        assert len(keys) == 3
        assert keys[0] == keys[1] != keys[2]
        assert all(len(key) == 32 for key in keys)

    def test_500_is_not_retried(self, ai_core, auth_client, chat):
        ai_core.post(GENERATE, status=500, body="boom")
        response = send(auth_client, chat)
        assert_failure_kept_user_message(response, 502, "ai_core_bad_response", "Объясните теорему Пифагора")
        assert len(ai_core.calls) == 1

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"body": "<html>Bad gateway</html>", "content_type": "text/html"},
            {"json": {"text": "no content field"}},
            {"json": {"content": None}},
            {"json": {"content": 42}},
            {"json": ["content"]},
            # Item 11: answers that are JSON to Python but cannot be stored or served.
            {"body": '{"content": "ok", "confidence": NaN}'},
            {"body": '{"content": "ok", "score": Infinity}'},
            {"body": '{"content": "ok", "tokens_used": 1e999}'},
            {"body": '{"content": "a\\u0000b"}'},
            {"body": '{"content": "ok", "note": "\\ud800"}'},
            {"body": '{"content": "ok", "trace": ' + "[" * 50 + "]" * 50 + "}"},
            {"body": '{"content": "ok", "trace": ' + "[" * 100_000 + "]" * 100_000 + "}"},
            {"body": json.dumps({"content": "x" * (3 * 1024 * 1024)})},
        ],
    )
    def test_unusable_body_is_502(self, ai_core, auth_client, chat, kwargs):
        ai_core.post(GENERATE, **kwargs)
        response = send(auth_client, chat)
        assert_failure_kept_user_message(response, 502, "ai_core_bad_response", "Объясните теорему Пифагора")

    def test_a_bad_answer_on_the_half_open_trial_does_not_jam_the_breaker(
        self, ai_core, settings, auth_client, chat
    ):
        """Item 11: the breaker's trial ended with any exception, so it recovers when AI-Core does."""
        settings.AI_CORE_MAX_RETRIES = 0
        settings.AI_CORE_CIRCUIT_FAILURES = 1
        settings.AI_CORE_CIRCUIT_RESET_SECONDS = 0
        ai_core.post(GENERATE, status=500)
        ai_core.post(GENERATE, body='{"content": "ok", "x": NaN}')
        ai_core.post(GENERATE, json={"content": "снова работает"})
        assert send(auth_client, chat).status_code == 502  # opens the circuit
        assert send(auth_client, chat, content="2").status_code == 502  # the trial: a bad answer
        response = send(auth_client, chat, content="3")
        assert response.status_code == 201
        assert response.json()["assistant_message"]["content"] == "снова работает"

    def test_an_unexpected_error_in_the_trial_still_ends_it(self):
        from aicore.client import drain

        breaker = CircuitBreaker(failure_threshold=1, reset_seconds=0)
        breaker.record_failure()
        client = direct_client(breaker)
        client._generate = lambda data, request_id, stream: 1 / 0
        with pytest.raises(ZeroDivisionError):
            drain(client.generate({}, request_id="r"))
        assert breaker.allow()  # a new trial is allowed: the failed one was recorded

    def test_503_once_then_success_is_201(self, ai_core, auth_client, chat):
        ai_core.post(GENERATE, status=503, headers={"Retry-After": "1"})
        ai_core.post(GENERATE, json={"content": "Вот объяснение"})
        response = send(auth_client, chat)
        assert response.status_code == 201
        assert response.json()["assistant_message"]["content"] == "Вот объяснение"
        assert len(ai_core.calls) == 2

    def test_reply_recovers_after_a_failure(self, ai_core, auth_client, chat):
        ai_core.post(GENERATE, status=500)
        assert send(auth_client, chat).status_code == 502
        ai_core.replace(responses.POST, GENERATE, json={"content": "Теперь получилось"})
        response = auth_client.post(f"/api/v1/chats/{chat.id}/reply/")
        assert response.status_code == 201
        assert list(Message.objects.values_list("role", "content")) == [
            ("user", "Объясните теорему Пифагора"),
            ("assistant", "Теперь получилось"),
        ]
        sent = json.loads(ai_core.calls[-1].request.body)
        assert sent["message"] == "Объясните теорему Пифагора"
        assert sent["history"] == []

    def test_reply_failure_has_the_same_body(self, ai_core, auth_client, chat):
        Message.objects.create(chat=chat, role="user", content="Повторите")
        ai_core.post(GENERATE, body=requests.ReadTimeout())
        response = auth_client.post(f"/api/v1/chats/{chat.id}/reply/")
        assert_failure_kept_user_message(response, 504, "ai_core_timeout", "Повторите")


@pytest.mark.django_db
class TestCircuitBreaker:
    def test_opens_after_consecutive_failures_and_answers_503_without_calling(
        self, ai_core, settings, auth_client, chat
    ):
        settings.AI_CORE_MAX_RETRIES = 0
        settings.AI_CORE_CIRCUIT_FAILURES = 3
        settings.AI_CORE_CIRCUIT_RESET_SECONDS = 60
        ai_core.post(GENERATE, status=500)
        for _ in range(3):
            assert send(auth_client, chat).status_code == 502
        response = send(auth_client, chat, content="ещё раз")
        assert response.status_code == 503
        assert response.json()["code"] == "ai_core_unavailable"
        assert 0 < int(response["Retry-After"]) <= 60
        assert len(ai_core.calls) == 3
        assert Message.objects.filter(role="user").count() == 4

    def test_recovers_after_the_reset_period(self):
        now = [1000.0]
        breaker = CircuitBreaker(failure_threshold=2, reset_seconds=30, clock=lambda: now[0])
        breaker.record_failure()
        assert breaker.allow()
        breaker.record_failure()
        assert not breaker.allow()
        now[0] += 31
        assert breaker.allow()  # the one trial call
        assert not breaker.allow()  # others wait for its outcome
        breaker.record_success()
        assert breaker.allow() and breaker._opened_at is None

    def test_failed_trial_opens_it_again(self):
        now = [0.0]
        breaker = CircuitBreaker(failure_threshold=1, reset_seconds=10, clock=lambda: now[0])
        breaker.record_failure()
        now[0] = 11
        assert breaker.allow()
        breaker.record_failure()
        assert not breaker.allow()
        assert breaker.retry_after() == 10

    def test_success_resets_the_count(self):
        breaker = CircuitBreaker(failure_threshold=2, reset_seconds=10)
        breaker.record_failure()
        breaker.record_success()
        breaker.record_failure()
        assert breaker.allow()


@pytest.mark.django_db(transaction=True)
def test_no_transaction_or_connection_is_held_while_ai_core_works(ai_core, auth_client, chat):
    seen = {}

    def callback(request):
        seen["in_atomic_block"] = connection.in_atomic_block
        # (An in-memory SQLite test database is never closed: it would vanish.)
        in_memory = connection.vendor == "sqlite" and connection.is_in_memory_db()
        seen["holds_a_db_connection"] = connection.connection is not None and not in_memory
        seen["user_message_committed"] = Message.objects.filter(role="user").exists()
        return 200, {}, json.dumps({"content": "ok"})

    ai_core.add_callback(responses.POST, GENERATE, callback=callback)
    assert send(auth_client, chat).status_code == 201
    assert seen == {"in_atomic_block": False, "holds_a_db_connection": False, "user_message_committed": True}


@pytest.mark.django_db
class TestHealth:
    def test_ok_when_ai_core_answers(self, ai_core, api_client):
        ai_core.get(HEALTH, json={"status": "ok"})
        assert api_client.get("/api/v1/health/").json() == {
            "status": "ok",
            "database": "ok",
            "ai_core": "ok",
            "providers": {},
            "cache": "ok",
        }

    def test_unavailable_does_not_make_it_503_and_is_cached(self, ai_core, api_client):
        ai_core.get(HEALTH, body=requests.ConnectionError("down"))
        first = api_client.get("/api/v1/health/")
        second = api_client.get("/api/v1/health/")
        assert first.status_code == 200
        assert first.json()["ai_core"] == "unavailable"
        assert second.json()["ai_core"] == "unavailable"
        assert len(ai_core.calls) == 1

    def test_uses_a_short_timeout(self, ai_core, api_client):
        ai_core.get(HEALTH, match=[matchers.request_kwargs_matcher({"timeout": (1.0, 2.0)})])
        assert api_client.get("/api/v1/health/").json()["ai_core"] == "ok"


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["clear", "delete"])
def test_chat_cleared_or_deleted_while_ai_core_works_gets_no_orphan_reply(ai_core, auth_client, chat, action):
    from chats import services
    from chats.models import Chat

    def meanwhile(request):
        if action == "clear":
            services.chat_clear_history(chat=Chat.objects.get(pk=chat.pk))
        else:
            services.chat_delete(chat=Chat.objects.get(pk=chat.pk))
        return 200, {}, json.dumps({"content": "поздно"})

    ai_core.add_callback(responses.POST, GENERATE, callback=meanwhile)
    response = send(auth_client, chat)
    assert response.status_code == 409
    assert response.json()["code"] == "reply_discarded"
    assert not Message.objects.exists()


@pytest.fixture
def dripping_ai_core(settings):
    """Answers a valid reply one byte every 0.2 s (about 8 s in all), in the body or from the headers on."""
    body = json.dumps({"content": "медленно, но верно"}).encode()
    mode = {"drip": "body"}

    def answer(conn, stop) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        fast, slow = (head.encode(), body) if mode["drip"] == "body" else (b"", head.encode() + body)
        conn.sendall(fast)
        for index in range(len(slow)):
            if stop.wait(0.2):
                return
            conn.sendall(slow[index : index + 1])

    with raw_ai_core(settings, answer):
        settings.AI_CORE_TIMEOUT = 1
        settings.AI_CORE_CONNECT_TIMEOUT = 1
        yield mode


@pytest.mark.django_db
@pytest.mark.parametrize("drip", ["body", "headers"])
def test_an_answer_dripped_byte_by_byte_is_cut_at_the_total_deadline(
    dripping_ai_core, auth_client, chat, drip
):
    """Item 12: every read is quick, but the whole answer takes ~8 s against AI_CORE_TIMEOUT=1."""
    import time

    dripping_ai_core["drip"] = drip
    started = time.monotonic()
    response = send(auth_client, chat)
    elapsed = time.monotonic() - started
    assert_failure_kept_user_message(response, 504, "ai_core_timeout", "Объясните теорему Пифагора")
    assert elapsed < 5  # the whole drip takes about 8 s


class TestEnvironment:
    """Issue 17: requests scanned the environment for proxies on every call
    (0.2 ms of CPU); the session reads it once, when the client is made."""

    def client(self):
        return direct_client()

    def test_proxy_and_ca_bundle_are_taken_from_the_environment_once(self, monkeypatch):
        monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/private-ca.pem")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        session = self.client().session
        assert session.proxies["http"] == "http://proxy.internal:3128"
        assert session.verify == "/etc/ssl/private-ca.pem"
        monkeypatch.setenv("HTTP_PROXY", "http://elsewhere.internal:3128")  # too late: not read per call
        assert session.merge_environment_settings(GENERATE, {}, None, None, None)["proxies"] == {
            "http": "http://proxy.internal:3128"
        }

    def test_no_proxy_for_ai_core_is_respected(self, monkeypatch):
        monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
        monkeypatch.setenv("NO_PROXY", "ai-core.test")
        assert self.client().session.proxies == {}

    def test_without_proxy_variables_nothing_is_proxied(self, monkeypatch):
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        session = self.client().session
        assert session.proxies == {} and session.verify is True and session.trust_env is False
