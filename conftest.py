"""Shared fixtures: users, authenticated API clients, catalogue, chats."""

import io
import itertools
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode
from uuid import uuid4

import pytest
import redis
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from PIL import Image
from rest_framework.test import APIClient

from accounts.models import User
from accounts.roles import ML_TEAM, sync_roles
from accounts.tokens import token_pair
from aicore import client as aicore_client
from attachments.models import Attachment
from attachments.services import attachment_upload
from chats.models import Chat, Message
from feedback.models import Feedback
from safety import policies as safety_policies
from safety import providers as safety_providers
from safety import rules as safety_rules
from safety import starter
from tutor_platform import serving
from tutoring.models import Course, Tutor
from tutoring.services import TutorContent, tutor_create

PASSWORD = "Correct-Horse-42-battery"

# Concurrency tests need real row locks and concurrent connections; the CI
# runs the suite on PostgreSQL too, where these run.
requires_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (row locks, concurrent writers)"
)
_seq = itertools.count(1)


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path) -> Path:
    """Every test stores its files (attachments) in a folder of its own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def image_bytes(size: tuple[int, int] = (64, 48), image_format: str = "PNG", **save_options) -> bytes:
    """A real image made by Pillow (a gradient, so it compresses like a photo)."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **save_options)
    return buffer.getvalue()


@pytest.fixture
def make_attachment(db) -> Callable[..., Attachment]:
    """An upload of `user`'s, through the service that checks and stores it."""

    def make(user: User, content: bytes | None = None, name: str = "задача.png") -> Attachment:
        upload = SimpleUploadedFile(name, image_bytes() if content is None else content)
        return attachment_upload(user=user, upload=upload)

    return make


# The one Redis database the suite writes to. Each test keeps its keys under
# a prefix of its own and deletes them afterwards: nothing is flushed, so
# other data in that database (and tests running in parallel) are left alone.
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@dataclass(frozen=True)
class RedisSpace:
    """One test's keys in TEST_REDIS_URL."""

    prefix: str
    client: redis.Redis

    @property
    def url(self) -> str:
        """A CACHE_URL for a server the test starts: its keys carry the prefix."""
        separator = "&" if "?" in TEST_REDIS_URL else "?"
        return f"{TEST_REDIS_URL}{separator}{urlencode({'key_prefix': self.prefix})}"

    def caches(self, **pool_options) -> dict:
        """CACHES as the settings build them for Redis (short timeouts, one
        pool per process), with this test's prefix. The pool is the largest
        service's (the ai service's): a test's threads may stand for it."""
        largest = max(service.threads() for service in serving.SERVICES.values())
        pool_options.setdefault("max_connections", largest + 8)
        return {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": TEST_REDIS_URL,
                "KEY_PREFIX": self.prefix,
                "OPTIONS": {
                    "SOCKET_CONNECT_TIMEOUT": 0.25,
                    "SOCKET_TIMEOUT": 0.25,
                    "CONNECTION_POOL_KWARGS": pool_options,
                },
            }
        }

    def keys(self, pattern: str = "*") -> list[bytes]:
        return self.client.keys(f"{self.prefix}:{pattern}")


@contextmanager
def redis_space(name: str) -> Iterator[RedisSpace]:
    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.ping()  # fails loudly when Redis is not running
    # Only letters, digits and dashes: the prefix is also a SCAN pattern.
    space = RedisSpace(prefix=f"test-{re.sub(r'[^A-Za-z0-9]+', '-', name)}-{uuid4().hex[:8]}", client=client)
    try:
        yield space
    finally:
        if keys := list(client.scan_iter(f"{space.prefix}:*", count=1000)):
            client.unlink(*keys)
        client.close()


@pytest.fixture
def test_redis(request) -> Iterator[RedisSpace]:
    """Redis for this test only (TEST_REDIS_URL under a key prefix)."""
    with redis_space(request.node.name) as space:
        yield space


def reset_clients() -> None:
    """Forget every AI-Core client (and its breaker state)."""
    with aicore_client._clients_lock:
        aicore_client._clients.clear()
    with safety_providers._openai_lock:
        safety_providers._openai.clear()


@pytest.fixture(autouse=True)
def _isolated_state():
    """Throttle counters, health cache, circuit breakers and the safety
    lists a process holds start empty in every test."""
    cache.clear()
    reset_clients()
    safety_rules.forget()
    safety_policies.forget()
    yield
    cache.clear()
    reset_clients()
    safety_rules.forget()
    safety_policies.forget()


