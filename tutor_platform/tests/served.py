"""The production topology started for real, for the tests that need it:
the three gunicorn services (gunicorn.conf.py, tutor_platform/serving)
behind nginx with deploy/nginx.conf as `manage.py nginx_config` renders it."""

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import free_port, prepare_served_database, start_gunicorn, wait_until_serving
from tutor_platform import serving
from tutor_platform.management.commands import nginx_config

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

MAIN_CONF = """
user root;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 2048; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/site.conf;
}}
"""


def require_nginx() -> None:
    if not Path(NGINX).exists():
        pytest.fail(f"{NGINX} is missing: apt-get install nginx-light (make test installs it)")


def render_site(nginx_port: int, upstreams: dict[str, list[str]]) -> str:
    """deploy/nginx.conf as `manage.py nginx_config` renders it (`upstreams`:
    each service's servers, origins from CORS_ALLOWED_ORIGINS), listening on
    this test's port, logging in its folder."""
    site = nginx_config.render(upstreams, ["https://tutor.example.com"])
    site, listens = re.subn(r"listen 80;", f"listen 127.0.0.1:{nginx_port};", site)
    site, logs = re.subn(r"access_log /var/log/nginx/", "access_log ", site)
    assert listens == logs == 1, "deploy/nginx.conf changed shape; update this test"
    return site


def start_nginx(work: Path, nginx_port: int, upstreams: dict[str, list[str]]) -> subprocess.Popen:
    """nginx with deploy/nginx.conf in front of `upstreams`; the caller stops it."""
    work.mkdir(exist_ok=True)
    (work / "site.conf").write_text(render_site(nginx_port, upstreams))
    (work / "nginx.conf").write_text(MAIN_CONF.format(dir=work))
    command = [NGINX, "-e", str(work / "error.log"), "-p", str(work), "-c", str(work / "nginx.conf"), "-g",
               "daemon off;"]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def logged_within(log: Path, text: str, seconds: float = 5) -> str:
    """The log once it has `text` (nginx writes a request's line after its answer)."""
    deadline = time.monotonic() + seconds
    while text not in (content := log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return content


@dataclass
class Served:
    nginx: str  # the URL students use
    services: dict[str, str]  # each gunicorn service's own URL
    work: Path  # nginx's logs (tutor_platform.access.log) and each service's (<name>.log)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)


@contextmanager
def serve_behind_nginx(env: dict[str, str], work: Path) -> Iterator[Served]:
    """The three services of one app server (GUNICORN_SERVICE=app, ai,
    stream, each on a port of its own) behind nginx, on the database `env`
    names, which this migrates and seeds."""
    require_nginx()
    work.mkdir(exist_ok=True)
    prepare_served_database({**env, "GUNICORN_SERVICES": "app"})
    ports = {name: free_port() for name in serving.SERVICES}
    served = Served("", {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}, work)
    try:
        for name, port in ports.items():
            served.processes[name] = start_gunicorn(
                {**env, "GUNICORN_SERVICES": ",".join(ports), "GUNICORN_SERVICE": name},
                port,
                log=work / f"{name}.log",
            )
        nginx_port = free_port()
        served.processes["nginx"] = start_nginx(
            work, nginx_port, {name: [f"127.0.0.1:{port}"] for name, port in ports.items()}
        )
        served.nginx = f"http://127.0.0.1:{nginx_port}"
        for url in [*served.services.values(), served.nginx]:
            wait_until_serving(f"{url}/api/v1/health/", timeout=60)
        yield served
    finally:
        for process in served.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in served.processes.values():
            process.wait(timeout=15)
