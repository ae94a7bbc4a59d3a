"""Issue 17: requests that wait on AI-Core are served apart, so waiting
students cannot take the threads everyone else needs. Issue 25: apart is
three plain gunicorn services behind nginx (tutor_platform/serving), routed
by method and path."""

import json
import os
import re
import runpy
import threading
import time
from pathlib import Path

import pytest
import requests
import responses

from aicore.tests.test_stub_server import serve_stub
from conftest import PASSWORD, redis_space
from tutor_platform import serving
from tutor_platform.serving import cpu_gate
from tutor_platform.tests.served import serve_behind_nginx

BASE_DIR = Path(__file__).resolve().parents[2]
AI_DELAY = 6  # seconds AI-Core takes: far longer than a catalogue read
REQUESTS = [
    ("POST", "/api/v1/chats/12/messages/", "ai"),
    ("POST", "/api/v1/chats/12/reply/", "ai"),
    ("POST", "/api/v1/chats/12/regenerate/", "ai"),
    ("GET", "/api/v1/chats/12/stream/", "stream"),  # a follower never takes a send's thread (issue 24)
    ("POST", "/api/v1/chats/12/stream/", "app"),
    ("GET", "/api/v1/chats/12/messages/", "app"),  # a page
    ("DELETE", "/api/v1/chats/12/messages/", "app"),
    ("POST", "/api/v1/chats/12/messages/7/select/", "app"),
    ("POST", "/api/v1/chats/1234567890123456789/messages/", "app"),  # not an id: a 404 anywhere
    ("POST", "/api/v1/chats/12/messages", "app"),
    ("GET", "/api/v1/tutors/", "app"),
]


@pytest.mark.parametrize(("method", "path", "service"), REQUESTS)
def test_which_service_serves_a_request(method, path, service):
    assert serving.service_for(method, path) == service


def test_nginx_routes_by_the_same_rule():
    """deploy/nginx.conf's map, read as nginx does (first regex that matches,
    else the default), agrees with serving.service_for on every request."""
    site = (BASE_DIR / "deploy" / "nginx.conf").read_text()
    block = re.search(r'map "\$request_method:\$uri" \$tutor_platform_service \{(.*?)\}\n', site, re.DOTALL)
    assert block, "deploy/nginx.conf has no service map"
    routes = re.findall(r'^\s*"~(.+)" (\w+);$', block[1], re.MULTILINE)
    assert [service for _regex, service in routes] == ["ai", "stream"]
    for method, path, service in REQUESTS:
        key = f"{method}:{path}"
        routed = next((name for regex, name in routes if re.search(regex, key)), "app")
        assert routed == service, key


@pytest.mark.parametrize(
    ("service", "bind", "threads"),
    [("app", "127.0.0.1:8000", 32), ("ai", "127.0.0.1:8010", 128), ("stream", "127.0.0.1:8020", 32)],
)
def test_gunicorn_conf_serves_the_service_it_is_told(monkeypatch, service, bind, threads):
    for variable in ("GUNICORN_SERVICES", "GUNICORN_BIND", "GUNICORN_AI_BIND", "GUNICORN_STREAM_BIND",
                     "GUNICORN_THREADS", "GUNICORN_AI_THREADS", "GUNICORN_STREAM_THREADS"):  # fmt: skip
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("ENV_FILE", os.devnull)
    monkeypatch.setenv("GUNICORN_SERVICE", service)
    conf = runpy.run_path(str(BASE_DIR / "gunicorn.conf.py"))
    assert (conf["bind"], conf["threads"], conf["worker_class"]) == (bind, threads, "gthread")
    assert conf["proc_name"] == f"tutor_platform-{service}"
    monkeypatch.setenv("GUNICORN_AI_THREADS", "7")
    monkeypatch.setenv("GUNICORN_AI_BIND", "unix:/run/tutor/ai.sock")
    chosen = runpy.run_path(str(BASE_DIR / "gunicorn.conf.py"))
    if service == "ai":
        assert (chosen["bind"], chosen["threads"]) == ("unix:/run/tutor/ai.sock", 7)
    else:
        assert (chosen["bind"], chosen["threads"]) == (bind, threads)


def test_the_app_service_alone_has_the_threads_of_all_three(monkeypatch):
    """GUNICORN_SERVICES=app: it serves the sends and the followers too."""
    for variable in (
        "GUNICORN_THREADS",
        "GUNICORN_AI_THREADS",
        "GUNICORN_STREAM_THREADS",
        "GUNICORN_SERVICE",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("ENV_FILE", os.devnull)
    monkeypatch.setenv("GUNICORN_SERVICES", "app")
    assert runpy.run_path(str(BASE_DIR / "gunicorn.conf.py"))["threads"] == 32 + 128 + 32
    monkeypatch.setenv("GUNICORN_SERVICES", "app,ai")  # followers go to the app service
    assert runpy.run_path(str(BASE_DIR / "gunicorn.conf.py"))["threads"] == 32 + 32


@pytest.fixture(scope="module")
def slow_ai_core():
    yield from serve_stub("--delay", str(AI_DELAY))


@pytest.mark.system  # starts servers or processes: not in `-m "not system"`
def test_a_full_ai_service_leaves_the_catalogue_answering(tmp_path, slow_ai_core):
    with redis_space("full-ai-service") as redis:
        env = {
            **os.environ,
            "ENV_FILE": os.devnull,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'pools.sqlite3'}",
            "CACHE_URL": redis.url,
            "AI_CORE_URL": slow_ai_core,
            "GUNICORN_WORKERS": "1",
            "GUNICORN_THREADS": "2",
            "GUNICORN_AI_THREADS": "3",
            "GUNICORN_STREAM_THREADS": "2",
            "NUM_PROXIES": "1",
        }
        with serve_behind_nginx(env, tmp_path / "served") as served:
            url = served.nginx
            account = {"email": "pools@example.com", "username": "pools", "password": PASSWORD}
            requests.post(f"{url}/api/v1/auth/register/", json=account, timeout=10)
            access = requests.post(f"{url}/api/v1/auth/login/", json=account, timeout=10).json()["access"]
            student = {"Authorization": f"Bearer {access}"}
            tutor = requests.get(f"{url}/api/v1/tutors/", timeout=10).json()["results"][0]["id"]
            chats = [
                requests.post(
                    f"{url}/api/v1/chats/", json={"tutor": tutor}, headers=student, timeout=10
                ).json()["id"]
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

            # Five sends: three take every thread of the ai service, two wait for one.
            senders = [threading.Thread(target=send, args=(chat,)) for chat in chats]
            for sender in senders:
                sender.start()
            time.sleep(1)
            started = time.monotonic()
            # Both threads of the app service are free: these are answered while every send
            # still waits (in one service of 2 + 3 threads they would wait for AI-Core's 6 s).
            assert requests.get(f"{url}/api/v1/tutors/", timeout=AI_DELAY / 2).status_code == 200
            me = requests.get(f"{url}/api/v1/auth/me/", headers=student, timeout=AI_DELAY / 2)
            assert me.status_code == 200
            assert time.monotonic() - started < AI_DELAY / 2
            assert not statuses  # no send has finished yet
            for sender in senders:
                sender.join(timeout=60)
            assert statuses == [201] * 5  # the two that queued were answered too


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
