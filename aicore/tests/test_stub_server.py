"""End to end over real HTTP: the `aicore_stub` command serves, the backend calls it."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from chats.models import Message
from conftest import free_port, wait_until_serving

pytestmark = pytest.mark.system  # starts servers or processes: not in `-m "not system"`

BASE_DIR = Path(__file__).resolve().parents[2]


def serve_stub(*extra: str):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "aicore_stub", "--port", str(port), "--quiet", *extra],
        cwd=BASE_DIR,
        stdout=subprocess.DEVNULL,  # a pipe nobody reads could fill and block the stub
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{url}/api/v1/health")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def stub_server():
    yield from serve_stub()


@pytest.fixture(scope="module")
def slow_stub_server():
    yield from serve_stub("--delay", "3")


def test_stub_server_speaks_the_contract(stub_server):
    response = requests.post(
        f"{stub_server}/api/v1/generate",
        json={"message": "Привет", "history": [{"role": "user", "content": "a"}], "model_id": "m"},
        headers={"X-Request-ID": "abc"},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "abc"
    body = response.json()
    assert "Привет" in body["content"]
    assert "1 предыдущих" in body["content"]
    assert body["stub"] is True
    assert isinstance(body["tokens_used"], int)
    assert requests.post(f"{stub_server}/api/v1/generate", data="nope", timeout=5).status_code == 400


@pytest.mark.django_db
def test_whole_send_flow_over_http(stub_server, settings, auth_client, chat, api_client):
    settings.AI_CORE_URL = stub_server
    first = auth_client.post(
        f"/api/v1/chats/{chat.id}/messages/", {"content": "Что такое производная?"}, format="json"
    )
    assert first.status_code == 201
    assert "Что такое производная?" in first.json()["assistant_message"]["content"]
    assert Message.objects.get(role="assistant").metadata["stub"] is True
    second = auth_client.post(f"/api/v1/chats/{chat.id}/messages/", {"content": "А интеграл?"}, format="json")
    assert "2 предыдущих" in second.json()["assistant_message"]["content"]
    assert Message.objects.filter(chat=chat).count() == 4
    assert api_client.get("/api/v1/health/").json()["ai_core"] == "ok"


@pytest.mark.django_db
def test_health_reports_unavailable_when_nothing_listens(settings, api_client):
    settings.AI_CORE_URL = f"http://127.0.0.1:{free_port()}"
    body = api_client.get("/api/v1/health/").json()
    assert body == {
        "status": "ok",
        "database": "ok",
        "ai_core": "unavailable",
        "providers": {},
        "cache": "ok",
    }


@pytest.mark.django_db
def test_refused_connection_over_real_http_is_503(settings, auth_client, chat):
    settings.AI_CORE_URL = f"http://127.0.0.1:{free_port()}"
    settings.AI_CORE_MAX_RETRIES = 1
    response = auth_client.post(f"/api/v1/chats/{chat.id}/messages/", {"content": "есть кто?"}, format="json")
    assert response.status_code == 503
    assert response.json()["user_message"]["content"] == "есть кто?"
    assert not Message.objects.filter(role="assistant").exists()


@pytest.mark.django_db
def test_ai_core_hanging_past_the_timeout_is_504_and_keeps_the_message(
    slow_stub_server, settings, auth_client, chat
):
    settings.AI_CORE_URL = slow_stub_server
    settings.AI_CORE_TIMEOUT = 0.5
    started = time.monotonic()
    response = auth_client.post(f"/api/v1/chats/{chat.id}/messages/", {"content": "долго?"}, format="json")
    assert time.monotonic() - started < 2.5  # one call, no retry after a read timeout
    assert response.status_code == 504
    assert response.json()["code"] == "ai_core_timeout"
    assert list(Message.objects.filter(chat=chat).values_list("role", flat=True)) == ["user"]
