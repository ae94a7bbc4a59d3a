"""Production safety of the settings, checked in a fresh interpreter each time."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import requires_postgresql

pytestmark = pytest.mark.system  # starts servers or processes: not in `-m "not system"`

BASE_DIR = Path(__file__).resolve().parents[2]
STRONG_KEY = "k7#Qp2!vX9zR4mL8wT1yB6nH3cF5jD0sG_aE-uI*oP@lK&hM^Zx8Wq4Tn"


def bare_env(**overrides: str | None) -> dict[str, str]:
    """The environment without the suite's own settings and without any .env file."""
    ours = (
        "DEBUG",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "SECURE_",
        "SESSION_",
        "CSRF_",
        "DJANGO_ALLOW_ASYNC",
        "AI_CORE_",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    merged = env | {
        "ENV_FILE": os.devnull,
        "DJANGO_SETTINGS_MODULE": "tutor_platform.settings",
        "AI_CORE_URL": "http://127.0.0.1:8001",
        **overrides,
    }
    return {key: value for key, value in merged.items() if value is not None}  # None: unset


def run(*args: str, **env: str | None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=bare_env(**env), capture_output=True, text=True, timeout=60
    )


def run_django(code: str, **env: str | None) -> subprocess.CompletedProcess:
    return run("-c", f"import django; django.setup(); {code}", **env)


def test_debug_defaults_to_off():
    result = run_django("from django.conf import settings; print(settings.DEBUG)", SECRET_KEY=STRONG_KEY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    "key",
    [None, "django-insecure-development-only-key-never-use-in-production", "short-key"],
)
def test_production_refuses_a_missing_or_development_secret_key(key):
    env = {"DEBUG": "False"} | ({"SECRET_KEY": key} if key else {})
    result = run_django("pass", **env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_debug_with_a_public_host_is_refused():
    result = run_django("pass", DEBUG="True", ALLOWED_HOSTS="tutor.example.com")
    assert result.returncode != 0
    assert "DEBUG=True with a public ALLOWED_HOSTS" in result.stderr


def test_production_turns_on_the_security_settings():
    result = run_django(
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER)",
        DEBUG="False",
        SECRET_KEY=STRONG_KEY,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "True",
        "True",
        "True",
        "31536000",
        "('HTTP_X_FORWARDED_PROTO',",
        "'https')",
    ]


def test_each_security_setting_can_be_switched_off_for_a_plain_http_box():
    result = run_django(
        "from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT)",
        DEBUG="False",
        SECRET_KEY=STRONG_KEY,
        SECURE_SSL_REDIRECT="False",
    )
    assert result.stdout.strip() == "False"


def test_check_deploy_passes_with_production_values():
    result = run(
        "manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="False",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="tutor.example.com",
        SAFETY_ALERT_EMAILS="safeguarding@school.example",
        EMAIL_URL="smtp+tls://alerts:secret@smtp.example.com:587",
        BACKEND_URL="https://tutor.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Nothing but the secrets' fingerprints (Info), to compare between app servers.
    assert "WARNINGS" not in result.stdout + result.stderr and "ERRORS" not in result.stdout + result.stderr
    assert "identified 3 issues" in result.stdout + result.stderr


def test_check_deploy_prints_fingerprints_that_differ_only_with_the_secret():
    """Issue 26, item 4: two app servers compare them."""

    def fingerprints(**secrets: str) -> list[str]:
        result = run(
            "manage.py", "check", "--deploy", DEBUG="False", ALLOWED_HOSTS="tutor.example.com", **secrets
        )
        return re.findall(
            r"(SECRET_KEY|JWT_SIGNING_KEY|STUDENT_KEY_SECRET) fingerprint ([0-9a-f]{16})",
            result.stdout + result.stderr,
        )

    first = fingerprints(SECRET_KEY=STRONG_KEY)
    assert [name for name, _ in first] == ["SECRET_KEY", "JWT_SIGNING_KEY", "STUDENT_KEY_SECRET"]
    assert len({value for _, value in first}) == 1  # the two others default to SECRET_KEY
    assert fingerprints(SECRET_KEY=STRONG_KEY) == first  # the same on another host
    other = fingerprints(SECRET_KEY=STRONG_KEY, JWT_SIGNING_KEY=STRONG_KEY[::-1])
    assert other[0] == first[0] and other[1] != first[1] and other[2] == first[2]
    assert STRONG_KEY[:8] not in str(first)


def test_check_deploy_warns_when_safety_alerts_would_reach_nobody():
    result = run(
        "manage.py", "check", "--deploy", "--fail-level", "WARNING",
        DEBUG="False", SECRET_KEY=STRONG_KEY, ALLOWED_HOSTS="tutor.example.com",
    )  # fmt: skip
    assert result.returncode != 0
    assert "safety.W001" in result.stderr + result.stdout and "safety.W002" in result.stderr + result.stdout
    # ...and while AI-Core could not fetch an attachment (links without a host).
    assert "attachments.W001" in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"MODERATION_PROVIDERS": "rules,perspective"}, "unknown checks ['perspective']"),
        ({"MODERATION_PROVIDERS": "rules,openai"}, "set MODERATION_URL"),
        ({"MODERATION_ON_ERROR": "ignore"}, "MODERATION_ON_ERROR must be"),
    ],
)
def test_a_moderation_setting_that_cannot_work_is_refused(variables, message):
    result = run_django("print('started')", DEBUG="True", **variables)
    assert result.returncode != 0 and message in result.stderr


