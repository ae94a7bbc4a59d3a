"""Issue 26, item 6: the product scaled out the standard way, on this
machine. Two app servers (each one gunicorn with the shipped
gunicorn.conf.py and two workers, serving every request:
GUNICORN_SERVICES=app, so that nginx's three upstreams name the same two
servers; the three services of one server: test_reverse_proxy) behind
deploy/nginx.conf with an upstream of both, one PostgreSQL database, one Redis: a reply started on one
server is followed on the other, budgets hold across both, the nightly
export runs once, and a server killed mid-reply is noticed by the survivor,
through which the student retries."""

import json
import os
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests
from django.db import connection

from aicore.tests.test_stub_server import serve_stub
from chats.tests.test_streaming import QUESTION, deltas, parse
from chats.tests.test_streams_served import kill_server, new_chat, stream_until_first_delta, student
from conftest import PASSWORD, free_port, serve_with_gunicorn, wait_until_serving
from tutor_platform import serving
from tutor_platform.tests.served import logged_within, require_nginx, start_nginx

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="several app servers share one PostgreSQL database: runs when the suite is on PostgreSQL",
    ),
]

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def slow_words():
    # About 30 words, 0.3 s apart: a streamed reply takes about 9 s.
    yield from serve_stub("--chunk-delay", "0.3")


@pytest.fixture
def database():
    """A PostgreSQL database of this test's own, on the suite's server."""
    params = connection.settings_dict
    server = {
        "host": params["HOST"] or "127.0.0.1",
        "port": params["PORT"] or 5432,
        "user": params["USER"],
        "password": params["PASSWORD"] or None,
    }
    name = f"tutor_platform_servers_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    credentials = server["user"] + (f":{server['password']}" if server["password"] else "")
    try:
        yield f"postgres://{credentials}@{server['host']}:{server['port']}/{name}"
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Cluster:
    apps: list[str]  # each app server, directly
    nginx: str  # the load balancer in front of both
    servers: list[subprocess.Popen]
    env: dict[str, str]
    work: Path


@pytest.fixture
def cluster(tmp_path, database, test_redis, slow_words):
    require_nginx()
    env = {
        **os.environ,
        "ENV_FILE": os.devnull,
        "DATABASE_URL": database,
        "CACHE_URL": test_redis.url,
        "AI_CORE_URL": slow_words,
        "MEDIA_ROOT": str(tmp_path / "bucket"),  # the storage both servers share (S3 in production)
        # The budget split as in production, on a small share of this
        # PostgreSQL (the suite may run beside it): (26 - 10) / 2 servers /
        # 2 workers = 4 connections per process, 16 in all (serve_with_gunicorn
        # runs one service: GUNICORN_SERVICES=app).
        "DB_MAX_CONNECTIONS": "26",
        "DB_POOL_MIN_SIZE": "1",
        "APP_SERVERS": "2",
        "GUNICORN_WORKERS": "2",
        "NUM_PROXIES": "1",
        "AI_DAILY_MESSAGES_PER_USER": "3",
        "THROTTLE_LOGIN_RATE": "3/min",
    }
    ports = [free_port(), free_port()]
    servers = [serve_with_gunicorn(env, port, log=tmp_path / f"app-{port}.log") for port in ports]
    nginx_port = free_port()
    upstream = [f"127.0.0.1:{port}" for port in ports]
    nginx = start_nginx(tmp_path / "nginx", nginx_port, {name: upstream for name in serving.SERVICES})
    apps = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url in [*apps, f"http://127.0.0.1:{nginx_port}"]:
            wait_until_serving(f"{url}/api/v1/health/", timeout=60)
        yield Cluster(apps, f"http://127.0.0.1:{nginx_port}", servers, env, tmp_path)
    finally:
        for process in [nginx, *servers]:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=15)


def follow_to_the_end(url: str, chat: int, headers: dict[str, str]) -> list[tuple[str, object]]:
    """Re-attaches to the chat's running reply through `url` and reads it to its end."""
    follower = requests.get(
        f"{url}/api/v1/chats/{chat}/stream/",
        headers={**headers, "Accept": "text/event-stream"},
        stream=True,
        timeout=40,
    )
    assert follower.status_code == 200
    return parse(b"".join(follower.iter_content(None)))


