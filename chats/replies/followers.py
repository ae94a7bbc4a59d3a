"""How many clients follow replies (`GET /chats/{id}/stream/`) at once.

A re-attached stream holds a server thread and polls the cache for as long
as the reply runs, so each one is a lease: at most STREAMS_PER_CHAT per
chat and STREAMS_PER_USER per student are open, and one more is refused
(429 `too_many_streams`). A lease lapses LEASE_SECONDS after its stream
last renewed it, so the leases of a process that died free themselves.

With Redis (several processes) the leases are two sorted sets per chat and
user (member: the stream, score: when it lapses), taken with one script;
with the local-memory cache (one process) a dict under a lock.
"""

import threading
import time
import uuid
from typing import Any

from django.core.cache import cache
from rest_framework import status
from rest_framework.exceptions import APIException

from tutor_platform.cache import redis_for

STREAMS_PER_CHAT = 2
STREAMS_PER_USER = 5
LEASE_SECONDS = 30
RENEW_SECONDS = 10


class TooManyStreams(APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = (
        f"Too many streams are open: at most {STREAMS_PER_CHAT} per chat and {STREAMS_PER_USER} "
        "per student. Close one, or read the reply from the message page."
    )
    default_code = "too_many_streams"


# KEYS: the chat's and the user's set. ARGV: now, lapses at, stream, the
# two limits, the sets' expiry in seconds. 1 when the lease was taken.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) or redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then
  return 0
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[2], ARGV[3])
  redis.call('EXPIRE', key, ARGV[6])
end
return 1
"""
_take_script: Any = None
_local_lock = threading.Lock()  # the local-memory cache is one process's: a lock makes it atomic


def _keys(chat_id: int, user_id: int) -> tuple[str, str]:
    return f"streams:chat:{chat_id}", f"streams:user:{user_id}"


class Lease:
    """One open re-attached stream. `renew()` while it is open, `release()` at its end."""

    def __init__(self, chat_id: int, user_id: int) -> None:
        self.keys = _keys(chat_id, user_id)
        self.member = uuid.uuid4().hex
        self.renewed_at = time.monotonic()
        chat_found, user_found = (redis_for(key) for key in self.keys)
        self.redis = chat_found[0] if chat_found is not None else None
        if chat_found is not None and user_found is not None:
            self.keys = (chat_found[1], user_found[1])

    def take(self) -> bool:
        now = time.time()
        if self.redis is None:
            with _local_lock:
                sets = [{m: t for m, t in cache.get(key, {}).items() if t > now} for key in self.keys]
                if len(sets[0]) >= STREAMS_PER_CHAT or len(sets[1]) >= STREAMS_PER_USER:
                    return False
                for key, leases in zip(self.keys, sets, strict=True):
                    cache.set(key, {**leases, self.member: now + LEASE_SECONDS}, LEASE_SECONDS)
                return True
        global _take_script
        if _take_script is None:  # two threads may both register it: the same script
            _take_script = self.redis.register_script(_TAKE)
        args = [now, now + LEASE_SECONDS, self.member, STREAMS_PER_CHAT, STREAMS_PER_USER, LEASE_SECONDS]
        return bool(_take_script(keys=list(self.keys), args=args, client=self.redis))

    def renew(self) -> None:
        """Keeps the lease while the stream is open (at most every RENEW_SECONDS)."""
        if time.monotonic() - self.renewed_at < RENEW_SECONDS:
            return
        self.renewed_at = time.monotonic()
        self._put(time.time() + LEASE_SECONDS)

    def release(self) -> None:
        self._put(None)

    def _put(self, lapses: float | None) -> None:
        """Moves the lease's end to `lapses`, or removes it (None)."""
        if self.redis is None:
            with _local_lock:
                for key in self.keys:
                    leases = cache.get(key, {})
                    if lapses is None:
                        leases.pop(self.member, None)
                    elif self.member in leases:
                        leases[self.member] = lapses
                    cache.set(key, leases, LEASE_SECONDS)
            return
        with self.redis.pipeline(transaction=False) as pipe:
            for key in self.keys:
                if lapses is None:
                    pipe.zrem(key, self.member)
                else:
                    pipe.zadd(key, {self.member: lapses}, xx=True)
            pipe.execute()


def take(*, chat_id: int, user_id: int) -> Lease:
    """A lease for one more stream on the chat, or TooManyStreams."""
    lease = Lease(chat_id, user_id)
    try:
        taken = lease.take()
    except Exception:  # the cache is down: nobody can re-attach anyway
        return lease
    if not taken:
        raise TooManyStreams()
    return lease
