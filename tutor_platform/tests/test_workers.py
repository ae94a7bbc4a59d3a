"""Issue 17: requests that wait on AI-Core have a thread pool of their own
(tutor_platform/serving/worker.py), so waiting students cannot take the threads
everyone else needs."""

import json
import os
import socket
import threading
import time

import pytest
import requests
import responses

from aicore.tests.test_stub_server import serve_stub
from conftest import PASSWORD, free_port, serve_with_gunicorn, wait_until_serving
from tutor_platform.serving import cpu_gate
from tutor_platform.serving.worker import PEEK_BYTES, peek, pool_of, waits_on_ai_core

pytestmark = pytest.mark.system  # starts servers or processes: not in `-m "not system"`

AI_DELAY = 6  # seconds AI-Core takes: far longer than a catalogue read


@pytest.mark.parametrize(
    ("request_line", "to_ai_pool"),
    [
        (b"POST /api/v1/chats/12/messages/ HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"POST /api/v1/chats/12/reply/ HTTP/1.1\r\n", True),
        (b"POST /api/v1/chats/12/regenerate/ HTTP/1.1\r\n", True),
        (b"GET /api/v1/chats/12/stream/ HTTP/1.1\r\n", True),
        (b"GET /api/v1/chats/12/messages/?limit=50 HTTP/1.1\r\n", False),  # a page
        (b"DELETE /api/v1/chats/12/messages/ HTTP/1.1\r\n", False),
        (b"POST /api/v1/chats/12/messages/7/select/ HTTP/1.1\r\n", False),
        (b"GET /api/v1/tutors/ HTTP/1.1\r\n", False),
        (b"", False),  # nothing arrived yet: peek() says so (None)
    ],
)
def test_which_requests_go_to_the_ai_pool_and_the_request_stays_unread(request_line, to_ai_pool):
    server, client = socket.socketpair()
    with server, client:
        client.sendall(request_line)
        start = peek(server)
        assert start == (request_line[:PEEK_BYTES] or None)
        assert bool(start and waits_on_ai_core(start)) is to_ai_pool
        if request_line:
            assert server.recv(len(request_line)) == request_line


@pytest.mark.parametrize(
    ("request_line", "pool"),
    [
        (b"POST /api/v1/chats/12/messages/ HTTP/1.1\r\n", "ai"),
        (b"POST /api/v1/chats/12/regenerate/ HTTP/1.1\r\n", "ai"),
        (b"GET /api/v1/chats/12/stream/?last_event_id=40 HTTP/1.1\r\n", "stream"),
        (b"POST /api/v1/chats/12/stream/ HTTP/1.1\r\n", None),
        (b"GET /api/v1/chats/12/messages/ HTTP/1.1\r\n", None),
    ],
)
def test_followers_have_a_pool_of_their_own(request_line, pool):
    """Issue 24, item 1: a re-attached stream never takes a thread a send needs."""
    assert pool_of(request_line) == pool


def test_a_client_that_hung_up_is_told_from_one_that_sent_nothing_yet():
    server, client = socket.socketpair()
    with server:
        assert peek(server) is None  # nothing yet: wait for it
        client.close()
        assert peek(server) == b""  # gone: a thread closes it


@pytest.fixture(scope="module")
def slow_ai_core():
    yield from serve_stub("--delay", str(AI_DELAY))


def test_a_full_ai_pool_leaves_the_catalogue_answering(tmp_path, slow_ai_core):
    env = {
        **os.environ,
        "ENV_FILE": os.devnull,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'pools.sqlite3'}",
        "AI_CORE_URL": slow_ai_core,
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "2",
        "GUNICORN_AI_THREADS": "3",
    }
    port = free_port()
    process = serve_with_gunicorn(env, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{url}/api/v1/health/", timeout=60)
        account = {"email": "pools@example.com", "username": "pools", "password": PASSWORD}
        requests.post(f"{url}/api/v1/auth/register/", json=account, timeout=10)
        access = requests.post(f"{url}/api/v1/auth/login/", json=account, timeout=10).json()["access"]
        student = {"Authorization": f"Bearer {access}"}
        tutor = requests.get(f"{url}/api/v1/tutors/", timeout=10).json()["results"][0]["id"]
        chats = [
            requests.post(f"{url}/api/v1/chats/", json={"tutor": tutor}, headers=student, timeout=10).json()[
                "id"
            ]
            for _ in range(5)
        ]
        statuses: list[int] = []

        def send(chat: int) -> None:
            response = requests.post(
                f"{url}/api/v1/chats/{chat}/messages/",
                json={"content": "Вопрос"},
                headers=student,
                timeout=60,
            )
            statuses.append(response.status_code)

        # Five sends: three take every AI thread, two wait for one.
        senders = [threading.Thread(target=send, args=(chat,)) for chat in chats]
        for sender in senders:
            sender.start()
        time.sleep(1)
        started = time.monotonic()
        # Both general threads are free: these are answered while every send still waits
        # (in one shared pool of 2 + 3 threads they would wait for AI-Core's 6 s).
        assert requests.get(f"{url}/api/v1/tutors/", timeout=AI_DELAY / 2).status_code == 200
        assert (
            requests.get(f"{url}/api/v1/auth/me/", headers=student, timeout=AI_DELAY / 2).status_code == 200
        )
        assert time.monotonic() - started < AI_DELAY / 2
        assert not statuses  # no send has finished yet
        for sender in senders:
            sender.join(timeout=60)
        assert statuses == [201] * 5  # the two that queued were answered too
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.mark.django_db
def test_a_send_works_under_a_cpu_slot_and_sets_it_aside_while_ai_core_answers(auth_client, chat, settings):
    settings.AI_CORE_URL = "http://ai-core.test"
    seen = {}

    def answer(request):
        # While AI-Core works, the send holds no slot: every slot is free for others.
        seen["holds"], seen["free"] = cpu_gate.holds_slot(), cpu_gate._slots._value
        return 200, {}, json.dumps({"content": "Ответ"})

    with responses.RequestsMock() as ai_core:
        ai_core.add_callback(responses.POST, "http://ai-core.test/api/v1/generate", callback=answer)
        sent = auth_client.post(f"/api/v1/chats/{chat.id}/messages/", {"content": "Вопрос"}, format="json")

    assert sent.status_code == 201
    assert seen == {"holds": False, "free": settings.AI_CPU_SLOTS}
    assert cpu_gate._slots._value == settings.AI_CPU_SLOTS and not cpu_gate.holds_slot()


def test_the_slots_bound_the_requests_working_at_once(settings):
    working, most = 0, 0
    lock = threading.Lock()

    def count(change: int) -> None:
        nonlocal working, most
        with lock:
            working += change
            most = max(most, working)

    def request() -> None:
        with cpu_gate.slot():
            count(+1)
            time.sleep(0.05)
            count(-1)
            with cpu_gate.set_aside():  # waiting on AI-Core
                time.sleep(0.05)
            count(+1)
            time.sleep(0.05)
            count(-1)

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == cpu_gate._slots._initial_value == settings.AI_CPU_SLOTS
