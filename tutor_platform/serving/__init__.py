"""How the product is served: three gunicorn services behind nginx.

The same code runs as up to three plain gthread gunicorn services per app
server, and nginx (deploy/nginx.conf) routes each request by method and
path (`service_for`, the same rule as nginx's map):

- `ai`: POST /api/v1/chats/<id>/{messages,reply,regenerate}/, the requests
  that wait on AI-Core for seconds, up to a minute (GUNICORN_AI_THREADS,
  128, threads per process: they hold no database connection while they
  wait, so memory bounds them, not the database);
- `stream`: GET /api/v1/chats/<id>/stream/, re-attached streams
  (GUNICORN_STREAM_THREADS, 32), so followers never take a thread a send
  needs (chats.replies.followers caps them at 2 per chat and 5 per student);
- `app`: everything else (GUNICORN_THREADS, 32), so a burst of waiting
  students never takes the threads the catalogue, the logins and the
  message pages need.

GUNICORN_SERVICE names the service a gunicorn is (gunicorn.conf.py reads
it for its bind and threads); GUNICORN_SERVICES lists the ones this app
server runs (default all three; `app` alone serves everything in one
service, with the threads of all three, for a box that cannot spare the
memory of six processes). The
settings split the database budget over all of their processes.
Measured against the two-pool worker this replaced:
docs/decisions/2026-12-05-serving-topology.md.

Inside a process, at most AI_CPU_SLOTS of the requests that ask AI-Core
run Python at once (cpu_gate.py).

This module is imported by the settings and gunicorn.conf.py, and imports
neither Django nor gunicorn.

Private names this product relies on (PRIVATE_NAMES below; each is pinned
by tutor_platform/tests/test_private_names.py, which fails when a library
renames or drops one, the signal to revisit the code that uses it):

- Django's PostgreSQL backend (tutor_platform/db/base.py): DatabaseWrapper's
  `_connection_pools` and `_configure_connection`.
- The standard library's traceback (tutor_platform/logging.py):
  TracebackException's `_str`, replaced for database errors.
- Django's queryset (tutor_platform/prepared.py): `get_related_populators`,
  and QuerySet's `_iterable_class` and `_known_related_objects`.
"""

import os
import re
from dataclasses import dataclass

# Object ids in URLs: digits only, and short enough to fit a 64-bit integer,
# so `/chats/abc/` and `/chats/99999999999999999999999/` are plain 404s. The
# routes take them from here too (tutor_platform.api re-exports it).
ID_PATTERN = "[0-9]{1,18}"
_AI_PATHS = re.compile(rf"^/api/v1/chats/{ID_PATTERN}/(messages|reply|regenerate|stream)/$")


class ServingError(ValueError):
    """A GUNICORN_SERVICE or GUNICORN_SERVICES value that names no service."""


@dataclass(frozen=True)
class Service:
    name: str
    bind_variable: str
    default_bind: str
    threads_variable: str
    default_threads: int

    def bind(self) -> str:
        return os.environ.get(self.bind_variable) or self.default_bind

    def threads(self) -> int:
        return int(os.environ.get(self.threads_variable) or self.default_threads)


SERVICES = {
    service.name: service
    for service in (
        Service("app", "GUNICORN_BIND", "127.0.0.1:8000", "GUNICORN_THREADS", 32),
        Service("ai", "GUNICORN_AI_BIND", "127.0.0.1:8010", "GUNICORN_AI_THREADS", 128),
        Service("stream", "GUNICORN_STREAM_BIND", "127.0.0.1:8020", "GUNICORN_STREAM_THREADS", 32),
    )
}


def services_run() -> list[Service]:
    """GUNICORN_SERVICES: the services this app server runs, `app` among them."""
    names = [name.strip() for name in os.environ.get("GUNICORN_SERVICES", "app,ai,stream").split(",")]
    unknown = [name for name in names if name not in SERVICES]
    if unknown or "app" not in names or len(set(names)) != len(names):
        raise ServingError(
            f"GUNICORN_SERVICES lists each of {', '.join(SERVICES)} at most once, app among them."
        )
    return [SERVICES[name] for name in names]


def this_service() -> Service:
    """GUNICORN_SERVICE: the service this process is (default `app`)."""
    name = os.environ.get("GUNICORN_SERVICE") or "app"
    if name not in {service.name for service in services_run()}:
        raise ServingError(f"GUNICORN_SERVICE={name!r} is not one of GUNICORN_SERVICES.")
    return SERVICES[name]


def threads_for(service: Service, run: list[Service]) -> int:
    """A process's threads: its service's own; the `app` service also takes
    the threads of each service the server does not run, whose requests it
    serves (GUNICORN_SERVICES=app: 32 + 128 + 32)."""
    if service.name != "app":
        return service.threads()
    running = {other.name for other in run}
    served = [other for other in SERVICES.values() if other.name == "app" or other.name not in running]
    return sum(other.threads() for other in served)


def service_for(method: str, path: str) -> str:
    """The service nginx routes a request to: `ai` for POST
    /api/v1/chats/<id>/{messages,reply,regenerate}/, `stream` for GET
    .../stream/ (a follower), `app` for everything else."""
    found = _AI_PATHS.match(path)
    if found is None:
        return "app"
    if found[1] == "stream":
        return "stream" if method == "GET" else "app"
    return "ai" if method == "POST" else "app"


def asks_ai_core(method: str, path: str) -> bool:
    """A send, a reply, a regeneration or a follower (they wait on AI-Core)."""
    return service_for(method, path) != "app"


# (module, class, name, how it is found): "attribute" on the class, or
# "self" for an instance attribute its __init__ sets.
PRIVATE_NAMES = (
    ("django.db.backends.postgresql.base", "DatabaseWrapper", "_connection_pools", "attribute"),
    ("django.db.backends.postgresql.base", "DatabaseWrapper", "_configure_connection", "attribute"),
    ("traceback", "TracebackException", "_str", "self"),
    ("django.db.models", "query", "get_related_populators", "attribute"),
    ("django.db.models.query", "QuerySet", "_iterable_class", "self"),
    ("django.db.models.query", "QuerySet", "_known_related_objects", "self"),
)