def export(cluster: Cluster) -> subprocess.Popen:
    """The nightly job as deploy/crontab runs it, on one host."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "export_training_data", "--to-storage", "training/nightly.jsonl"],
        cwd=BASE_DIR,
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_servers_share_replies_budgets_and_the_nightly_export(cluster):
    first, second = cluster.apps
    # nginx spreads requests over both servers.
    for _ in range(8):
        assert requests.get(f"{cluster.nginx}/api/v1/tutors/", timeout=10).status_code == 200
    # (The last request's line may still be on its way: nginx writes it after the answer.)
    log = logged_within(cluster.work / "nginx" / "tutor_platform.access.log", "/api/v1/tutors/")
    upstreams = re.findall(r"upstream=(\S+)", log)
    assert {url.removeprefix("http://") for url in cluster.apps} <= set(upstreams)

    # A streamed reply started on the first server is followed on the second.
    alice = student(cluster.nginx, "alice")
    chat = new_chat(cluster.nginx, alice)
    sending = stream_until_first_delta(first, alice, chat)
    followed = follow_to_the_end(second, chat, alice)
    sending.close()
    assert followed[-1][0] == "assistant_message"
    reply = followed[-1][1]
    assert deltas(followed) == reply["content"] and len(reply["content"].split()) > 20
    shown = requests.get(f"{first}/api/v1/chats/{chat}/messages/", headers=alice, timeout=10).json()
    assert shown["results"][-1] == reply

    # The daily quota (3) holds across both: one used above, one on each server, then 429 anywhere.
    for url in (second, first):
        answered = requests.post(
            f"{url}/api/v1/chats/{chat}/messages/", json={"content": "А ещё?"}, headers=alice, timeout=30
        )
        assert answered.status_code == 201, answered.text
    over = requests.post(
        f"{second}/api/v1/chats/{chat}/messages/", json={"content": "И ещё?"}, headers=alice, timeout=30
    )
    assert over.status_code == 429 and over.json()["code"] == "quota_exceeded"

    # The failed-login budget (3/min per address and account) is counted once, in Redis.
    student(cluster.nginx, "bob")
    for url in (first, second, first):
        wrong = requests.post(
            f"{url}/api/v1/auth/login/", json={"email": "bob@example.com", "password": "wrong-1"}, timeout=10
        )
        assert wrong.status_code == 401
    right = requests.post(
        f"{second}/api/v1/auth/login/",
        json={"email": "bob@example.com", "password": PASSWORD},
        timeout=10,
    )
    assert right.status_code == 429

    # The nightly export, started on both hosts at once, is written once.
    page = requests.get(f"{cluster.nginx}/api/v1/chats/{chat}/messages/", headers=alice, timeout=10).json()
    replies = [message["id"] for message in page["results"] if message["role"] == "assistant"]
    assert len(replies) == 3
    rated_ids = []
    for reply_id, url in zip(replies, (first, second, first), strict=True):
        rated = requests.post(
            f"{url}/api/v1/feedback/",
            json={"message": reply_id, "feedback_type": "detailed", "rating": 5, "allow_training": True},
            headers=alice,
            timeout=10,
        )
        assert rated.status_code == 201, rated.text
        rated_ids.append(rated.json()["id"])
    jobs = [export(cluster), export(cluster)]
    said = [job.communicate(timeout=60)[1] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0]
    stored = sorted((cluster.work / "bucket" / "training").iterdir())
    assert len(stored) == 1, said
    exported = [json.loads(line)["feedback_id"] for line in stored[0].read_text().splitlines()]
    assert sorted(exported) == sorted(rated_ids)
    (ran,) = [text for text in said if "3 item(s) marked processed" in text]
    (other,) = [text for text in said if text is not ran]
    assert "Another app server is exporting now" in other or "0 item(s) marked processed" in other


def test_a_killed_server_is_noticed_and_the_student_retries_through_the_survivor(cluster):
    first, second = cluster.apps
    carol = student(cluster.nginx, "carol")
    chat = new_chat(cluster.nginx, carol)
    sending = stream_until_first_delta(first, carol, chat, **{"Idempotency-Key": "send-1"})

    kill_server(cluster.servers[0])  # the whole master and its workers: the host died
    killed_at = time.monotonic()
    sending.close()
    # Through nginx (only the survivor answers now), re-attaching ends with the interruption.
    events = follow_to_the_end(cluster.nginx, chat, carol)
    assert events[-1][0] == "error" and events[-1][1]["code"] == "reply_interrupted"
    assert time.monotonic() - killed_at < 15
    page = requests.get(f"{cluster.nginx}/api/v1/chats/{chat}/messages/", headers=carol, timeout=10).json()
    asked = page["results"][0]
    assert page["reply_in_progress"] is False
    assert (asked["reply_status"], asked["reply_error"]) == ("failed", "reply_interrupted")
    usage = requests.get(f"{cluster.nginx}/api/v1/auth/me/usage/", headers=carol, timeout=10).json()
    assert usage["messages"] == 0  # the dead server's reservation was given back

    retried = requests.post(
        f"{cluster.nginx}/api/v1/chats/{chat}/messages/",
        json={"content": QUESTION},
        headers={**carol, "Idempotency-Key": "send-1"},
        timeout=30,
    )
    assert retried.status_code == 201, retried.text
    assert retried.json()["user_message"]["id"] == asked["id"]
    assert retried.json()["assistant_message"]["content"]
    assert requests.get(f"{second}/api/v1/health/", timeout=10).json()["database"] == "ok"
