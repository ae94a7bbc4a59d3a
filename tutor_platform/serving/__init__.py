"""How the product is served: processes, thread pools and CPU slots.

gunicorn runs GUNICORN_WORKERS processes (the cores by default). Each
process has three thread pools (worker.py): GUNICORN_THREADS for ordinary
requests, GUNICORN_AI_THREADS for those that wait on AI-Core (a send,
/reply/, /regenerate/) and GUNICORN_STREAM_THREADS for re-attached streams,
so students waiting on the tutor never take the threads the catalogue, the
logins and the message pages need. Which pool a request goes to is decided
here from its request line (`pool_for`). Inside a process, at most
AI_CPU_SLOTS of the AI requests run Python at once (cpu_gate.py): each
holds a slot while it works and sets it aside while AI-Core thinks. The
database pool is sized from the same thread counts (settings).

This module is imported by the settings and must not import gunicorn.

Private names this product relies on (PRIVATE_NAMES below; each is pinned
by tutor_platform/tests/test_private_names.py, which fails when a library
renames or drops one, the signal to revisit the code that uses it):

- gunicorn's gthread worker (serving/worker.py): ThreadWorker's
  `enqueue_req`, `handle`, `finish_request`, `on_pending_socket_readable`,
  `tpool`, `poller`, `pending_conns`, `method_queue` (and its `defer`), and
  TConn's `sock`, `initialized`, `data_ready`, `timeout`.
- Django's PostgreSQL backend (tutor_platform/db/base.py): DatabaseWrapper's
  `_connection_pools` and `_configure_connection`.
- The standard library's traceback (tutor_platform/logging.py):
  TracebackException's `_str`, replaced for database errors.
"""

import os
import re

# Object ids in URLs: digits only, and short enough to fit a 64-bit integer,
# so `/chats/abc/` and `/chats/99999999999999999999999/` are plain 404s. The
# routes take them from here too (tutor_platform.api re-exports it).
ID_PATTERN = "[0-9]{1,18}"
_AI_PATHS = re.compile(rf"^/api/v1/chats/{ID_PATTERN}/(messages|reply|regenerate|stream)/$")
# Threads per process for requests that wait on AI-Core (GUNICORN_AI_THREADS).
# They hold no database connection while they wait, so the database does
# not bound them; memory does, and a waiting thread costs little of it.
DEFAULT_AI_THREADS = 128
# Threads per process for re-attached streams (GUNICORN_STREAM_THREADS): a
# pool of their own, so that followers never take a thread a send needs.
# chats.replies.followers caps them at 2 per chat and 5 per student.
DEFAULT_STREAM_THREADS = 32


def ai_threads() -> int:
    return int(os.environ.get("GUNICORN_AI_THREADS") or DEFAULT_AI_THREADS)


def stream_threads() -> int:
    return int(os.environ.get("GUNICORN_STREAM_THREADS") or DEFAULT_STREAM_THREADS)


def pool_for(method: str, path: str) -> str | None:
    """`ai` for POST /api/v1/chats/<id>/{messages,reply,regenerate}/, `stream`
    for GET .../stream/ (a follower), None for everything else."""
    found = _AI_PATHS.match(path)
    if found is None:
        return None
    if found[1] == "stream":
        return "stream" if method == "GET" else None
    return "ai" if method == "POST" else None


def asks_ai_core(method: str, path: str) -> bool:
    """A send, a reply, a regeneration or a follower (they wait on AI-Core)."""
    return pool_for(method, path) is not None


# (module, class, name, how it is found): "attribute" on the class, or
# "self" for an instance attribute its __init__ sets.
PRIVATE_NAMES = (
    ("gunicorn.workers.gthread", "ThreadWorker", "enqueue_req", "attribute"),
    ("gunicorn.workers.gthread", "ThreadWorker", "handle", "attribute"),
    ("gunicorn.workers.gthread", "ThreadWorker", "finish_request", "attribute"),
    ("gunicorn.workers.gthread", "ThreadWorker", "on_pending_socket_readable", "attribute"),
    ("gunicorn.workers.gthread", "ThreadWorker", "tpool", "self"),
    ("gunicorn.workers.gthread", "ThreadWorker", "poller", "self"),
    ("gunicorn.workers.gthread", "ThreadWorker", "pending_conns", "self"),
    ("gunicorn.workers.gthread", "ThreadWorker", "method_queue", "self"),
    ("gunicorn.workers.gthread", "PollableMethodQueue", "defer", "attribute"),
    ("gunicorn.workers.gthread", "TConn", "sock", "self"),
    ("gunicorn.workers.gthread", "TConn", "initialized", "self"),
    ("gunicorn.workers.gthread", "TConn", "data_ready", "self"),
    ("gunicorn.workers.gthread", "TConn", "timeout", "self"),
    ("django.db.backends.postgresql.base", "DatabaseWrapper", "_connection_pools", "attribute"),
    ("django.db.backends.postgresql.base", "DatabaseWrapper", "_configure_connection", "attribute"),
    ("traceback", "TracebackException", "_str", "self"),
)