PG_URL = "postgres://postgres@127.0.0.1:5432/tutor_platform"
SHOW_POOL = (
    "from django.conf import settings as s; "
    "print(s.DB_POOL, s.DATABASES['default'].get('OPTIONS', {}).get('pool', {}).get('max_size'), "
    "s.DB_CONNECTIONS_AT_MOST)"
)


@pytest.mark.parametrize(("cores", "per_process"), [(1, 30), (2, 15), (4, 7), (16, 1), (30, 1)])
def test_production_defaults_never_exceed_the_databases_connections(cores, per_process):
    """Item 9: on 4+ cores, cpu_count x 32 threads without a pool exceeded
    PostgreSQL's default 100 connections (11 of 128 sends answered 500).
    Every process of the three services (tutor_platform/serving) counts."""
    result = run_django(
        SHOW_POOL, SECRET_KEY=STRONG_KEY, DATABASE_URL=PG_URL, GUNICORN_WORKERS=str(cores),
        CACHE_URL="redis://127.0.0.1:6379/1", GUNICORN_SERVICES=None,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    pool, max_size, total = result.stdout.split()
    assert (pool, int(max_size)) == ("True", per_process)
    assert int(total) == 3 * cores * per_process <= 90


def test_more_processes_than_the_database_has_connections_are_refused():
    """31 cores: 93 processes of one pooled connection each, over the 90."""
    result = run("manage.py", "check", SECRET_KEY=STRONG_KEY, DATABASE_URL=PG_URL, GUNICORN_WORKERS="31",
                 CACHE_URL="redis://127.0.0.1:6379/1", GUNICORN_SERVICES=None)  # fmt: skip
    assert result.returncode != 0
    assert "Up to 93 database connections (31 workers x 1 (app) + 1 (ai) + 1 (stream)" in result.stderr


def test_one_service_takes_the_whole_budget():
    """GUNICORN_SERVICES=app: one service serves everything (no nginx routing needed)."""
    result = run_django(
        SHOW_POOL, SECRET_KEY=STRONG_KEY, DATABASE_URL=PG_URL, GUNICORN_WORKERS="2", GUNICORN_SERVICES="app",
        CACHE_URL="redis://127.0.0.1:6379/1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1:] == ["45", "90"]  # 2 workers share the 90; 32 + 128 + 32 threads each


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"GUNICORN_SERVICES": "app,chat"}, "GUNICORN_SERVICES lists each of app, ai, stream"),
        ({"GUNICORN_SERVICES": "ai,stream"}, "app among them"),
        ({"GUNICORN_SERVICES": "app,ai,ai"}, "at most once"),
        ({"GUNICORN_SERVICES": "app", "GUNICORN_SERVICE": "ai"}, "GUNICORN_SERVICE='ai' is not one of"),
    ],
)
def test_services_that_do_not_exist_are_refused(variables, message):
    result = run_django("print('started')", DEBUG="True", SECRET_KEY="dev", **variables)
    assert result.returncode != 0 and message in result.stderr and "started" not in result.stdout


