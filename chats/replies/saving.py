"""What the flow writes: the user message, the reply (counted in usage),
and what a failed or abandoned reply leaves behind.

Each write is its own short transaction; none is open while AI-Core works.
"""

import logging
import re
from datetime import date, datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from aicore.exceptions import AICoreError
from attachments.models import Reference
from chats.models import Chat, IdempotencyKey, Intent, Message, ReplyStatus
from tutoring.models import ExperimentArm
from usage import services as usage

from . import live
from .errors import NothingToReply, ReplyDiscarded, ReplyInterrupted, failure_body
from .generation import AIReply

logger = logging.getLogger(__name__)

TITLE_MAX_CHARS = 60
CHATS, MESSAGES = Chat._meta.db_table, Message._meta.db_table


def derive_title(content: str) -> str:
    """The first ~60 characters of the message, cut at a word when possible."""
    text = re.sub(r"\s+", " ", content).strip()
    if len(text) <= TITLE_MAX_CHARS:
        return text
    cut = text[:TITLE_MAX_CHARS]
    if " " in cut[TITLE_MAX_CHARS // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:-") + "…"


def _touch_chat(
    chat: Chat, *, at: datetime, title_from: str | None = None, containing: Message | None = None
) -> bool:
    """Moves `last_message_at` forward (never back) and fills an empty title.
    With `containing`, only while that message is still in the chat. False
    when nothing was updated. Like chats.services._lock_chat, it locks the
    chat's row (clearing, deleting and selecting take that lock first).

    Written out in SQL: the ORM's compiling of this UPDATE cost more CPU
    than the statement (docs/decisions/2026-12-05-figures-from-comments.md)."""
    moment = connection.ops.adapt_datetimefield_value(at)
    changes = ["last_message_at = CASE WHEN last_message_at IS NULL OR last_message_at < %s THEN %s "
               "ELSE last_message_at END"]  # fmt: skip
    params: list[Any] = [moment, moment]
    if title_from is not None:
        changes.append("title = CASE WHEN title = '' THEN %s ELSE title END")
        params.append(derive_title(title_from))
    sql = f"UPDATE {CHATS} SET {', '.join(changes)} WHERE id = %s"  # noqa: S608 (no input in the text)
    params.append(chat.pk)
    if containing is not None:
        sql += f" AND EXISTS (SELECT 1 FROM {MESSAGES} WHERE id = %s AND chat_id = %s)"  # noqa: S608
        params += [containing.pk, chat.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        touched: bool = cursor.rowcount > 0
    return touched


def user_message_save(
    *, chat: Chat, content: str, attachments: list[dict[str, Any]], intent: str = Intent.QUESTION
) -> Message:
    """Saves (and commits) a send's user message, with a Reference to each
    upload it shows (attaching.resolved); the chat's title comes from it
    when empty. An upload deleted since it was resolved is a 400."""
    try:
        with transaction.atomic():
            user_message = Message.objects.create(
                chat=chat, role=Message.Role.USER, content=content, attachments=attachments, intent=intent
            )
            if attachments:
                Reference.objects.bulk_create(
                    Reference(message=user_message, attachment_id=item["id"]) for item in attachments
                )
            _touch_chat(chat, at=user_message.created_at, title_from=content)
    except IntegrityError as exc:
        if not attachments:
            raise
        raise ValidationError({"attachments": ["An attachment was deleted meanwhile."]}) from exc
    return user_message


def safe_exchange_save(
    *, chat: Chat, content: str, attachments: list[dict[str, Any]], answer: str, intent: str = Intent.QUESTION
) -> tuple[Message, Message]:
    """Saves a send's user message and, as its reply, the configured safe
    answer (`safe_reply`: AI-Core not asked, no quota used)."""
    with transaction.atomic():
        user_message = user_message_save(chat=chat, content=content, attachments=attachments, intent=intent)
        reply = Message.objects.create(
            chat=chat,
            role=Message.Role.ASSISTANT,
            content=answer,
            moderation=Message.Moderation.SAFE_REPLY,
            reply_to=user_message,
            created_at=user_message.created_at,
        )
    user_message.reply_status = ReplyStatus.ANSWERED
    reply.variant = {"index": 1, "count": 1}
    return user_message, reply


def _retire_current(user_message: Message, *, user_id: int) -> None:
    """The current reply to `user_message` stops being current (a variant
    replaces it); one asked of an experiment arm counts as regenerated there.
    One statement: RETURNING says which arm it was (PostgreSQL, SQLite 3.35+)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {MESSAGES} SET is_current = %s WHERE reply_to_id = %s AND is_current = %s "  # noqa: S608
            "RETURNING experiment_arm_id",
            [False, user_message.pk, True],
        )
        retired = cursor.fetchall()
    for (arm_id,) in retired:
        if arm_id is not None:
            usage.record_arm_event(arm_id=arm_id, user_id=user_id, counter="regenerated")


def reply_save(
    *, chat: Chat, user_message: Message, reply: AIReply, variant: bool, reservation: usage.Reservation
) -> Message:
    """Saves the reply under the chat's lock, and counts it (usage). A first
    reply relies on the one-current-reply constraint (a second one raises
    NothingToReply); a variant first retires the current one, and counts
    its siblings. ReplyDiscarded when the chat was cleared or deleted."""
    count, now = 1, timezone.now()
    try:
        with transaction.atomic():
            # The chat's row first, as clearing and deleting lock it: the
            # update that moves its last_message_at to the reply takes the lock.
            if not _touch_chat(chat, at=now, containing=user_message):
                raise ReplyDiscarded()
            if variant:
                _retire_current(user_message, user_id=reservation.user_id)
            assistant_message = Message.objects.create(
                chat=chat,
                role=Message.Role.ASSISTANT,
                content=reply.content,
                metadata=reply.metadata,
                tokens_used=reply.tokens_used,
                latency_ms=reply.latency_ms,
                tutor_version=reply.tutor_version,
                experiment_arm=reply.experiment_arm,
                moderation=reply.moderation,
                reply_to=user_message,
                created_at=now,
            )
            usage.record_reply(reservation, tutor_id=chat.tutor_id, reply=assistant_message)
            if reply.experiment_arm is not None:
                usage.record_arm_reply(
                    arm_id=reply.experiment_arm.pk, user_id=reservation.user_id, reply=assistant_message
                )
            if variant:
                count = Message.objects.filter(reply_to=user_message).count()
    except IntegrityError:
        # Another request saved the reply to this message first.
        raise NothingToReply() from None
    assistant_message.variant = {"index": count, "count": count}  # the newest is the last
    return assistant_message


def reply_failure_record(user_message: Message, code: str) -> None:
    """The user message shows why it has no reply (`reply_error`)."""
    user_message.reply_status, user_message.reply_error = ReplyStatus.FAILED, code
    try:
        Message.objects.filter(pk=user_message.pk).update(reply_error=code)
    except Exception:  # the database itself failed: the reply is missing all the same
        logger.warning("Could not record the failed reply to message %s", user_message.pk)


def no_reply_record(
    chat: Chat, reservation: usage.Reservation, exc: Exception, *, arm: ExperimentArm | None = None
) -> None:
    """The reservation is given back, and the tutor's failures counted (and
    the experiment arm's, when AI-Core failed one)."""
    ai_core_failed = isinstance(exc, AICoreError)
    try:
        usage.record_failure(reservation, tutor_id=chat.tutor_id, ai_core_failed=ai_core_failed)
        if ai_core_failed and arm is not None:
            usage.record_arm_event(arm_id=arm.pk, user_id=reservation.user_id, counter="failures")
    except Exception:  # the database itself failed: the student keeps one reply reserved today
        logger.warning("Could not give back the reservation of user %s", reservation.user_id)


def reply_abandon(*, chat_id: int, user_message_id: int, user_id: int, day: date, variant: bool) -> None:
    """Ends a reply whose process died mid-way (heartbeat found it): the
    reservation is given back, a first reply's user message turns failed
    (`reply_interrupted`; a regeneration leaves the answer it had), the
    Idempotency-Key bound to it can be retried at once, and followers get
    `event: error`."""
    usage.refund(usage.Reservation(user_id=user_id, day=day))
    if not variant:
        Message.objects.filter(pk=user_message_id, reply_error="").exclude(
            pk__in=Message.objects.filter(reply_to_id=user_message_id).values("reply_to_id")
        ).update(reply_error=ReplyInterrupted.default_code)
    IdempotencyKey.objects.filter(
        user_message_id=user_message_id, state=IdempotencyKey.State.IN_PROGRESS
    ).update(state=IdempotencyKey.State.FAILED)
    entry = live.get(chat_id)
    if entry is not None and entry["state"] == "running" and entry["user_message"] == user_message_id:
        body = failure_body(ReplyInterrupted(), user_message_id)
        live.finished(chat_id, user_message_id, entry["text"], event="error", data=body)
    logger.warning("Reply to message %s ended: its server process stopped", user_message_id)
