"""Raw Redis access beside Django's cache API, through django-redis's public one.

The cache is django-redis (`CACHE_URL=redis://...`): it keeps one connection
pool per server per process, shared by every thread. A few writers need
what the cache API cannot do in one round trip (Lua scripts, sorted sets, a
pipeline with the live state and the heartbeat's index); these two helpers
give them the client and the cache's own key and value encoding, so a raw
write is read back by `cache.get`.
"""

from typing import Any

from django_redis import get_redis_connection
from django_redis.cache import RedisCache


def _backend() -> RedisCache | None:
    from django.core.cache import caches  # `cache` is a proxy, never a RedisCache itself

    backend = caches["default"]
    return backend if isinstance(backend, RedisCache) else None


def redis_for(key: str) -> tuple[Any, str] | None:
    """The default cache's Redis client and `key` as the cache names it; None
    when the cache is not Redis (the local-memory cache of one process).
    Redis's errors propagate: callers degrade as they see fit."""
    backend = _backend()
    if backend is None:
        return None
    return get_redis_connection("default"), str(backend.make_key(key))


def redis_value(value: Any) -> Any:
    """`value` as the default (Redis) cache stores it (django-redis's client
    encodes it: integers as they are, so INCR works, anything else pickled)."""
    backend = _backend()
    assert backend is not None, "redis_value needs the Redis cache (redis_for says whether it is)"
    return backend.client.encode(value)
