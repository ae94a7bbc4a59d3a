"""Which requests wait on AI-Core, and how many threads serve them.

Read by the gunicorn worker (tutor_platform/workers.py), the CPU slots
(tutor_platform/cpu_gate.py) and the settings (the database pool's size);
kept apart from the worker so that Django's start-up does not import gunicorn.
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
