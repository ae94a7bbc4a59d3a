"""Django's Redis cache, with one client per process.

Django builds a cache object per thread, each with a connection pool of its
own, and a new `redis.Redis` object on every call: with 128 request threads
a process could hold 128 pools and spend time building clients. Here every
thread of a process shares one client (and its pool) per server; redis-py's
client is thread-safe.
"""

import threading
from typing import Any

from django.core.cache.backends import redis as django_redis

_clients: dict[tuple, Any] = {}
_lock = threading.Lock()


class RedisCacheClient(django_redis.RedisCacheClient):
    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        server = self._servers[self._get_connection_pool_index(write)]
        identity = (server, tuple(sorted((name, repr(value)) for name, value in self._pool_options.items())))
        client = _clients.get(identity)
        if client is None:
            with _lock:
                client = _clients.get(identity)
                if client is None:
                    pool = self._pool_class.from_url(server, **self._pool_options)
                    client = _clients[identity] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient


def redis_for(key: str) -> tuple[Any, str] | None:
    """The default cache's Redis client and `key` as the cache names it, for
    what Django's cache API cannot do in one round trip (scripts, sorted
    sets); None when the cache is not Redis (the local-memory cache of one
    process)."""
    from django.core.cache import caches  # `cache` is a proxy, never a RedisCache itself

    backend = caches["default"]
    if not isinstance(backend, django_redis.RedisCache):
        return None
    full_key = backend.make_and_validate_key(key)
    # Django has no public handle on the redis client.
    return backend._cache.get_client(full_key, write=True), full_key


def redis_value(value: Any) -> Any:
    """`value` as the default (Redis) cache stores it, so that a raw write
    (a pipeline with `redis_for`'s client) is read back by `cache.get`."""
    from django.core.cache import caches

    return caches["default"]._cache._serializer.dumps(value)  # Django's RedisSerializer
