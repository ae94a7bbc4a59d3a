"""Replies being generated, watched so that one whose process died is known.

A process keeps the replies it is generating in `_mine`; one thread per
process marks them alive every BEAT_SECONDS in a shared index (a Redis
sorted set, member -> last beat; with the local-memory cache of a single
process, a dict in it). A reply whose last beat is older than DEAD_SECONDS belongs
to a process that died (a crash, `kill -9`, a deploy cut short). The same
thread, in every process, takes such replies out of the index (ZREM: one
process wins each) and ends them (`saving.reply_abandon`): the user
message turns failed with `reply_interrupted`, the quota reservation is
given back, re-attached streams get `event: error`, and the
Idempotency-Key bound to the message can be retried at once.

A reply costs no round trip of its own: it enters the index in the same
pipeline as its first live write (chats.replies.live.started) and leaves it with
its last (live.finished); the beats are one round trip per process and
second, whatever the number of replies.
"""

import contextlib
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.core.cache import cache
from django.db import connection

from tutor_platform.cache import redis_for

logger = logging.getLogger(__name__)

BEAT_SECONDS = 1.0
DEAD_SECONDS = 10.0
INDEX_KEY = "live:replies"


@dataclass(frozen=True)
class Watched:
    """One reply being generated in this process."""

    chat_id: int
    user_message_id: int
    user_id: int
    day: date
    variant: bool
    token: str

    @property
    def member(self) -> str:
        parts = (self.chat_id, self.user_message_id, self.user_id, self.day.isoformat(), int(self.variant))
        return ":".join(map(str, (*parts, self.token)))

    @classmethod
    def parse(cls, member: str) -> "Watched":
        chat, message, user, day, variant, token = member.split(":")
        return cls(int(chat), int(message), int(user), date.fromisoformat(day), variant == "1", token)


_mine: dict[str, Watched] = {}
_indexed: set[str] = set()
_lock = threading.Lock()
_watching_pid: int | None = None


def watch(*, chat_id: int, user_message_id: int, user_id: int, day: date, variant: bool) -> Watched:
    """Marks a reply as being generated here until `unwatch`. It enters the
    index with the reply's first live write (live.started, one round trip
    for both), then is beaten every BEAT_SECONDS."""
    watched = Watched(chat_id, user_message_id, user_id, day, variant, uuid.uuid4().hex[:12])
    with _lock:
        _mine[watched.member] = watched
    start()
    return watched


def index_in(pipe: Any, watched: Watched, *, add: bool) -> None:
    """Queues putting `watched` into the index (or taking it out) on a Redis
    pipeline. Call only when the cache is Redis (redis_for found it)."""
    found = redis_for(INDEX_KEY)
    assert found is not None
    key = found[1]
    if add:
        pipe.zadd(key, {watched.member: time.time()})
    else:
        pipe.zrem(key, watched.member)


def indexed(watched: Watched, *, add: bool) -> None:
    """Records that the pipeline of `index_in` ran."""
    with _lock:
        if add and watched.member in _mine:
            _indexed.add(watched.member)
        elif not add:
            _indexed.discard(watched.member)
    if add and watched.member not in _mine:  # unwatched while it was being indexed
        _remove(watched.member)


def index_locally(watched: Watched, *, add: bool) -> None:
    """`index_in` and `indexed` for the local-memory cache (one process)."""
    if add:
        _add([watched.member], time.time())
        indexed(watched, add=True)
    else:
        _remove(watched.member)
        indexed(watched, add=False)


def unwatch(watched: Watched) -> None:
    """The reply ended here. Still indexed (it ended without live.finished
    taking it out, as when its generator was dropped): taken out now."""
    with _lock:
        _mine.pop(watched.member, None)
        still = watched.member in _indexed
        _indexed.discard(watched.member)
    if still:
        _remove(watched.member)


def start() -> None:
    """The process's beating and reaping thread (once per process, after a fork too)."""
    global _watching_pid
    if _watching_pid == os.getpid():
        return
    with _lock:
        if _watching_pid == os.getpid():
            return
        _watching_pid = os.getpid()
    threading.Thread(target=_run, name="reply-heartbeat", daemon=True).start()


def _run() -> None:
    while True:
        time.sleep(BEAT_SECONDS)
        try:
            beat()
            reap()
        except Exception as exc:  # the cache or the database is down: try again at the next beat
            logger.warning("Reply heartbeat failed: %s", type(exc).__name__)
        finally:
            connection.close()


def beat(now: float | None = None) -> None:
    """Marks this process's replies alive."""
    now = time.time() if now is None else now
    with _lock:
        members = list(_mine)
    if not members:
        return
    _add(members, now)
    with _lock:
        _indexed.update(member for member in members if member in _mine)
        gone = [member for member in members if member not in _mine]
    for member in gone:  # ended while it was being indexed: its unwatch found nothing to remove
        _remove(member)


def _add(members: list[str], now: float) -> None:
    found = redis_for(INDEX_KEY)
    if found is None:
        with _lock:
            cache.set(INDEX_KEY, {**cache.get(INDEX_KEY, {}), **dict.fromkeys(members, now)}, None)
    else:
        client, key = found
        client.zadd(key, dict.fromkeys(members, now))


def reap(now: float | None = None) -> list[Watched]:
    """Ends every reply whose process stopped beating; returns those this process ended."""
    from .saving import reply_abandon  # saving imports live, which imports this module

    dead_before = (time.time() if now is None else now) - DEAD_SECONDS
    ended = []
    for member in _dead(dead_before):
        if not _remove(member):
            continue  # another process ended it, or it finished meanwhile
        watched = Watched.parse(member)
        reply_abandon(
            chat_id=watched.chat_id,
            user_message_id=watched.user_message_id,
            user_id=watched.user_id,
            day=watched.day,
            variant=watched.variant,
        )
        ended.append(watched)
    return ended


def _dead(before: float) -> list[str]:
    found = redis_for(INDEX_KEY)
    if found is None:
        return [member for member, beaten in cache.get(INDEX_KEY, {}).items() if beaten < before]
    client, key = found
    return [member.decode() for member in client.zrangebyscore(key, "-inf", before)]


def _remove(member: str) -> bool:
    """Takes a reply out of the index; True for the one caller that did."""
    found = redis_for(INDEX_KEY)
    if found is None:
        with _lock:
            index = cache.get(INDEX_KEY, {})
            removed = index.pop(member, None) is not None
            cache.set(INDEX_KEY, index, None)
            return removed
    client, key = found
    with contextlib.suppress(Exception):
        return bool(client.zrem(key, member))
    return False
