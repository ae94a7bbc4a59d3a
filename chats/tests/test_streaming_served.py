"""Streaming through a real gunicorn with several workers sharing Redis: a
client that goes away loses nothing, and another connection (which may land
on another worker) re-attaches to the reply while it is written."""

import os
import time
from pathlib import Path

import pytest
import requests

from aicore.tests.test_stub_server import serve_stub
from chats.tests.test_streaming import QUESTION, deltas, parse
from conftest import PASSWORD, free_port, redis_space, serve_with_gunicorn, wait_until_serving

pytestmark = pytest.mark.system  # starts servers or processes: not in `-m "not system"`

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def slow_words():
    yield from serve_stub("--chunk-delay", "0.05")


@pytest.fixture(scope="module")
def server(tmp_path_factory, slow_words):
    with redis_space("streams") as redis:
        yield from serve(tmp_path_factory, slow_words, redis.url)


def serve(tmp_path_factory, slow_words: str, cache_url: str):
    work = tmp_path_factory.mktemp("streams")
    env = {
        **os.environ,
        "ENV_FILE": os.devnull,
        "DATABASE_URL": f"sqlite:///{work / 'streams.sqlite3'}",
        "CACHE_URL": cache_url,
        "AI_CORE_URL": slow_words,
        "GUNICORN_WORKERS": "3",
        "GUNICORN_THREADS": "8",
    }
    port = free_port()
    process = serve_with_gunicorn(env, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{url}/api/v1/health/", timeout=60)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def student(server):
    account = {"email": "stream@example.com", "username": "stream", "password": PASSWORD}
    assert requests.post(f"{server}/api/v1/auth/register/", json=account, timeout=10).status_code == 201
    tokens = requests.post(f"{server}/api/v1/auth/login/", json=account, timeout=10).json()
    return {"Authorization": f"Bearer {tokens['access']}"}


def new_chat(server: str, student: dict) -> int:
    tutor = requests.get(f"{server}/api/v1/tutors/", timeout=10).json()["results"][0]["id"]
    return requests.post(
        f"{server}/api/v1/chats/", json={"tutor": tutor}, headers=student, timeout=10
    ).json()["id"]


def start_stream_and_hang_up(server: str, student: dict, chat: int, after_deltas: int) -> str:
    """Sends with a stream, reads `after_deltas` pieces, closes the connection."""
    with requests.post(
        f"{server}/api/v1/chats/{chat}/messages/",
        json={"content": QUESTION},
        headers={**student, "Accept": "text/event-stream"},
        stream=True,
        timeout=10,
    ) as response:
        assert response.status_code == 200
        received = b""
        for chunk in response.iter_content(None):
            received += chunk
            if received.count(b"event: delta") >= after_deltas:
                break
    return deltas(parse(received.rsplit(b"\n\n", 1)[0] + b"\n\n"))


def messages(server: str, student: dict, chat: int) -> dict:
    return requests.get(f"{server}/api/v1/chats/{chat}/messages/", headers=student, timeout=10).json()


def test_a_closed_connection_loses_nothing(server, student):
    chat = new_chat(server, student)
    start_stream_and_hang_up(server, student, chat, after_deltas=1)
    # Asked on fresh connections (any worker): the reply is still being written, then saved whole.
    assert messages(server, student, chat)["reply_in_progress"] is True
    for _ in range(100):
        page = messages(server, student, chat)
        if not page["reply_in_progress"] and len(page["results"]) == 2:
            break
        time.sleep(0.1)
    assert [m["role"] for m in page["results"]] == ["user", "assistant"]
    assert page["results"][1]["content"].endswith("метод решения.")


def test_any_worker_re_attaches_to_the_reply(server, student):
    chat = new_chat(server, student)
    already = start_stream_and_hang_up(server, student, chat, after_deltas=3)
    followed = requests.get(
        f"{server}/api/v1/chats/{chat}/stream/",
        headers={**student, "Accept": "text/event-stream"},
        timeout=30,
    )
    assert followed.status_code == 200
    events = parse(followed.content)
    # The first delta is the text written so far (chats.replies.live writes it at
    # most every PUBLISH_SECONDS), then the rest arrives live.
    assert events[0][0] == "delta" and events[0][1]["content"]
    assert events[-1][0] == "assistant_message"
    saved = messages(server, student, chat)["results"][1]
    assert deltas(events) == saved["content"] == events[-1][1]["content"]
    assert saved["content"].startswith(already)
    nothing = requests.get(f"{server}/api/v1/chats/{chat}/stream/", headers=student, timeout=10)
    assert nothing.status_code == 204
