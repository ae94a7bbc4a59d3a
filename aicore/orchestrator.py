"""Turns a user message into the tutor's reply, one explicit step at a time.

build_history -> build_request -> release the database connection -> call
AI-Core (streaming its pieces when asked) -> build_metadata. Model routing, request/response logging or
moderation go in as one more step here. Callers must not hold a database
transaction while calling `generate_reply`.
"""

import contextlib
import logging
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from chats.models import Chat, Message
from tutor_platform import cpu_gate
from tutoring.models import TutorVersion

from .client import Generation, drain, get_client

logger = logging.getLogger(__name__)

HEALTH_CACHE_KEY = "aicore:health"


@dataclass(frozen=True)
class AIReply:
    content: str
    metadata: dict[str, Any]
    tutor_version: TutorVersion | None
    tokens_used: int | None  # as AI-Core reported it, when it did
    latency_ms: int


def counted(value: Any) -> int | None:
    """A count as AI-Core reports one (`tokens_used`), or None when it is not one."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31 else None


def build_history(user_message: Message) -> list[dict[str, str]]:
    """The last AI_HISTORY_MESSAGES current messages before `user_message`
    (one variant per reply, the one the student kept), oldest first.

    One LIMIT query on the (chat, id) index: its cost does not grow with
    the length of the chat.
    """
    limit = settings.AI_HISTORY_MESSAGES
    if limit <= 0:
        return []
    rows = (
        Message.objects.filter(chat_id=user_message.chat_id, id__lt=user_message.id, is_current=True)
        .order_by("-id")
        .values_list("role", "content")[:limit]
    )
    return [{"role": role, "content": content} for role, content in reversed(rows)]


def build_request(
    *, chat: Chat, version: TutorVersion, user_message: Message, history: list[dict[str, str]]
) -> dict[str, Any]:
    return request_body(
        chat_id=chat.pk,
        tutor_id=chat.tutor_id,
        version_number=version.number,
        content=version,
        message=user_message.content,
        history=history,
        attachments=user_message.attachments,
    )


def request_body(
    *,
    chat_id: int | None,
    tutor_id: int | None,
    version_number: int | None,
    content: Any,
    message: str,
    history: list[dict[str, str]],
    attachments: list[dict],
) -> dict[str, Any]:
    """The contract's generate body. `content` has the tutor's system_prompt,
    model_id and knowledge_base_id (a TutorVersion, or an unsaved draft)."""
    return {
        "chat_id": chat_id,
        "tutor_id": tutor_id,
        "tutor_version": version_number,
        "model_id": content.model_id,
        "knowledge_base_id": content.knowledge_base_id,
        "system_prompt": content.system_prompt,
        "message": message,
        "history": history,
        "attachments": attachments,
    }


def release_db_connection() -> None:
    """Hands the connection back (to the pool, or closes it) before a long wait.

    A request thread waiting on AI-Core for up to a minute must not hold one
    of the database's scarce connections; the next query reconnects. Inside
    a transaction (only in tests) there is nothing to release.
    """
    if not connection.in_atomic_block:
        connection.close()


def build_metadata(generation: Generation, version: TutorVersion, latency_ms: int) -> dict[str, Any]:
    return {**generation.extra, "model_id": version.model_id, "latency_ms": latency_ms}


def stream_reply(
    *, chat: Chat, user_message: Message, request_id: str, stream: bool = False
) -> Generator[str, None, AIReply]:
    """Asks AI-Core for the reply to `user_message`. Raises `AICoreError`.

    With `stream`, yields the reply's pieces as AI-Core writes them.
    """
    version = chat.tutor.current_version  # read once: what is sent is what the reply records
    history = build_history(user_message)
    payload = build_request(chat=chat, version=version, user_message=user_message, history=history)
    release_db_connection()
    started = time.monotonic()
    with cpu_gate.set_aside():  # waiting needs no CPU: others may work meanwhile
        generation = yield from get_client().generate(payload, request_id=request_id, stream=stream)
    latency_ms = round((time.monotonic() - started) * 1000)
    logger.info("AI-Core replied for chat=%s in %dms", chat.pk, latency_ms)
    return AIReply(
        content=generation.content,
        metadata=build_metadata(generation, version, latency_ms),
        tutor_version=version,
        tokens_used=counted(generation.extra.get("tokens_used")),
        latency_ms=latency_ms,
    )


def preview_reply(
    *, tutor_id: int | None, version_number: int | None, content: Any, question: str, request_id: str
) -> str:
    """What AI-Core answers `question` with the given content (a saved
    version, or an editor's unsaved draft): for the admin's try-it panel.
    No chat, message or feedback is involved. Raises `AICoreError`.
    """
    payload = request_body(
        chat_id=None,
        tutor_id=tutor_id,
        version_number=version_number,
        content=content,
        message=question,
        history=[],
        attachments=[],
    )
    release_db_connection()
    return drain(get_client().generate(payload, request_id=request_id, stream=False)).content


def generate_reply(*, chat: Chat, user_message: Message, request_id: str) -> AIReply:
    """The whole reply at once (see `stream_reply`)."""
    return drain(stream_reply(chat=chat, user_message=user_message, request_id=request_id))


def ai_core_status() -> str:
    """`stub`, `ok` or `unavailable`; a real check is cached for a few seconds."""
    if settings.AI_CORE_URL == "stub":
        return "stub"
    try:
        status = cache.get(HEALTH_CACHE_KEY)
    except Exception:  # the cache is down: check AI-Core itself
        return "ok" if get_client().health() else "unavailable"
    if status is None:
        status = "ok" if get_client().health() else "unavailable"
        with contextlib.suppress(Exception):
            cache.set(HEALTH_CACHE_KEY, status, settings.AI_CORE_HEALTH_CACHE_SECONDS)
    return status
