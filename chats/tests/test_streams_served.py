"""Issue 24, items 1 and 2, through real gunicorn sharing Redis: followers
are capped and never take a send's thread (the stream service behind nginx,
tutor_platform/serving); a reply whose server is killed (`kill -9`)
mid-stream is ended within 15 s by another server."""

import contextlib
import os
import signal
import subprocess
import threading
import time

import pytest
import requests

from aicore.tests.test_stub_server import serve_stub
from chats.tests.test_streaming import QUESTION, parse
from conftest import PASSWORD, RedisSpace, free_port, serve_with_gunicorn, wait_until_serving
from tutor_platform.tests.served import serve_behind_nginx

pytestmark = pytest.mark.system  # starts servers or processes: not in `-m "not system"`


@pytest.fixture(scope="module")
def slow_words():
    # About 30 words: a streamed reply takes about 9 s; a JSON answer is at once.
    yield from serve_stub("--chunk-delay", "0.3")


def env_for(work, redis: RedisSpace, ai_core: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "ENV_FILE": os.devnull,
        "DATABASE_URL": f"sqlite:///{work / 'served.sqlite3'}",
        "CACHE_URL": redis.url,
        "AI_CORE_URL": ai_core,
        "AI_DAILY_MESSAGES_PER_USER": "3",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "4",
        **extra,
    }


def start(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = serve_with_gunicorn(env, port)
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(f"{url}/api/v1/health/", timeout=60)
    return process, url


def student(url: str, name: str) -> dict[str, str]:
    account = {"email": f"{name}@example.com", "username": name, "password": PASSWORD}
    requests.post(f"{url}/api/v1/auth/register/", json=account, timeout=10)
    access = requests.post(f"{url}/api/v1/auth/login/", json=account, timeout=10).json()["access"]
    return {"Authorization": f"Bearer {access}"}


def new_chat(url: str, headers: dict[str, str]) -> int:
    tutor = requests.get(f"{url}/api/v1/tutors/", timeout=10).json()["results"][0]["id"]
    return requests.post(f"{url}/api/v1/chats/", json={"tutor": tutor}, headers=headers, timeout=10).json()[
        "id"
    ]


def stream_until_first_delta(url: str, headers: dict[str, str], chat: int, **extra: str) -> requests.Response:
    response = requests.post(
        f"{url}/api/v1/chats/{chat}/messages/",
        json={"content": QUESTION},
        headers={**headers, "Accept": "text/event-stream", **extra},
        stream=True,
        timeout=30,
    )
    assert response.status_code == 200
    received = b""
    for chunk in response.iter_content(None):
        received += chunk
        if b"event: delta" in received:
            return response
    raise AssertionError("the reply never started")


def test_forty_followers_on_one_reply_leave_the_sends_alone(tmp_path, slow_words, test_redis):
    # Two threads in the ai service: the streamed reply takes one, the other
    # student's send needs the other; followers go to the stream service.
    env = env_for(tmp_path, test_redis, slow_words, GUNICORN_AI_THREADS="2", GUNICORN_STREAM_THREADS="8")
    with serve_behind_nginx({**env, "NUM_PROXIES": "1"}, tmp_path / "served") as served:
        url = served.nginx
        alice, bob = student(url, "alice"), student(url, "bob")
        chat, bobs_chat = new_chat(url, alice), new_chat(url, bob)
        sending = stream_until_first_delta(url, alice, chat)
        statuses: list[int] = []
        held: list[requests.Response] = []
        lock = threading.Lock()

        def follow() -> None:
            response = requests.get(
                f"{url}/api/v1/chats/{chat}/stream/",
                headers={**alice, "Accept": "text/event-stream"},
                stream=True,
                timeout=30,
            )
            with lock:
                statuses.append(response.status_code)
                held.append(response)

        threads = [threading.Thread(target=follow) for _ in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(statuses) == [200] * 2 + [429] * 38
        refused = next(r for r in held if r.status_code == 429)
        assert refused.json()["code"] == "too_many_streams"

        started = time.monotonic()
        answered = requests.post(
            f"{url}/api/v1/chats/{bobs_chat}/messages/", json={"content": "2+2?"}, headers=bob, timeout=30
        )
        waited = time.monotonic() - started
        assert answered.status_code == 201
        # Alice's reply still has seconds to go: Bob did not wait for it.
        assert waited < 3
        assert requests.get(f"{url}/api/v1/chats/{chat}/messages/", headers=alice, timeout=10).json()[
            "reply_in_progress"
        ]
        for response in held:
            response.close()
        sending.close()


def kill_server(process: subprocess.Popen) -> None:
    """`kill -9` of the master and its workers: the host died."""
    children = subprocess.run(
        ["/usr/bin/pgrep", "-P", str(process.pid)], capture_output=True, text=True
    ).stdout.split()
    for pid in [process.pid, *map(int, children)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    process.wait(timeout=10)


def test_a_reply_whose_server_is_killed_is_ended_within_15_seconds(tmp_path, slow_words, test_redis):
    env = env_for(tmp_path, test_redis, slow_words)
    first, first_url = start(env)
    second, url = start(env)  # the same database and Redis: another app server
    try:
        alice = student(url, "carol")
        chat = new_chat(url, alice)
        sending = stream_until_first_delta(first_url, alice, chat, **{"Idempotency-Key": "send-1"})
        follower = requests.get(
            f"{url}/api/v1/chats/{chat}/stream/",
            headers={**alice, "Accept": "text/event-stream"},
            stream=True,
            timeout=40,
        )
        assert follower.status_code == 200
        usage = requests.get(f"{url}/api/v1/auth/me/usage/", headers=alice, timeout=10).json()
        assert usage["messages"] == 1  # the reply being written holds one of today's three

        kill_server(first)
        killed_at = time.monotonic()
        sending.close()
        received = b""
        for chunk in follower.iter_content(None):  # ends when the second server ends the reply
            received += chunk
            if time.monotonic() - killed_at > 30:
                break
        known_after = time.monotonic() - killed_at
        events = parse(received)

        assert events[-1][0] == "error" and events[-1][1]["code"] == "reply_interrupted"
        assert known_after < 15
        page = requests.get(f"{url}/api/v1/chats/{chat}/messages/", headers=alice, timeout=10).json()
        assert page["reply_in_progress"] is False
        shown = page["results"][0]
        assert (shown["reply_status"], shown["reply_error"]) == ("failed", "reply_interrupted")
        usage = requests.get(f"{url}/api/v1/auth/me/usage/", headers=alice, timeout=10).json()
        assert usage["messages"] == 0  # the reservation was given back
        retried = requests.post(
            f"{url}/api/v1/chats/{chat}/messages/",
            json={"content": QUESTION},
            headers={**alice, "Idempotency-Key": "send-1"},
            timeout=30,
        )
        assert retried.status_code == 201, retried.text
        assert retried.json()["user_message"]["id"] == shown["id"]
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=15)
