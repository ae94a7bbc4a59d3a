"""gunicorn settings for production, one service per gunicorn:

    GUNICORN_SERVICE=app gunicorn tutor_platform.wsgi -c gunicorn.conf.py
    GUNICORN_SERVICE=ai gunicorn tutor_platform.wsgi -c gunicorn.conf.py
    GUNICORN_SERVICE=stream gunicorn tutor_platform.wsgi -c gunicorn.conf.py

nginx (`deploy/nginx.conf`) routes each request to its service and reads it
whole before passing it on, so each binds to the loopback interface by
default (127.0.0.1:8000, :8010, :8020; AI-Core's stub takes :8001). The
services, their threads and why: tutor_platform/serving/__init__.py. Every
knob can be set from the environment or the env file the app reads
(ENV_FILE, default .env); the settings size the database pool from the same
variables.
"""

import multiprocessing
import os
import sys

import environ

BASE_DIR = os.path.dirname(os.path.abspath(__file__))
environ.Env.read_env(os.environ.get("ENV_FILE", os.path.join(BASE_DIR, ".env")))
sys.path.insert(0, BASE_DIR)

from tutor_platform.serving import services_run, this_service, threads_for  # noqa: E402  (after the env file is read)

service = this_service()
bind = service.bind()
proc_name = f"tutor_platform-{service.name}"
# gunicorn's control socket (for `gunicornc`) defaults to one path per user
# account: a second gunicorn of the same user (another service, another
# checkout) would take it over. Off unless GUNICORN_CONTROL_SOCKET names a
# path of this service's own.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
worker_class = "gthread"
# Requests spend most of their time waiting (on AI-Core in the `ai` service),
# so each process runs many threads: GUNICORN_THREADS (32), GUNICORN_AI_THREADS
# (128) or GUNICORN_STREAM_THREADS (32); `app` alone, all three.
threads = threads_for(service, services_run())
# A send may wait AI_CORE_TIMEOUT (60 s) plus retries; leave room for it.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 200))
graceful_timeout = 30
keepalive = 5
# No recycling by default: memory stays flat under load (bench/run.py
# reports gunicorn's RSS after each load), and recycling a worker every few thousand requests cut in on
# sends still waiting on AI-Core (graceful_timeout is shorter than a send).
# Set GUNICORN_MAX_REQUESTS to bound a leak, should one appear.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 0))
max_requests_jitter = max_requests // 10
accesslog = None  # the application logs one line per request, with its request id
errorlog = "-"
# Only nginx on this host may set X-Forwarded-Proto.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_worker_init(worker) -> None:
    """Each worker opens its Redis pool before any request (django-redis
    creates it on first use without a lock, so a first burst of threads
    could each make one), and watches the replies being generated from its
    start (chats.replies.heartbeat), so that one whose process died is ended
    within seconds even before this worker generates a reply of its own."""
    from chats.replies import heartbeat
    from tutor_platform.cache import redis_for

    redis_for("warm-up")
    heartbeat.start()
