"""The production topology: nginx (deploy/nginx.conf) in front of the three
gunicorn services (gunicorn.conf.py, tutor_platform/serving). Issue 10,
item 7: 80 half-sent requests froze gunicorn on its own; through nginx, 200
of them do not delay anyone. Issue 25: nginx routes each request to its
service by the rule tutor_platform.serving.service_for states."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import free_port, redis_space
from tutor_platform import serving
from tutor_platform.tests.served import MAIN_CONF, NGINX, logged_within, serve_behind_nginx, start_nginx

pytestmark = pytest.mark.system  # starts servers or processes: not in `-m "not system"`

BASE_DIR = Path(__file__).resolve().parents[2]
HALF_OPEN = 200
GUNICORN_THREADS = 8


@pytest.fixture(scope="module")
def topology(tmp_path_factory):
    work = tmp_path_factory.mktemp("proxy")
    with redis_space("reverse-proxy") as redis:
        env = {
            **os.environ,
            "ENV_FILE": os.devnull,
            "DATABASE_URL": f"sqlite:///{work / 'proxy.sqlite3'}",
            "CACHE_URL": redis.url,
            "AI_CORE_URL": "stub",
            "GUNICORN_WORKERS": "1",
            "GUNICORN_THREADS": str(GUNICORN_THREADS),
            "GUNICORN_AI_THREADS": "4",
            "GUNICORN_STREAM_THREADS": "4",
            "NUM_PROXIES": "1",
        }
        with serve_behind_nginx(env, work) as served:
            yield {"app": served.services["app"], "nginx": served.nginx, "work": work,
                   "ports": {name: url.rsplit(":", 1)[1] for name, url in served.services.items()}}  # fmt: skip


def half_open(url: str, count: int) -> list[socket.socket]:
    """Connections that each sent the start of a request and then nothing."""
    host, port = url.removeprefix("http://").split(":")
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((host, int(port)), timeout=5)
        sock.sendall(b"GET /api/v1/tutors/ HTTP/1.1\r\nHost: localhost\r\n")
        sockets.append(sock)
    return sockets


def get_tutors(url: str, timeout: float) -> requests.Response:
    return requests.get(f"{url}/api/v1/tutors/", timeout=timeout)


def test_half_open_connections_freeze_gunicorn_alone(topology):
    """The control: without nginx, a handful of slow clients take every thread."""
    held = half_open(topology["app"], GUNICORN_THREADS * 2)
    try:
        with pytest.raises(requests.exceptions.ReadTimeout):
            get_tutors(topology["app"], timeout=2)
    finally:
        for sock in held:
            sock.close()
    assert get_tutors(topology["app"], timeout=10).status_code == 200


def test_behind_nginx_200_half_open_connections_delay_nobody(topology):
    assert get_tutors(topology["nginx"], timeout=5).json()["count"] > 0
    held = half_open(topology["nginx"], HALF_OPEN)
    try:
        answers = [get_tutors(topology["nginx"], timeout=5) for _ in range(20)]
    finally:
        for sock in held:
            sock.close()
    assert [answer.status_code for answer in answers] == [200] * 20
    # Every answer came from the app, whole.
    assert all(answer.json()["count"] > 0 for answer in answers)


def test_nginx_answers_its_own_errors_as_json(topology):
    too_big = requests.post(
        f"{topology['nginx']}/api/v1/auth/login/",
        data=b"{" + b" " * (3 * 1024 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert too_big.status_code == 413
    assert too_big.json()["code"] == "request_too_large"
    long_line = requests.get(f"{topology['nginx']}/api/v1/tutors/?q={'x' * 20000}", timeout=10)
    assert long_line.status_code == 414
    assert long_line.json()["code"] == "uri_too_long"
    big_header = requests.get(
        f"{topology['nginx']}/api/v1/tutors/", headers={"X-Big": "y" * 20000}, timeout=10
    )
    assert big_header.status_code == 400
    assert big_header.json()["code"] == "headers_too_large"


def test_nginx_lets_uploads_up_to_the_file_limit_through_and_no_further(topology):
    def upload(megabytes: float) -> requests.Response:
        files = {"file": ("photo.jpg", b"x" * int(megabytes * 1024 * 1024), "image/jpeg")}
        return requests.post(f"{topology['nginx']}/api/v1/attachments/", files=files, timeout=30)

    # Over the 2.5 MiB of other bodies, the app answers (no token: 401), every
    # time: it reads the body it did not need, or gunicorn would close the
    # connection with most of it unread and nginx would answer 502 instead.
    answers = [upload(5) for _ in range(12)]
    assert [(a.status_code, a.json()["code"]) for a in answers] == [(401, "not_authenticated")] * 12
    refused = upload(11)
    assert refused.status_code == 413
    assert refused.json()["code"] == "file_too_large"


ORIGIN = "https://tutor.example.com"  # deploy/nginx.conf's example origin


def test_nginx_errors_carry_cors_and_the_request_id(topology):
    """Issue 26, item 8: a frontend on another origin must be able to read them."""
    too_big = requests.post(
        f"{topology['nginx']}/api/v1/auth/login/", data=b"{" + b" " * (3 * 1024 * 1024) + b"}",
        headers={"Content-Type": "application/json", "Origin": ORIGIN, "X-Request-ID": "tab-7.retry:2"},
        timeout=10,
    )  # fmt: skip
    assert (too_big.status_code, too_big.json()["code"]) == (413, "request_too_large")
    assert too_big.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "X-Request-ID" in too_big.headers["Access-Control-Expose-Headers"]
    assert too_big.headers["X-Request-ID"] == "tab-7.retry:2"
    stranger = requests.post(
        f"{topology['nginx']}/api/v1/auth/login/", data=b"{" + b" " * (3 * 1024 * 1024) + b"}",
        headers={"Content-Type": "application/json", "Origin": "https://evil.example"}, timeout=10,
    )  # fmt: skip
    assert stranger.status_code == 413 and "Access-Control-Allow-Origin" not in stranger.headers
    # A request line too long is refused before nginx reads a header (no
    # Origin to answer): it gets nginx's own request id, no CORS.
    long_line = requests.get(
        f"{topology['nginx']}/api/v1/tutors/?q={'x' * 20000}", headers={"Origin": ORIGIN}, timeout=10
    )
    assert long_line.status_code == 414 and re.fullmatch(r"[0-9a-f]{32}", long_line.headers["X-Request-ID"])


def test_the_app_sees_the_request_id_nginx_logs(topology):
    mine = requests.get(
        f"{topology['nginx']}/api/v1/health/", headers={"X-Request-ID": "abc-123"}, timeout=10
    )
    assert mine.headers["X-Request-ID"] == "abc-123"
    unsafe = requests.get(
        f"{topology['nginx']}/api/v1/health/", headers={"X-Request-ID": "a b\tc"}, timeout=10
    )
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["X-Request-ID"])  # nginx's, passed to the app
    # Issue 26, item 7: both access logs carry the id, and the app's the
    # client's address as nginx saw it (NUM_PROXIES=1), not what it claimed.
    spoofed = requests.get(
        f"{topology['nginx']}/api/v1/tutors/",
        headers={"X-Request-ID": "spoof-1", "X-Forwarded-For": "10.9.8.7"},
        timeout=10,
    )
    assert spoofed.status_code == 200
    expected = [
        f"request_id={request_id} " for request_id in ("abc-123", unsafe.headers["X-Request-ID"], "spoof-1")
    ]
    nginx_log = logged_within(topology["work"] / "tutor_platform.access.log", expected[-1])
    for line in expected:
        assert line in nginx_log
    app_log = (topology["work"] / "app.log").read_text()  # the app service's
    (line,) = [line for line in app_log.splitlines() if "request_id=spoof-1 " in line]
    assert re.search(r"tutor_platform\.access request_id=spoof-1 GET /api/v1/tutors/ 200 [0-9.]+ms user=- "
                     r"client=127\.0\.0\.1$", line), line  # fmt: skip


def test_the_app_down_is_503_with_cors_and_retry_after(tmp_path):
    dead_app, nginx_port = free_port(), free_port()  # nothing listens on dead_app
    nginx = start_nginx(
        tmp_path / "down", nginx_port, {name: [f"127.0.0.1:{dead_app}"] for name in serving.SERVICES}
    )
    try:
        url = f"http://127.0.0.1:{nginx_port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                down = requests.get(f"{url}/api/v1/tutors/", headers={"Origin": ORIGIN}, timeout=5)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert down.status_code == 503
        assert down.json()["code"] == "service_unavailable"
        assert down.headers["Retry-After"] == "5"
        assert down.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert down.headers["X-Request-ID"]
    finally:
        nginx.terminate()
        nginx.wait(timeout=15)


def nginx_config(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`manage.py nginx_config` with `env`, without the suite's GUNICORN_* (one service)."""
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("GUNICORN_")}
    return subprocess.run(
        [sys.executable, "manage.py", "nginx_config", *args], cwd=BASE_DIR, capture_output=True, text=True,
        env={**inherited, "ENV_FILE": os.devnull, "DEBUG": "True", **env},
    )  # fmt: skip


