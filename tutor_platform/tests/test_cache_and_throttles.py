"""Issue 10, items 5 and 8: cost-guarding budgets hold exactly under a burst,
and losing Redis degrades the service instead of breaking it."""

import logging
import socket
import threading
import time
from types import SimpleNamespace

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from chats.throttles import AISendThrottle
from tutor_platform import throttling


def redis_cache(url: str, **pool_options) -> dict:
    """django-redis as the settings configure it (short timeouts, a pool for
    every thread), on `url` (a Redis that is down or hanging)."""
    pool_options.setdefault("max_connections", settings.SERVICE_THREADS + 8)
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": 0.25,
                "SOCKET_TIMEOUT": 0.25,
                "CONNECTION_POOL_KWARGS": pool_options,
            },
        }
    }


def fake_request(user_id: int) -> SimpleNamespace:
    user = SimpleNamespace(pk=user_id, is_authenticated=True)
    return SimpleNamespace(user=user, META={"REMOTE_ADDR": "127.0.0.1"}, headers={})


@pytest.mark.parametrize("backend", ["redis", "locmem"])
def test_a_burst_of_sends_gets_exactly_the_budget(backend, monkeypatch, test_redis):
    """Item 5: 120 simultaneous sends let 71 through a budget of 30."""
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {**api_settings.DEFAULT_THROTTLE_RATES, "ai_send": "30/hour"}
    )
    caches = (
        test_redis.caches()
        if backend == "redis"
        else {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    )
    with override_settings(CACHES=caches):
        barrier = threading.Barrier(120)
        allowed = []

        def send(_: int) -> None:
            barrier.wait()
            allowed.append(AISendThrottle().allow_request(fake_request(7), None))

        threads = [threading.Thread(target=send, args=(i,)) for i in range(120)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert allowed.count(True) == 30
        assert allowed.count(False) == 90
        # Another user has a budget of their own.
        assert AISendThrottle().allow_request(fake_request(8), None)


@pytest.fixture
def hanging_redis():
    """A server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    stop.set()
    server.close()
    for conn in held:
        conn.close()


def dead_redis() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.mark.django_db
@pytest.mark.parametrize("failure", ["down", "hanging"])
def test_without_redis_the_api_degrades_instead_of_failing(
    failure, hanging_redis, auth_client, chat, api_client, caplog
):
    """Item 8: Redis down made every endpoint 500, and hanging made each take 5 s."""
    url = dead_redis() if failure == "down" else hanging_redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    with (
        override_settings(CACHES=redis_cache(url, retry=Retry(NoBackoff(), 0))),
        caplog.at_level(logging.WARNING),
    ):
        started = time.monotonic()
        assert api_client.get("/api/v1/tutors/").status_code == 200
        send = auth_client.post(f"/api/v1/chats/{chat.id}/messages/", {"content": "Привет"}, format="json")
        assert send.status_code == 201
        health = api_client.get("/api/v1/health/")
        elapsed = time.monotonic() - started
    assert health.status_code == 200
    assert health.json() == {
        "status": "ok",
        "database": "ok",
        "ai_core": "stub",
        "providers": {},
        "cache": "unavailable",
    }
    # Every throttle on those requests failed open, and said so.
    assert sum("failing open" in record.getMessage() for record in caplog.records) >= 3
    # Short socket timeouts: three requests, a handful of 0.25 s waits, not 5 s each.
    assert elapsed < 5


def test_the_settings_give_redis_short_timeouts_and_no_retries(monkeypatch):
    import importlib

    from tutor_platform import settings as settings_module

    monkeypatch.setenv("CACHE_URL", "redis://127.0.0.1:6379/1")
    reloaded = importlib.reload(settings_module)
    try:
        assert reloaded.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache"
        options = reloaded.CACHES["default"]["OPTIONS"]
        assert options["SOCKET_TIMEOUT"] == options["SOCKET_CONNECT_TIMEOUT"] == 0.25
        assert options["CONNECTION_POOL_KWARGS"]["retry"].get_retries() == 0
        assert options["CONNECTION_POOL_KWARGS"]["max_connections"] == reloaded.SERVICE_THREADS + 8
    finally:
        monkeypatch.delenv("CACHE_URL")
        importlib.reload(settings_module)


def test_every_thread_shares_one_connection_pool_per_process(test_redis):
    """Issue 17: Django's own backend built a connection pool per thread."""
    from django.core.cache import caches
    from django_redis import get_redis_connection
    from django_redis.cache import RedisCache

    seen = []
    with override_settings(CACHES=test_redis.caches()):
        get_redis_connection("default")  # as gunicorn.conf.py's post_worker_init does

        def use_cache() -> None:
            cache = caches["default"]
            assert isinstance(cache, RedisCache)
            cache.set("shared-client", 1, 5)
            seen.append(get_redis_connection("default").connection_pool)

        threads = [threading.Thread(target=use_cache) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert len(seen) == 4
    assert all(client is seen[0] for client in seen)


def test_a_throttle_check_is_one_round_trip_to_redis(monkeypatch, test_redis):
    """Issue 17: the check is one atomic script (INCR, the expiry at the first
    hit, TTL). It was five round trips, because `cache` is a proxy that is
    never an instance of RedisCache, so the generic add/add/incr/get path ran."""
    sent: list[bytes] = []
    real_send = redis.connection.AbstractConnection.send_packed_command

    def send_packed_command(self, command, *args, **kwargs):
        sent.append(command)
        return real_send(self, command, *args, **kwargs)

    with override_settings(CACHES=test_redis.caches()):
        throttling.hit("warm-up", 60)  # the connection's own handshake is not a throttle's cost
        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", send_packed_command)
        first = throttling.hit("one-trip", 60)
        second = throttling.hit("one-trip", 60)
    assert len(sent) == 2  # one per check
    assert first[0] == 1 and second[0] == 2
    assert 0 < second[1] <= 60
    (key,) = test_redis.keys("*one-trip*")
    assert test_redis.client.get(key) == b"2"
    assert 0 < test_redis.client.ttl(key) <= 60


def test_a_counter_that_lost_its_expiry_gets_it_back(test_redis):
    """Otherwise a window would never close and its client stay throttled for good."""
    stored = test_redis.client
    with override_settings(CACHES=test_redis.caches()):
        from django.core.cache import caches

        full_key = str(caches["default"].make_key("lost-expiry"))
        stored.set(full_key, 5)  # no TTL
        count, closes_in = throttling.hit("lost-expiry", 60)
    assert count == 6
    assert 0 < closes_in <= 60
    assert 0 < stored.ttl(full_key) <= 60


@pytest.mark.parametrize("backend", ["redis", "locmem"])
def test_peek_reads_the_window_hit_counts_without_counting(backend, test_redis):
    """Issue 24, item 6: failed logins are counted with `hit` and checked with `peek`."""
    caches = test_redis.caches() if backend == "redis" else None
    with override_settings(**({"CACHES": caches} if caches else {})):
        from django.core.cache import cache

        cache.delete_many(["peeked", "peeked:closes"])
        assert throttling.peek("peeked") == (0, 0)
        throttling.hit("peeked", 60)
        throttling.hit("peeked", 60)
        count, closes_in = throttling.peek("peeked")
        assert count == 2 and 55 < closes_in <= 60
        assert throttling.peek("peeked")[0] == 2  # peeking counted nothing


def test_a_raw_redis_write_is_read_back_by_the_cache(test_redis):
    """redis_value is django-redis's encoding (tutor_platform.cache): this fails
    when it changes. chats.replies.live writes its entries that way, in one
    pipeline with the heartbeat's index."""
    from tutor_platform.cache import redis_for, redis_value

    with override_settings(CACHES=test_redis.caches()):
        from django.core.cache import cache

        entry = {"state": "running", "user_message": 7, "text": "Привет"}
        client, key = redis_for("raw-entry")
        client.set(key, redis_value(entry), ex=60)
        assert cache.get("raw-entry") == entry
        client.set(key, redis_value(12), ex=60)
        assert cache.get("raw-entry") == 12
        cache.delete("raw-entry")


def test_the_suite_deletes_only_its_own_keys_from_redis():
    """Issue 26, item 14: `make test` ran FLUSHDB on three databases of
    whatever Redis answered. Now it writes under a prefix of each test's own
    in TEST_REDIS_URL and deletes those keys alone."""
    from conftest import TEST_REDIS_URL, redis_space

    someone_elses = redis.Redis.from_url(TEST_REDIS_URL)
    someone_elses.set("not-the-suites", "kept", ex=60)
    try:
        with redis_space("test_[a] b") as space:
            with override_settings(CACHES=space.caches()):
                from django.core.cache import cache

                cache.set("mine", 1, 60)
                throttling.hit("mine-too", 60)
            assert sorted(space.keys()) == [
                f"{space.prefix}:1:{key}".encode() for key in ("mine", "mine-too")
            ]
        assert someone_elses.keys(f"{space.prefix}*") == []
        assert someone_elses.get("not-the-suites") == b"kept"
    finally:
        someone_elses.delete("not-the-suites")