@pytest.fixture
def rates(monkeypatch):
    """Sets throttle rates for one test: rates(anon="3/min", login="2/min")."""
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    def set_rates(**overrides: str) -> None:
        merged = {**api_settings.DEFAULT_THROTTLE_RATES, **overrides}
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", merged)

    return set_rates


@pytest.fixture
def starter_lists(db) -> None:
    """The safety starter lists and policies, for transactional tests (their
    flush removes what the data migration loaded)."""
    from safety.models import Policy, Term

    starter.load(Policy, Term)
    safety_rules.forget()
    safety_policies.forget()


@pytest.fixture
def make_user(db) -> Callable[..., User]:
    def make(**fields) -> User:
        n = next(_seq)
        fields.setdefault("email", f"student{n}@example.com")
        fields.setdefault("username", f"student{n}")
        password = fields.pop("password", PASSWORD)
        return User.objects.create_user(password=password, **fields)

    return make


@pytest.fixture
def user(make_user) -> User:
    return make_user(full_name="Иван Петров")


@pytest.fixture
def other_user(make_user) -> User:
    return make_user(full_name="Мария Сидорова")


def bearer_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair(user)['access']}")
    return client


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for() -> Callable[[User], APIClient]:
    return bearer_client


@pytest.fixture
def auth_client(user) -> APIClient:
    return bearer_client(user)


@pytest.fixture
def other_client(other_user) -> APIClient:
    return bearer_client(other_user)


@pytest.fixture
def admin_user(db) -> User:
    """pytest-django's admin_user, for a user model keyed by email."""
    return User.objects.create_superuser(email="admin@example.com", username="admin", password=PASSWORD)


@pytest.fixture
def ml_user(make_user) -> User:
    # Transactional tests flush the roles the data migration made: make them again.
    sync_roles(Group, Permission)
    member = make_user()
    member.groups.add(Group.objects.get(name=ML_TEAM))
    return member


@pytest.fixture
def make_staff(make_user) -> Callable[[str], User]:
    """A new staff member of a group (CONTENT_EDITORS, ML_TEAM)."""

    def make(group: str) -> User:
        member = make_user(is_staff=True)
        member.groups.add(Group.objects.get(name=group))
        return member

    return make


@pytest.fixture
def staff_in(make_staff, client):
    """Logs Django's test client in as a new staff member of a group."""

    def login(group: str) -> User:
        member = make_staff(group)
        client.force_login(member)
        return member

    return login


def tutor_admin_form(tutor: Tutor, **changes) -> dict:
    """The tutor's admin page as posted, with its current content."""
    tutor.refresh_from_db()
    return {
        "course": tutor.course_id,
        "name": tutor.name,
        "description": tutor.description,
        "is_active": "on" if tutor.is_active else "",
        "model_id": tutor.model_id,
        "knowledge_base_id": tutor.knowledge_base_id,
        "teaching_mode": tutor.current_version.teaching_mode if tutor.current_version else "socratic",
        "system_prompt": tutor.system_prompt,
        "note": "",
        "base_version": tutor.current_version.number if tutor.current_version else 0,
        **changes,
    }


@pytest.fixture
def course(db) -> Course:
    return Course.objects.create(
        name="Математика", slug="math", description="Алгебра и геометрия", is_active=True
    )


@pytest.fixture
def make_tutor(course) -> Callable[..., Tutor]:
    def make(**fields) -> Tutor:
        n = next(_seq)
        fields.setdefault("course", course)
        fields.setdefault("name", f"Репетитор {n}")
        fields.setdefault("description", "Объясняет по шагам")
        fields.setdefault("model_id", f"model-{n}")
        fields.setdefault("knowledge_base_id", f"kb-{n}")
        fields.setdefault("system_prompt", "Ты — терпеливый репетитор. Отвечай по-русски.")
        fields.setdefault("is_active", True)
        content = TutorContent(
            *(fields.pop(name) for name in ("system_prompt", "model_id", "knowledge_base_id"))
        )
        own = {name: fields.pop(name) for name in ("course", "name", "description", "is_active")}
        tutor = tutor_create(tutor=Tutor(**own), content=content)
        if fields:  # rating, total_feedbacks: set directly, as tests need them
            Tutor.objects.filter(pk=tutor.pk).update(**fields)
            tutor.refresh_from_db()
        return tutor

    return make


@pytest.fixture
def tutor(make_tutor) -> Tutor:
    return make_tutor(name="Анна", model_id="math-v1", knowledge_base_id="kb-math")


@pytest.fixture
def chat(user, tutor) -> Chat:
    return Chat.objects.create(user=user, tutor=tutor, title="Квадратные уравнения")


@pytest.fixture
def other_chat(other_user, tutor) -> Chat:
    return Chat.objects.create(user=other_user, tutor=tutor, title="Чужой чат")


