"""gunicorn settings for production: `gunicorn tutor_platform.wsgi -c gunicorn.conf.py`.

gunicorn runs behind nginx (`deploy/nginx.conf`), which reads each request
whole before passing it on, so it binds to the loopback interface by
default. Requests spend most of their time waiting on AI-Core, so each
worker runs many threads. Every knob can be set from the environment or the
env file the app reads (ENV_FILE, default .env); the settings size the
database pool from the same GUNICORN_WORKERS and GUNICORN_THREADS.
"""

import multiprocessing
import os

import environ

environ.Env.read_env(os.environ.get("ENV_FILE", os.path.join(os.path.dirname(__file__), ".env")))

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# gunicorn's control socket (for `gunicornc`) defaults to one path per user
# account: a second gunicorn of the same user (another service, another
# checkout) would take it over. Off unless GUNICORN_CONTROL_SOCKET names a
# path of this service's own.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
# gthread, with requests that wait on AI-Core (sends, /reply/, /regenerate/,
# re-attached streams) in a pool of their own, GUNICORN_AI_THREADS (128)
# threads per process: a burst of waiting students cannot take the threads
# everyone else needs (tutor_platform/serving/worker.py).
worker_class = "tutor_platform.serving.worker.TwoPoolWorker"
threads = int(os.environ.get("GUNICORN_THREADS", 32))
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
