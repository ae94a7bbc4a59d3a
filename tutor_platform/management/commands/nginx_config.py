"""Prints deploy/nginx.conf for this deployment, from the settings the app
itself runs with: an upstream per service (tutor_platform/serving) from
GUNICORN_BIND, GUNICORN_AI_BIND and GUNICORN_STREAM_BIND (a service not in
GUNICORN_SERVICES is the app service's), and the origins nginx's own errors
answer with CORS headers from CORS_ALLOWED_ORIGINS. One source of truth:
change the environment, render again, reload nginx.

    ENV_FILE=.env.production .venv/bin/python manage.py nginx_config \\
        > /etc/nginx/sites-available/tutor_platform

In front of several app servers, name each host (`--server 10.0.0.11
--server 10.0.0.12`), each running the services on the binds' ports: nginx
spreads requests over them and passes a request that could not reach one
to the next.
"""

import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tutor_platform import serving

TEMPLATE = Path(settings.BASE_DIR) / "deploy" / "nginx.conf"
# The template's upstream server of each service: its default bind.
PLACEHOLDERS = {name: f"server {service.default_bind};" for name, service in serving.SERVICES.items()}
ORIGINS = re.compile(r'^(\s*)"https://tutor\.example\.com" \$http_origin;$', re.MULTILINE)
HOST = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")
BIND = re.compile(r"unix:/[\w./-]+|(?:tcp://)?(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>\d+)")


def upstream_server(bind: str) -> str:
    """gunicorn's bind (host:port, or unix:/path) as nginx's upstream server."""
    return bind if bind.startswith("unix:") else bind.removeprefix("tcp://")


def render(upstreams: dict[str, list[str]], origins: list[str]) -> str:
    """The template with `upstreams` (service name: its servers, host:port or
    unix:/path) and the CORS `origins`."""
    site = TEMPLATE.read_text()
    for name, placeholder in PLACEHOLDERS.items():
        line = re.compile(rf"^(\s*){re.escape(placeholder)}$", re.MULTILINE)
        servers = "\n".join(f"{{indent}}server {upstream_server(bind)};" for bind in upstreams[name])
        site, found = line.subn(lambda m, servers=servers: servers.replace("{indent}", m.group(1)), site)
        if found != 1:
            raise CommandError(f"deploy/nginx.conf changed shape: the {name} upstream is not where expected.")
    allowed = "".join(f'{{indent}}"{origin}" $http_origin;\n' for origin in origins)
    site, maps = ORIGINS.subn(lambda m: allowed.replace("{indent}", m.group(1)).rstrip("\n"), site)
    if maps != 1:
        raise CommandError("deploy/nginx.conf changed shape: the origins map is not where expected.")
    return site


def deployment_upstreams(hosts: list[str] | None) -> dict[str, list[str]]:
    """Each service's servers: its bind (the app service's when this server
    does not run it), on each of `hosts` if given."""
    run = {service.name for service in settings.SERVER_SERVICES}
    binds = {name: serving.SERVICES[name if name in run else "app"].bind() for name in serving.SERVICES}
    parsed = {name: BIND.fullmatch(bind) for name, bind in binds.items()}
    if not all(parsed.values()):
        raise CommandError(
            "GUNICORN_BIND, GUNICORN_AI_BIND and GUNICORN_STREAM_BIND are host:port or unix:/path."
        )
    if not hosts:
        return {name: [bind] for name, bind in binds.items()}
    if any(not HOST.fullmatch(host) for host in hosts):
        raise CommandError("A --server is a host name or an address, without a port.")
    if any(found["port"] is None for found in parsed.values()):
        raise CommandError(
            "--server needs TCP binds (host:port): a unix socket is reachable on its own host only."
        )
    return {name: [f"{host}:{found['port']}" for host in hosts] for name, found in parsed.items()}


class Command(BaseCommand):
    help = "Print deploy/nginx.conf with this deployment's upstreams (the GUNICORN_*BIND) and CORS origins."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--server",
            action="append",
            metavar="HOST",
            help="An app server running the services on the binds' ports; repeat it for each "
            "(default: the binds themselves).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        upstreams = deployment_upstreams(options["server"])
        origins = settings.CORS_ALLOWED_ORIGINS
        if any(not re.fullmatch(r"https?://[A-Za-z0-9.:\[\]-]+", origin) for origin in origins):
            raise CommandError("CORS_ALLOWED_ORIGINS must be origins like https://tutor.example.com.")
        self.stdout.write(render(upstreams, origins), ending="")