@pytest.fixture
def make_exchange() -> Callable[..., tuple[Message, Message]]:
    """A user message and the assistant's reply to it, saved directly."""

    def make(chat: Chat, question: str = "Сколько будет 2+2?", answer: str = "4") -> tuple[Message, Message]:
        asked = Message.objects.create(chat=chat, role=Message.Role.USER, content=question)
        replied = Message.objects.create(
            chat=chat,
            role=Message.Role.ASSISTANT,
            content=answer,
            reply_to=asked,
            metadata={"tokens_used": 12, "model_id": chat.tutor.model_id},
            tutor_version=chat.tutor.current_version,
        )
        return asked, replied

    return make


def feedback_on(reply: Message, **fields) -> Feedback:
    """Feedback on an assistant message, with the copies feedback_submit keeps.

    Saved directly: the tutor's rating is not recomputed.
    """
    chat = reply.chat
    detailed = fields.get("feedback_type") == Feedback.FeedbackType.DETAILED
    defaults = {
        "user": chat.user,
        "chat": chat,
        "message": reply,
        "tutor": chat.tutor,
        "tutor_version": reply.tutor_version or chat.tutor.current_version,
        "feedback_type": Feedback.FeedbackType.QUICK,
        "quick_reaction": "" if detailed else Feedback.QuickReaction.UNDERSTOOD,
        "reply_content": reply.content,
        "reply_metadata": reply.metadata,
        "prompt_content": reply.reply_to.content if reply.reply_to_id else "",
        "prompt_message_id": reply.reply_to_id,
    }
    return Feedback.objects.create(**(defaults | fields))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(url: str, timeout: float = 15) -> None:
    """Polls `url` until it answers 200; fails the test if it never does.

    A server still booting may accept and then answer slowly: a read timeout
    is a reason to ask again, like a refused connection.
    """
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    pytest.fail(f"nothing serves {url}")


@contextmanager
def raw_ai_core(settings, answer: Callable[[socket.socket, threading.Event], None]):
    """A hand-written AI-Core on a real socket, for what `responses` cannot fake:
    answers that arrive slowly. `answer(conn, stop)` writes the answer to each
    request (already read); it should return when `stop` is set."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                try:
                    answer(conn, stop)
                except OSError:
                    continue  # the backend hung up

    threading.Thread(target=serve, daemon=True).start()
    settings.AI_CORE_URL = f"http://127.0.0.1:{server.getsockname()[1]}"
    settings.AI_CORE_MAX_RETRIES = 0
    try:
        yield
    finally:
        stop.set()
        server.close()


def prepare_served_database(env: dict[str, str]) -> None:
    """Migrates and seeds the database `env` names, for servers a test starts."""
    base_dir = Path(__file__).resolve().parent
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=base_dir, env=env, check=True, timeout=120)
    subprocess.run([*manage, "seed_demo"], cwd=base_dir, env=env, check=True, timeout=60, capture_output=True)


def start_gunicorn(env: dict[str, str], port: int, log: Path | None = None):
    """gunicorn with gunicorn.conf.py (the service GUNICORN_SERVICE names) on
    127.0.0.1:`port`, its output in `log` (or nowhere); the caller stops it
    (terminate())."""
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    # A file, not a pipe: a pipe nobody reads could fill and block the server.
    output = subprocess.DEVNULL if log is None else log.open("ab")
    try:
        return subprocess.Popen(
            [gunicorn, "tutor_platform.wsgi", "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}"],
            cwd=Path(__file__).resolve().parent,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    finally:
        if log is not None:
            output.close()  # the server has its own copy


def serve_with_gunicorn(env: dict[str, str], port: int, log: Path | None = None):
    """An app server as one gunicorn serving everything (GUNICORN_SERVICES=app
    unless `env` says otherwise), on a migrated and seeded database; the
    caller stops it. The three services behind nginx:
    tutor_platform/tests/served.py."""
    env = {"GUNICORN_SERVICES": "app", **env}
    prepare_served_database(env)
    return start_gunicorn(env, port, log)


def run_in_threads(count: int, work) -> list:
    """Runs work(i) in `count` threads released at once; returns results or exceptions."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def target(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


# Filled by tutor_platform/tests/test_schema_fuzz.py, reported at the end.
FUZZ_STATS: dict = {"requests": 0, "operations": set()}


def pytest_terminal_summary(terminalreporter) -> None:
    if FUZZ_STATS["requests"]:
        terminalreporter.write_line(
            f"schemathesis: {FUZZ_STATS['requests']} generated requests "
            f"over {len(FUZZ_STATS['operations'])} operations"
        )
