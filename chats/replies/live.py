"""Replies being generated right now, shared through the cache so that any
server process can tell (`reply_in_progress`) and re-attach a client
(`GET /chats/{id}/stream/`). With the local-memory cache only the process
that generates knows: use Redis (`CACHE_URL`) with several processes.

One entry per chat: the user message being answered, the text so far, and,
for a minute after the end, how it ended. Losing the cache loses only this.

The text so far is written at most every PUBLISH_SECONDS while a reply
streams (`Publisher`): written for every word, the writes cost most of
what relaying the word does (see
docs/decisions/2026-12-05-figures-from-comments.md), and what they are for
is rare (a client re-attaching after a disconnect, which then gets text at
most that much older than the stream's, never less of it: the end is
always written).
"""

import contextlib
import math
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache

from tutor_platform.cache import redis_for, redis_value

from . import heartbeat

FINISHED_SECONDS = 60
PUBLISH_SECONDS = 0.25


def _key(chat_id: int) -> str:
    return f"live:chat:{chat_id}"


def _set(
    chat_id: int, entry: dict[str, Any], seconds: float, *, index: str = "", watched: Any = None
) -> None:
    """Writes the chat's entry; with `index` ("add" or "remove"), also puts
    `watched` (a heartbeat.Watched) into the heartbeat's index or takes it
    out, in the same Redis round trip: a reply costs no round trip more
    for being watched."""
    with contextlib.suppress(Exception):  # the cache is down: nobody can re-attach
        add = index == "add"
        found = redis_for(_key(chat_id)) if index else None
        if found is None:
            cache.set(_key(chat_id), entry, seconds)
            if index:
                heartbeat.index_locally(watched, add=add)
            return
        client, key = found
        with client.pipeline(transaction=False) as pipe:
            pipe.set(key, redis_value(entry), ex=math.ceil(seconds))
            heartbeat.index_in(pipe, watched, add=add)
            pipe.execute()
        heartbeat.indexed(watched, add=add)


def started(chat_id: int, user_message_id: int, watched: Any = None) -> None:
    """The reply began: its entry, and its place in the heartbeat's index."""
    running = {"state": "running", "user_message": user_message_id, "text": ""}
    _set(
        chat_id,
        running,
        settings.AI_CORE_STREAM_TIMEOUT + 60,
        index="add" if watched else "",
        watched=watched,
    )


def grew(chat_id: int, user_message_id: int, text: str) -> None:
    running = {"state": "running", "user_message": user_message_id, "text": text}
    _set(chat_id, running, settings.AI_CORE_STREAM_TIMEOUT + 60)


class Publisher:
    """One reply being generated: `started` at once, then its text as it
    grows, written at most every PUBLISH_SECONDS."""

    def __init__(self, chat_id: int, user_message_id: int, watched: Any = None) -> None:
        self.chat_id, self.user_message_id = chat_id, user_message_id
        started(chat_id, user_message_id, watched)
        self.written_at = time.monotonic() - PUBLISH_SECONDS  # the first piece is written at once

    def grew(self, text: str) -> None:
        now = time.monotonic()
        if now - self.written_at >= PUBLISH_SECONDS:
            grew(self.chat_id, self.user_message_id, text)
            self.written_at = now


def finished(
    chat_id: int, user_message_id: int, text: str, *, event: str, data: dict[str, Any], watched: Any = None
) -> None:
    """`event` is `assistant_message`, `moderated` or `error`, `data` its JSON; `watched`
    leaves the heartbeat's index in the same round trip."""
    done = {"state": "done", "user_message": user_message_id, "text": text, "event": event, "data": data}
    _set(chat_id, done, FINISHED_SECONDS, index="remove" if watched else "", watched=watched)


def get(chat_id: int) -> dict[str, Any] | None:
    try:
        entry: dict[str, Any] | None = cache.get(_key(chat_id))
    except Exception:
        return None
    return entry


def in_progress(chat_id: int) -> bool:
    entry = get(chat_id)
    return entry is not None and entry["state"] == "running"
