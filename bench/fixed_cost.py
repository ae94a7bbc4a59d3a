"""What every request pays before its view: middleware, DRF's request cycle, the health check.

    .venv/bin/python bench/fixed_cost.py            # ~1 minute

In one process (Django's WSGI handler called directly: no server, no
socket), CPU time per request over `-n` requests, as the median of
`--rounds` interleaved rounds, of:

- `GET /api/v1/health/` as shipped (a database round trip, a cache write);
- a DRF view answering `{}` (no authentication, permission or throttle):
  Django's handler, the middleware and DRF's request cycle;
- a plain Django view answering `{}`: the handler and the middleware;
- the same with no middleware at all: the handler alone;
- the DRF view with each middleware left out in turn: what that one costs.

PostgreSQL and Redis on this machine, as `bench/run.py` uses them.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.update(
    ENV_FILE=os.devnull,
    DEBUG="False",
    SECRET_KEY="bench-fixed-cost-" + "x" * 50,
    ALLOWED_HOSTS="testserver",
    SECURE_SSL_REDIRECT="False",
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres",
    CACHE_URL="redis://127.0.0.1:6379/14",
    LOG_LEVEL="WARNING",
    STATICFILES_MANIFEST="False",
    AI_CORE_URL="stub",
    AI_CORE_ALLOW_STUB="True",
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor_platform.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.test import RequestFactory, override_settings  # noqa: E402
from django.urls import path  # noqa: E402
from rest_framework import permissions  # noqa: E402
from rest_framework.response import Response  # noqa: E402

from tutor_platform.api import APIView  # noqa: E402
from tutor_platform.db import base as db_base  # noqa: E402
from tutor_platform.urls import urlpatterns as shipped  # noqa: E402


class Empty(APIView):
    permission_classes = [permissions.AllowAny]
    authentication_classes = []
    throttle_classes = []

    def get(self, request):
        return Response({})


def empty(request):
    return JsonResponse({})


urlpatterns = [path("probe/drf/", Empty.as_view()), path("probe/django/", empty), *shipped]


def per_request(handler: WSGIHandler, url: str, n: int) -> float:
    environ = RequestFactory().get(url).environ
    for _ in range(20):
        b"".join(handler(dict(environ), lambda *a: None))
    started = time.process_time()
    for _ in range(n):
        response = handler(dict(environ), lambda *a: None)
        b"".join(response)
        response.close()
    return (time.process_time() - started) / n


# What a middleware needs before it: Django refuses the chain without it.
SESSIONS = "django.contrib.sessions.middleware.SessionMiddleware"
NEEDS = {
    "django.contrib.auth.middleware.AuthenticationMiddleware": SESSIONS,
    "django.contrib.messages.middleware.MessageMiddleware": SESSIONS,
}


def short(name: str) -> str:
    return name.rsplit(".", 1)[1]


def without(middleware: list[str], name: str) -> tuple[str, str, list[str], bool]:
    """The DRF view without `name` and what needs it."""
    left_out = [name, *(m for m in middleware if NEEDS.get(m) == name)]
    label = f"DRF view without {' and '.join(short(m) for m in left_out)}"
    return label, "/probe/drf/", [m for m in middleware if m not in left_out], True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    middleware = list(settings.MIDDLEWARE)
    cases = [  # label, path, middleware, the pool's quiet check (tutor_platform.db)
        ("GET /api/v1/health/", "/api/v1/health/", middleware, True),
        ("GET /api/v1/health/, every checkout checked by a round trip", "/api/v1/health/", middleware, False),
        ("DRF view, `{}`", "/probe/drf/", middleware, True),
        ("Django view, `{}`", "/probe/django/", middleware, True),
        ("Django view, `{}`, no middleware", "/probe/django/", [], True),
        *(without(middleware, name) for name in middleware),
    ]
    rounds: list[list[float]] = [[] for _ in cases]
    quiet = db_base._quiet
    with override_settings(ROOT_URLCONF=__name__):
        for _ in range(args.rounds):
            for i, (_label, url, chosen, quiet_check) in enumerate(cases):
                db_base._quiet = quiet if quiet_check else (lambda conn: False)
                with override_settings(MIDDLEWARE=chosen):
                    rounds[i].append(per_request(WSGIHandler(), url, args.n))
    db_base._quiet = quiet
    medians = [statistics.median(r) for r in rounds]
    drf = medians[2]
    print("| request | CPU per request | vs the DRF view |\n|---|---|---|")
    for (label, *_), value in zip(cases, medians, strict=True):
        print(f"| {label} | {value * 1e6:.0f} µs | {(value - drf) * 1e6:+.0f} µs |")


if __name__ == "__main__":
    main()
