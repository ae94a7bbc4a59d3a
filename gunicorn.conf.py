"""gunicorn settings for production: `gunicorn tutor_platform.wsgi -c gunicorn.conf.py`.

Requests spend most of their time waiting on AI-Core, so each worker runs
many threads; every knob can be set from the environment.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 32))
# A send may wait AI_CORE_TIMEOUT (60 s) plus retries; leave room for it.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 200))
graceful_timeout = 30
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 5000))
max_requests_jitter = 500
accesslog = None  # the application logs one line per request, with its request id
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