def upstream(site: str, name: str) -> list[str]:
    """The servers of the rendered site's upstream for service `name`."""
    block = re.search(rf"upstream tutor_platform_{name} {{(.*?)}}", site, re.DOTALL)
    assert block, f"no upstream for {name}"
    return re.findall(r"server (\S+);", block[1])


def test_nginx_config_renders_the_deployments_upstreams_and_origins(tmp_path):
    """Issue 26, item 5: one source of truth for the upstreams (the services'
    binds) and the origins; issue 25: one upstream per service."""
    env = {"GUNICORN_BIND": "unix:/run/tutor/app.sock", "GUNICORN_AI_BIND": "unix:/run/tutor/ai.sock",
           "GUNICORN_STREAM_BIND": "unix:/run/tutor/stream.sock",
           "CORS_ALLOWED_ORIGINS": "https://app.school.example,http://localhost:5173"}  # fmt: skip
    done = nginx_config(**env)
    assert done.returncode == 0, done.stderr
    assert [upstream(done.stdout, name) for name in ("app", "ai", "stream")] == [
        ["unix:/run/tutor/app.sock"],
        ["unix:/run/tutor/ai.sock"],
        ["unix:/run/tutor/stream.sock"],
    ]
    assert '"https://app.school.example" $http_origin;' in done.stdout
    assert '"http://localhost:5173" $http_origin;' in done.stdout and "tutor.example.com" not in done.stdout
    (tmp_path / "site.conf").write_text(done.stdout)
    (tmp_path / "nginx.conf").write_text(MAIN_CONF.format(dir=tmp_path))
    checked = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                              "-e", str(tmp_path / "error.log")], capture_output=True, text=True)  # fmt: skip
    assert checked.returncode == 0, checked.stderr

    bad = nginx_config(**{**env, "CORS_ALLOWED_ORIGINS": 'https://ok.example,"; evil'})
    assert bad.returncode != 0 and "CORS_ALLOWED_ORIGINS" in bad.stderr
    # One service for everything: every upstream is the app service.
    alone = nginx_config(GUNICORN_SERVICES="app", GUNICORN_BIND="127.0.0.1:9000")
    assert [upstream(alone.stdout, name) for name in ("app", "ai", "stream")] == [["127.0.0.1:9000"]] * 3
    # Several app servers: each host, on the binds' ports.
    several = nginx_config("--server", "10.0.0.11", "--server", "10.0.0.12")
    assert several.returncode == 0, several.stderr
    assert upstream(several.stdout, "ai") == ["10.0.0.11:8010", "10.0.0.12:8010"]
    assert upstream(several.stdout, "stream") == ["10.0.0.11:8020", "10.0.0.12:8020"]
    for args, extra, message in [
        (("--server", "10.0.0.11:8000"), {}, "without a port"),
        (("--server", "10.0.0.11; evil"), {}, "without a port"),
        (("--server", "10.0.0.11"), env, "needs TCP binds"),
        ((), {"GUNICORN_AI_BIND": "127.0.0.1:8010; evil"}, "host:port or unix:/path"),
    ]:
        refused = nginx_config(*args, **extra)
        assert refused.returncode != 0 and message in refused.stderr, (args, refused.stderr)