@pytest.mark.parametrize(
    "env",
    [
        {"DB_POOL": "False", "GUNICORN_WORKERS": "4"},  # 4 x 32 threads, each with a connection
        {"GUNICORN_WORKERS": "4", "DB_POOL_MAX_SIZE": "30"},
        {"DB_POOL": "False", "GUNICORN_WORKERS": "2", "DB_MAX_CONNECTIONS": "50"},  # 2 x 32 > 40
        # Issue 26, item 1: two hosts share the 90; 2 x 30 fits one host's 90, not its 45.
        {"APP_SERVERS": "2", "GUNICORN_WORKERS": "2", "DB_POOL_MAX_SIZE": "30", "GUNICORN_SERVICES": "app"},
        # 2 workers x 3 services x 20 = 120: fits no longer once the ai and stream services count.
        {"GUNICORN_WORKERS": "2", "DB_POOL_MAX_SIZE": "20", "GUNICORN_SERVICES": None},
    ],
)
def test_a_configuration_that_can_exceed_the_database_is_refused(env):
    result = run("manage.py", "check", SECRET_KEY=STRONG_KEY, DATABASE_URL=PG_URL, **env)
    assert result.returncode != 0
    assert "exceed the" in result.stderr


@pytest.mark.parametrize("cache", [None, "locmemcache://", "dummycache://"])
def test_several_workers_with_a_per_process_cache_are_refused(cache):
    """Issue 26, item 3: with gunicorn's default of a worker per core and no
    CACHE_URL, each worker kept its own live replies: /stream/ answered 204
    on half the calls."""
    for workers in ("2", "1"):  # one worker per service is still three processes
        refused = run(
            "manage.py",
            "check",
            "--deploy",
            SECRET_KEY=STRONG_KEY,
            CACHE_URL=cache,
            GUNICORN_WORKERS=workers,
            GUNICORN_SERVICES=None,
        )
        assert refused.returncode != 0
        assert "per-process cache" in refused.stderr and "CACHE_URL=redis://" in refused.stderr
    for allowed in (
        # one process: its cache is everyone's
        {"CACHE_URL": cache, "GUNICORN_WORKERS": "1", "GUNICORN_SERVICES": "app"},
        {"CACHE_URL": "redis://127.0.0.1:6379/1", "GUNICORN_WORKERS": "2"},
        {"CACHE_URL": cache, "GUNICORN_WORKERS": "2", "DEBUG": "True", "SECRET_KEY": "dev"},
    ):
        result = run_django("pass", **{"SECRET_KEY": STRONG_KEY, **allowed})
        assert result.returncode == 0, (allowed, result.stderr)


