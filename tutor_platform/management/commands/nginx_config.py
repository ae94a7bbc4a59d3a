"""Prints deploy/nginx.conf for this deployment, from the settings the app
itself runs with: the upstream from GUNICORN_BIND and the origins nginx's own
errors answer with CORS headers from CORS_ALLOWED_ORIGINS. One source of
truth: change the environment, render again, reload nginx.

    ENV_FILE=.env.production .venv/bin/python manage.py nginx_config \
        > /etc/nginx/sites-available/tutor_platform

In front of several app servers, name each (`--upstream 10.0.0.11:8000
--upstream 10.0.0.12:8000`): nginx spreads requests over them and passes a
request that could not reach one to the next.
"""

import os
import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

TEMPLATE = Path(settings.BASE_DIR) / "deploy" / "nginx.conf"
UPSTREAM = re.compile(r"^(\s*)server 127\.0\.0\.1:8000;$", re.MULTILINE)
ORIGINS = re.compile(r'^(\s*)"https://tutor\.example\.com" \$http_origin;$', re.MULTILINE)


def upstream_server(bind: str) -> str:
    """gunicorn's bind (host:port, or unix:/path) as nginx's upstream server."""
    return bind if bind.startswith("unix:") else bind.removeprefix("tcp://")


def render(binds: list[str], origins: list[str]) -> str:
    site = TEMPLATE.read_text()
    servers = "\n".join(f"{{indent}}server {upstream_server(bind)};" for bind in binds)
    site, upstreams = UPSTREAM.subn(lambda m: servers.replace("{indent}", m.group(1)), site)
    allowed = "".join(f'{{indent}}"{origin}" $http_origin;\n' for origin in origins)
    site, maps = ORIGINS.subn(lambda m: allowed.replace("{indent}", m.group(1)).rstrip("\n"), site)
    if upstreams != 1 or maps != 1:
        raise CommandError(
            "deploy/nginx.conf changed shape: the upstream or the origins map is not where expected."
        )
    return site


class Command(BaseCommand):
    help = "Print deploy/nginx.conf with this deployment's upstream (GUNICORN_BIND) and CORS origins."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--upstream",
            action="append",
            metavar="HOST:PORT",
            help="An app server nginx passes requests to; repeat it for each (default: GUNICORN_BIND).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # What gunicorn.conf.py binds to.
        binds = options["upstream"] or [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
        if any(
            not re.fullmatch(r"(unix:/[\w./-]+|(tcp://)?[A-Za-z0-9.\[\]:-]+:\d+)", bind) for bind in binds
        ):
            raise CommandError("An upstream is host:port or unix:/path.")
        origins = settings.CORS_ALLOWED_ORIGINS
        if any(not re.fullmatch(r"https?://[A-Za-z0-9.:\[\]-]+", origin) for origin in origins):
            raise CommandError("CORS_ALLOWED_ORIGINS must be origins like https://tutor.example.com.")
        self.stdout.write(render(binds, origins), ending="")
