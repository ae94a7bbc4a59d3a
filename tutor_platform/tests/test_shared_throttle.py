"""Two gunicorn processes on two ports share one AI-send budget through Redis."""

import os
from pathlib import Path

import pytest
import requests

from conftest import PASSWORD, free_port, serve_with_gunicorn, wait_until_serving

pytestmark = pytest.mark.system  # starts servers or processes: not in `-m "not system"`

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def two_servers(tmp_path, test_redis):
    env = {
        **os.environ,
        "ENV_FILE": os.devnull,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shared.sqlite3'}",
        "CACHE_URL": test_redis.url,
        "THROTTLE_AI_RATE": "3/min",
        "THROTTLE_USER_RATE": "1000/min",
        "THROTTLE_ANON_RATE": "1000/min",
        "AI_CORE_URL": "stub",
    }
    ports = [free_port(), free_port()]
    processes = [serve_with_gunicorn({**env, "GUNICORN_WORKERS": "1"}, port) for port in ports]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url in urls:
            wait_until_serving(f"{url}/api/v1/health/")
        yield urls
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)


def test_ai_send_budget_is_shared_across_processes(two_servers):
    first, second = two_servers
    account = {"email": "tabs@example.com", "username": "tabs", "password": PASSWORD}
    assert requests.post(f"{first}/api/v1/auth/register/", json=account, timeout=10).status_code == 201
    tokens = requests.post(f"{second}/api/v1/auth/login/", json=account, timeout=10).json()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {tokens['access']}"
    tutor = session.get(f"{first}/api/v1/tutors/", timeout=10).json()["results"][0]["id"]
    chat = session.post(f"{first}/api/v1/chats/", json={"tutor": tutor}, timeout=10).json()["id"]

    def send(base: str) -> requests.Response:
        return session.post(f"{base}/api/v1/chats/{chat}/messages/", json={"content": "Привет"}, timeout=10)

    assert [send(url).status_code for url in (first, second, first)] == [201, 201, 201]
    throttled = send(second)
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "throttled"
    assert 0 < int(throttled.headers["Retry-After"]) <= 60
    assert send(first).status_code == 429
    # Other requests are not part of the AI budget.
    assert session.get(f"{second}/api/v1/chats/{chat}/messages/", timeout=10).status_code == 200