def test_nginx_routes_each_request_to_its_service(topology):
    """The map in deploy/nginx.conf sends each request where serving.service_for says."""
    requests_made = [
        ("GET", "/api/v1/tutors/"),
        ("POST", "/api/v1/chats/12/messages/"),
        ("GET", "/api/v1/chats/12/messages/?limit=5"),
        ("POST", "/api/v1/chats/12/reply/"),
        ("POST", "/api/v1/chats/12/regenerate/"),
        ("GET", "/api/v1/chats/12/stream/"),
        ("DELETE", "/api/v1/chats/12/messages/"),
    ]
    for index, (method, path) in enumerate(requests_made):
        answered = requests.request(
            method, f"{topology['nginx']}{path}", headers={"X-Request-ID": f"route-{index}"}, timeout=10
        )
        # An answer from the app (the catalogue is public), not from nginx.
        assert answered.status_code == (200 if path == "/api/v1/tutors/" else 401), (method, path)
    log = logged_within(topology["work"] / "tutor_platform.access.log", f"request_id=route-{index} ")
    for index, (method, path) in enumerate(requests_made):
        (line,) = [line for line in log.splitlines() if f"request_id=route-{index} " in line]
        service = serving.service_for(method, path.split("?")[0])
        assert f"upstream=127.0.0.1:{topology['ports'][service]} " in line, (method, path, line)
    assert {serving.service_for(m, p.split("?")[0]) for m, p in requests_made} == {"app", "ai", "stream"}


def test_gunicorn_control_socket_is_off_unless_given_a_path_of_its_own(monkeypatch):
    """Issue 26, item 5: a second gunicorn of the same user took over the default socket."""
    import runpy

    monkeypatch.delenv("GUNICORN_CONTROL_SOCKET", raising=False)
    default = runpy.run_path(str(BASE_DIR / "gunicorn.conf.py"))
    assert default["control_socket_disable"] is True
    monkeypatch.setenv("GUNICORN_CONTROL_SOCKET", "/run/tutor/app.ctl")
    chosen = runpy.run_path(str(BASE_DIR / "gunicorn.conf.py"))
    assert (chosen["control_socket"], chosen["control_socket_disable"]) == ("/run/tutor/app.ctl", False)
