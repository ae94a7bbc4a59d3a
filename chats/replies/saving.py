"""What the flow writes: the user message, the reply (counted in usage),
and what a failed or abandoned reply leaves behind.

Each write is its own short transaction; none is open while AI-Core works.
"""

import logging
import re
from datetime import date, datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import ForeignKey
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
CHATS, MESSAGES, REFERENCES = Chat._meta.db_table, Message._meta.db_table, Reference._meta.db_table


def derive_title(content: str) -> str:
    """The first ~60 characters of the message, cut at a word when possible."""
    text = re.sub(r"\s+", " ", content).strip()
    if len(text) <= TITLE_MAX_CHARS:
        return text
    cut = text[:TITLE_MAX_CHARS]
    if " " in cut[TITLE_MAX_CHARS // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:-") + "…"


def _touch_sql(
    chat: Chat,
    *,
    at: datetime,
    title_from: str | None = None,
    containing: Message | None = None,
    variant: bool = False,
) -> tuple[str, list[Any]]:
    """The UPDATE that moves `last_message_at` forward (never back) and
    fills an empty title (a `variant` marks the chat `has_variants`); with
    `containing`, only while that message is still in the chat. Like
    chats.services._lock_chat, it locks the chat's row (clearing, deleting
    and selecting take that lock first).

    Written out in SQL: the ORM's compiling of this UPDATE cost more CPU
    than the statement (docs/decisions/2026-12-05-figures-from-comments.md)."""
    moment = connection.ops.adapt_datetimefield_value(at)
    changes = ["last_message_at = CASE WHEN last_message_at IS NULL OR last_message_at < %s THEN %s "
               "ELSE last_message_at END"]  # fmt: skip
    params: list[Any] = [moment, moment]
    if title_from is not None:
        changes.append("title = CASE WHEN title = '' THEN %s ELSE title END")
        params.append(derive_title(title_from))
    if variant:
        changes.append("has_variants = %s")
        params.append(True)
    sql = f"UPDATE {CHATS} SET {', '.join(changes)} WHERE id = %s"  # noqa: S608 (no input in the text)
    params.append(chat.pk)
    if containing is not None:
        sql += f" AND EXISTS (SELECT 1 FROM {MESSAGES} WHERE id = %s AND chat_id = %s)"  # noqa: S608
        params += [containing.pk, chat.pk]
    return sql, params


def _touch_chat(chat: Chat, **touch: Any) -> bool:
    """Runs `_touch_sql`; False when nothing was updated."""
    with connection.cursor() as cursor:
        cursor.execute(*_touch_sql(chat, **touch))
        touched: bool = cursor.rowcount > 0
    return touched


def _one_statement() -> bool:
    """Whether a write of several tables can be one statement (a
    data-modifying WITH: PostgreSQL's, not SQLite's). It saves a send 9
    statements of PostgreSQL's: the transactions' BEGIN and COMMIT and
    the round trips between the writes
    (docs/decisions/2026-12-06-read-path-and-send-statements.md)."""
    return connection.vendor == "postgresql"


MESSAGE_FIELDS = [field for field in Message._meta.concrete_fields if not field.primary_key]


def _inserted(message: Message, *, source: str | None = None) -> tuple[str, list[Any]]:
    """The INSERT of a new `message` with the values Django's would write,
    RETURNING its id; with `source`, one row per row of `source`."""
    columns = ", ".join(connection.ops.quote_name(str(field.column)) for field in MESSAGE_FIELDS)
    params = [
        field.get_db_prep_save(field.pre_save(message, add=True), connection) for field in MESSAGE_FIELDS
    ]
    marks = ", ".join(["%s"] * len(params))
    rows = f"SELECT {marks} FROM {source}" if source else f"VALUES ({marks})"  # noqa: S608 (this module's names)
    return f"INSERT INTO {MESSAGES} ({columns}) {rows} RETURNING id", params


def _saved(message: Message, pk: int) -> Message:
    """`message` as the database now holds it, with the id it was given
    (and the related objects it was made with)."""
    saved = Message.from_db(
        connection.alias,
        ["id", *(field.attname for field in MESSAGE_FIELDS)],
        [pk, *(getattr(message, field.attname) for field in MESSAGE_FIELDS)],
    )
    for field in MESSAGE_FIELDS:
        if isinstance(field, ForeignKey) and field.is_cached(message):
            field.set_cached_value(saved, field.get_cached_value(message))
    return saved


def _returned(sql: str, params: list[Any]) -> Any:
    """The first column of the statement's first row; None when it returned none."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def user_message_save(
    *, chat: Chat, content: str, attachments: list[dict[str, Any]], intent: str = Intent.QUESTION
) -> Message:
    """Saves (and commits) a send's user message, with a Reference to each
    upload it shows (attaching.resolved); the chat's title comes from it
    when empty. An upload deleted since it was resolved is a 400. One
    statement on PostgreSQL."""
    message = Message(
        chat=chat, role=Message.Role.USER, content=content, attachments=attachments, intent=intent
    )
    shown = [item["id"] for item in attachments]
    try:
        if _one_statement():
            insert, params = _inserted(message)
            touch, touch_params = _touch_sql(chat, at=message.created_at, title_from=content)
            sql = f"WITH saved AS ({insert}), touched AS ({touch})"
            if shown:
                sql += (
                    f", shown AS (INSERT INTO {REFERENCES} (message_id, attachment_id) "  # noqa: S608
                    "SELECT saved.id, upload.id FROM saved, unnest(%s::bigint[]) AS upload(id)) "
                )
                touch_params.append(shown)
            sql += "SELECT id FROM saved"
            return _saved(message, _returned(sql, [*params, *touch_params]))
        with transaction.atomic():
            message.save(force_insert=True)
            Reference.objects.bulk_create(Reference(message=message, attachment_id=pk) for pk in shown)
            _touch_chat(chat, at=message.created_at, title_from=content)
    except IntegrityError as exc:
        if not shown:
            raise
        raise ValidationError({"attachments": ["An attachment was deleted meanwhile."]}) from exc
    return message


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
    message = Message(
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
        created_at=timezone.now(),
    )
    counted: dict[str, Any] = {"tutor_id": chat.tutor_id, "reply": message}
    counted["arm_id"] = message.experiment_arm_id
    count = 1
    try:
        if not variant and _one_statement():
            # The chat's row first, as clearing and deleting lock it: the
            # update that moves its last_message_at to the reply takes the
            # lock; the reply and its counts are written only if it did.
            touch, touch_params = _touch_sql(chat, at=message.created_at, containing=user_message)
            insert, insert_params = _inserted(message, source="touched")
            counts, counts_params = usage.reply_counted_with(reservation, source="saved", **counted)
            sql = f"WITH touched AS ({touch} RETURNING id), saved AS ({insert}), {', '.join(counts)} "
            params = [*touch_params, *insert_params, *counts_params]
            pk = _returned(sql + "SELECT id FROM saved", params)  # noqa: S608 (the SQL of these modules)
            if pk is None:
                raise ReplyDiscarded()
            message = _saved(message, pk)
            usage.release_overnight(reservation, message)
        else:
            with transaction.atomic():
                if not _touch_chat(chat, at=message.created_at, containing=user_message, variant=variant):
                    raise ReplyDiscarded()
                if variant:
                    _retire_current(user_message, user_id=reservation.user_id)
                message.save(force_insert=True)
                usage.record_reply(reservation, **counted)
                if variant:
                    count = Message.objects.filter(reply_to=user_message).count()
    except IntegrityError:
        # Another request saved the reply to this message first.
        raise NothingToReply() from None
    message.variant = {"index": count, "count": count}  # the newest is the last
    return message


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
