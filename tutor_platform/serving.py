"""Which requests wait on AI-Core, and how many threads serve them.

Read by the gunicorn worker (tutor_platform/workers.py), the CPU slots
(tutor_platform/cpu_gate.py) and the settings (the database pool's size);
kept apart from the worker so that Django's start-up does not import gunicorn.
"""

import os
import re

# Ids as the routes take them (tutor_platform.api.ID_PATTERN).
_AI_PATHS = re.compile(r"^/api/v1/chats/[0-9]{1,18}/(messages|reply|regenerate|stream)/$")
# Threads per process for requests that wait on AI-Core (GUNICORN_AI_THREADS).
# They hold no database connection while they wait, so the database does
# not bound them; memory does, and a waiting thread costs little of it.
DEFAULT_AI_THREADS = 128


def ai_threads() -> int:
    return int(os.environ.get("GUNICORN_AI_THREADS") or DEFAULT_AI_THREADS)


def asks_ai_core(method: str, path: str) -> bool:
    """POST /api/v1/chats/<id>/{messages,reply,regenerate}/ and GET .../stream/."""
    found = _AI_PATHS.match(path)
    if found is None:
        return False
    return method == ("GET" if found[1] == "stream" else "POST")