def test_the_pool_shares_the_database_between_app_servers():
    """Issue 26, item 1: two hosts with two workers opened 2 x 2 x 45 = 180
    connections against PostgreSQL's 100; each host now takes its share,
    split over its three services' processes."""
    result = run_django(
        SHOW_POOL, SECRET_KEY=STRONG_KEY, DATABASE_URL=PG_URL, GUNICORN_WORKERS="2", APP_SERVERS="2",
        CACHE_URL="redis://127.0.0.1:6379/1", GUNICORN_SERVICES=None,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    _pool, max_size, total = result.stdout.split()
    assert (int(max_size), int(total)) == (7, 42)  # 2 workers x 3 services x 7; x 2 hosts = 84 <= 90


def test_development_on_sqlite_needs_no_pool():
    result = run_django(SHOW_POOL, DEBUG="True", SECRET_KEY="dev")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "False"


def test_production_refuses_the_stub_unless_a_staging_box_allows_it():
    """Issue 11: a deployment that forgot AI_CORE_URL served students stub answers."""
    for value in (None, "stub", "", "ai-core:8001"):  # unset, the stub, not a URL
        refused = run("manage.py", "check", "--deploy", SECRET_KEY=STRONG_KEY, AI_CORE_URL=value)
        assert refused.returncode != 0, value
        assert "AI_CORE_URL" in refused.stderr
    staging = run_django("pass", SECRET_KEY=STRONG_KEY, AI_CORE_URL="stub", AI_CORE_ALLOW_STUB="True")
    assert staging.returncode == 0, staging.stderr
    development = run_django("pass", DEBUG="True", SECRET_KEY="dev", AI_CORE_URL="stub")
    assert development.returncode == 0, development.stderr


def test_the_stub_never_repeats_the_system_prompt():
    from aicore import stub

    answer = stub.generate(
        {"message": "Привет", "system_prompt": "СЕКРЕТНАЯ инструкция: отвечай кратко", "model_id": "m"}
    )
    assert "СЕКРЕТНАЯ" not in answer["content"]
    assert "Привет" in answer["content"]


SHOW_BINDING = (
    "from django.conf import settings as s; o = s.DATABASES['default'].get('OPTIONS', {}); "
    "print(o.get('server_side_binding'), o.get('prepare_threshold'))"
)


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        ({"DATABASE_URL": PG_URL}, "None None"),  # off: it slowed bursts of sends (README)
        ({"DATABASE_URL": PG_URL, "DB_PREPARED_STATEMENTS": "True"}, "True 5"),
        ({"DATABASE_URL": PG_URL, "DB_PREPARED_STATEMENTS": "True", "DB_PREPARE_THRESHOLD": "2"}, "True 2"),
        ({"DATABASE_URL": "sqlite:////tmp/prepared.sqlite3", "DB_PREPARED_STATEMENTS": "True"}, "None None"),
    ],
)
def test_postgresql_prepares_statements_only_when_told_to(env, shown):
    result = run_django(SHOW_BINDING, SECRET_KEY=STRONG_KEY, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == shown


PREPARED_AFTER_SIX = (
    "from django.db import connection; cursor = connection.cursor(); "
    "[cursor.execute('SELECT %s::int + 1', [n]) for n in range(6)]; "
    "cursor.execute('SELECT count(*) FROM pg_prepared_statements'); print(cursor.fetchone()[0])"
)


@requires_postgresql
@pytest.mark.parametrize(("enabled", "prepared"), [("True", "1"), ("False", "0")])
def test_a_repeated_statement_is_prepared_on_its_connection_when_enabled(enabled, prepared):
    result = run_django(
        PREPARED_AFTER_SIX,
        SECRET_KEY=STRONG_KEY,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres",  # one that exists; no table is read
        DB_PREPARED_STATEMENTS=enabled,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == prepared


def test_log_format_json_is_one_object_per_line_with_the_extra_fields():
    """Issue 26, item 7: LOG_FORMAT=json for log shippers; tracebacks are
    scrubbed as in the line format."""
    code = """
import json, logging, sqlite3
from tutor_platform.logging import request_id_var
request_id_var.set("req-1")
logging.getLogger("chats.replies").info("send answered chat=%s", 7, extra={"outcome": "answered", "chat": 7})
try:
    raise sqlite3.IntegrityError("NOT NULL constraint failed, row (секрет ученика)")
except sqlite3.Error:
    logging.getLogger("chats").exception("Saving failed")
"""
    result = run_django(code, SECRET_KEY=STRONG_KEY, LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["message"] == "send answered chat=7"
    assert (first["level"], first["logger"], first["request_id"]) == ("INFO", "chats.replies", "req-1")
    assert (first["outcome"], first["chat"]) == ("answered", 7)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", first["time"])
    assert second["level"] == "ERROR" and "IntegrityError: [message scrubbed]" in second["exc_info"]
    assert "секрет" not in result.stdout

    refused = run_django("", SECRET_KEY=STRONG_KEY, LOG_FORMAT="xml")
    assert refused.returncode != 0
    assert "LOG_FORMAT must be line or json, not 'xml'" in refused.stderr
