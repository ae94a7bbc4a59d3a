"""Writes for chats and messages, including the send flow.

The send flow commits the user message before AI-Core is called and saves
the reply in a second, short transaction: no transaction or row lock is ever
held while AI-Core is working.
"""

import logging
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import date, datetime

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.exceptions import APIException, NotFound, ValidationError

from accounts.models import User
from aicore import orchestrator
from aicore.client import drain
from aicore.exceptions import AICoreError
from aicore.orchestrator import AIReply
from tutor_platform.exceptions import Conflict, DatabaseUnavailable, is_database_outage
from tutoring.models import Tutor
from usage import services as usage

from . import heartbeat, live, selectors
from .models import Chat, IdempotencyKey, Message, ReplyStatus

logger = logging.getLogger(__name__)

TITLE_MAX_CHARS = 60
CHATS, MESSAGES = Chat._meta.db_table, Message._meta.db_table


class TutorUnavailable(Conflict):
    default_detail = "This tutor is no longer available. Start a chat with another tutor."
    default_code = "tutor_unavailable"


class NothingToReply(Conflict):
    default_detail = "The chat's last message is not a user message waiting for a reply."
    default_code = "nothing_to_reply"


class NothingToRegenerate(Conflict):
    default_detail = "The chat's last user message has no reply yet: ask for it with /reply/."
    default_code = "nothing_to_regenerate"


class ReplyDiscarded(Conflict):
    default_detail = "The chat was cleared or deleted while the tutor was answering."
    default_code = "reply_discarded"


class ReplyInterrupted(APIException):
    status_code = 503
    default_detail = "The server writing the reply stopped before it was finished. Please retry."
    default_code = selectors.INTERRUPTED


class ReplyFailed(APIException):
    """No reply, for whatever reason; the user message is saved and can be
    answered later (/reply/, or a retry with the same Idempotency-Key)."""

    def __init__(self, error: APIException | AICoreError, user_message: Message) -> None:
        self.user_message = user_message
        self.status_code = error.status_code
        self.retry_after = getattr(error, "retry_after", None)
        super().__init__(detail=error.detail, code=getattr(error, "code", None) or error.default_code)

    @classmethod
    def after(cls, exc: Exception, user_message: Message) -> "ReplyFailed":
        if isinstance(exc, AICoreError):
            return cls(exc, user_message)
        if is_database_outage(exc):
            logger.warning("Database unavailable while replying: %s", type(exc).__name__)
            return cls(DatabaseUnavailable(), user_message)
        logger.error("Reply to message %s failed", user_message.pk, exc_info=exc)
        return cls(ServerError(), user_message)


class ServerError(APIException):
    default_detail = "Internal server error."
    default_code = "server_error"


@dataclass(frozen=True)
class SendResult:
    user_message: Message
    assistant_message: Message


def derive_title(content: str) -> str:
    """The first ~60 characters of the message, cut at a word when possible."""
    text = re.sub(r"\s+", " ", content).strip()
    if len(text) <= TITLE_MAX_CHARS:
        return text
    cut = text[:TITLE_MAX_CHARS]
    if " " in cut[TITLE_MAX_CHARS // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:-") + "…"


def chat_create(*, user: User, tutor: Tutor, title: str = "") -> Chat:
    return Chat.objects.create(user=user, tutor=tutor, title=title.strip())


def chat_rename(*, chat: Chat, title: str) -> Chat:
    chat.title = title.strip()
    chat.save(update_fields=["title"])
    return chat


def _lock_chat(chat: Chat) -> None:
    """Locks the chat's row (only that row).

    Clearing, deleting, selecting a variant and saving a reply (through
    `_touch_chat`) all take this lock first, so they run one after the
    other and always lock rows in the same order. Call inside a transaction.
    """
    Chat.objects.select_for_update(of=("self",)).filter(pk=chat.pk).order_by().values_list("pk").first()


def chat_delete(*, chat: Chat) -> None:
    """Deletes the chat and its messages; feedback on them is kept."""
    with transaction.atomic():
        _lock_chat(chat)
        chat.delete()


def chat_clear_history(*, chat: Chat) -> None:
    """Removes every message; the chat stays. Feedback on them is kept."""
    with transaction.atomic():
        _lock_chat(chat)
        Message.objects.filter(chat=chat).delete()
        Chat.objects.filter(pk=chat.pk).update(last_message_at=None)
    chat.last_message_at = None


def _touch_chat(
    chat: Chat, *, at: datetime, title_from: str | None = None, containing: Message | None = None
) -> bool:
    """Moves `last_message_at` forward (never back) and fills an empty title.
    With `containing`, only while that message is still in the chat. False
    when nothing was updated. Like `_lock_chat`, it locks the chat's row.

    Written out: the ORM took 0.8-1.9 ms of CPU to compile this UPDATE's
    expressions, twice per send, against 0.15 ms for the statement itself."""
    moment = connection.ops.adapt_datetimefield_value(at)
    changes = ["last_message_at = CASE WHEN last_message_at IS NULL OR last_message_at < %s THEN %s "
               "ELSE last_message_at END"]  # fmt: skip
    params: list = [moment, moment]
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
        return cursor.rowcount > 0


def _ensure_tutor_available(chat: Chat) -> None:
    if not chat.tutor.is_available:
        raise TutorUnavailable()


def message_post(
    *,
    chat: Chat,
    content: str,
    attachments: list[dict],
    on_saved: Callable[[Message], None] | None = None,
) -> tuple[Message, usage.Reservation]:
    """Saves (and commits) the user message of a send, once the tutor is
    available and the student's quota has a reply for it (reserved here,
    so a refusal saves nothing), then calls `on_saved` with it (an
    Idempotency-Key binds to it there). The reservation goes to
    `reply_events`; it is given back if anything here fails."""
    _ensure_tutor_available(chat)
    reservation = usage.reserve(chat.user)
    try:
        with transaction.atomic():
            user_message = Message.objects.create(
                chat=chat, role=Message.Role.USER, content=content, attachments=attachments
            )
            _touch_chat(chat, at=user_message.created_at, title_from=content)
        if on_saved is not None:
            on_saved(user_message)
    except BaseException:
        usage.refund(reservation)
        raise
    return user_message, reservation


def message_send(
    *,
    chat: Chat,
    content: str,
    attachments: list[dict],
    request_id: str,
    on_saved: Callable[[Message], None] | None = None,
) -> SendResult:
    """Saves the user message, asks AI-Core, saves the reply.

    `on_saved` is called once the user message is committed (an
    Idempotency-Key binds to it there). Raises ReplyFailed (user message
    kept, no reply) when anything fails after that. Must be called outside
    any transaction.
    """
    user_message, reservation = message_post(
        chat=chat, content=content, attachments=attachments, on_saved=on_saved
    )
    assistant_message = _reply_to(
        chat=chat, user_message=user_message, request_id=request_id, reservation=reservation
    )
    return SendResult(user_message=user_message, assistant_message=assistant_message)


def message_regenerate_target(*, chat: Chat) -> Message:
    """The chat's last user message, when it has a reply to regenerate."""
    last = Message.objects.filter(chat=chat, role=Message.Role.USER).order_by("-id").first()
    if last is None or not Message.objects.filter(reply_to=last).exists():
        raise NothingToRegenerate()
    _ensure_tutor_available(chat)
    return last


def message_select(*, chat: Chat, message_id: int) -> Message:
    """Makes a reply the current variant of its user message (history and pages use it)."""
    with transaction.atomic():
        _lock_chat(chat)
        message = Message.objects.filter(chat=chat, pk=message_id).first()
        if message is None:
            raise NotFound("No such message in this chat.")
        if message.role != Message.Role.ASSISTANT or message.reply_to_id is None:
            raise ValidationError({"message": ["Only a reply (an assistant message) can be selected."]})
        if not message.is_current:
            Message.objects.filter(reply_to_id=message.reply_to_id, is_current=True).update(is_current=False)
            Message.objects.filter(pk=message.pk).update(is_current=True)
            message.is_current = True
    return message


def message_send_again(*, chat: Chat, user_message: Message, request_id: str) -> SendResult:
    """A retried send whose user message was saved before: answers that
    message (once), never saves a second copy."""
    existing = message_answered(chat=chat, user_message=user_message)
    if existing is None:
        existing = _reply_to(
            chat=chat, user_message=user_message, request_id=request_id, reservation=usage.reserve(chat.user)
        )
    return SendResult(user_message=user_message, assistant_message=existing)


def message_answered(*, chat: Chat, user_message: Message) -> Message | None:
    """For a retried send whose user message was saved before: the reply it
    got meanwhile, or None once the tutor is checked to be still available."""
    existing = Message.objects.filter(reply_to=user_message, is_current=True).first()
    if existing is None:
        _ensure_tutor_available(chat)
    else:
        selectors.annotate_messages([user_message, existing], chat_id=chat.pk)
    return existing


def message_awaiting_reply(*, chat: Chat, message_id: int | None = None) -> Message:
    """The user message /reply/ answers: `message_id`, or by default the
    chat's latest user message; either way one with no reply yet."""
    if message_id is None:
        candidate = Message.objects.filter(chat=chat, role=Message.Role.USER).order_by("-id").first()
    else:
        candidate = Message.objects.filter(chat=chat, pk=message_id).first()
        if candidate is None:
            raise NotFound("No such message in this chat.")
    if (
        candidate is None
        or candidate.role != Message.Role.USER
        or Message.objects.filter(reply_to=candidate).exists()
    ):
        raise NothingToReply()
    _ensure_tutor_available(chat)
    return candidate


def _reply_to(
    *, chat: Chat, user_message: Message, request_id: str, reservation: usage.Reservation
) -> Message:
    return drain(
        reply_events(
            chat=chat, user_message=user_message, request_id=request_id, reservation=reservation, stream=False
        )
    )


def reply_events(
    *,
    chat: Chat,
    user_message: Message,
    request_id: str,
    reservation: usage.Reservation,
    stream: bool = True,
    variant: bool = False,
) -> Generator[str, None, Message]:
    """Asks AI-Core and saves its reply; with `stream`, yields its pieces as
    they come. Returns the saved reply. Any failure but a conflict is a
    ReplyFailed carrying the saved user message, whose `reply_error` then
    records the failure's code (a failed regeneration leaves the message's
    answer as it was). While it runs, `live` tells other requests (and
    processes) what has been written so far.

    `reservation` (usage.reserve, taken by the caller before anything was
    saved) becomes a counted reply in the reply's transaction, or is given
    back when no reply is saved.

    `variant`: the user message has replies already and this one becomes
    its current variant (regenerate); otherwise it must be the first.
    """
    text = ""
    user_message.reply_status = ReplyStatus.PENDING
    watched = heartbeat.watch(
        chat_id=chat.pk,
        user_message_id=user_message.pk,
        user_id=reservation.user_id,
        day=reservation.day,
        variant=variant,
    )
    progress = live.Progress(chat.pk, user_message.pk, watched)
    try:
        pieces = orchestrator.stream_reply(
            chat=chat, user_message=user_message, request_id=request_id, stream=stream
        )
        while True:
            try:
                piece = next(pieces)
            except StopIteration as stop:
                reply = stop.value
                break
            text += piece
            progress.grew(text)
            yield piece
        message = _save_reply(
            chat=chat, user_message=user_message, reply=reply, variant=variant, reservation=reservation
        )
    except (ReplyDiscarded, NothingToReply) as conflict:
        _record_no_reply(chat, reservation, conflict)
        body = failure_body(conflict, user_message)
        live.finished(chat.pk, user_message.pk, text, event="error", data=body, watched=watched)
        raise
    except Exception as exc:
        failure = ReplyFailed.after(exc, user_message)
        _record_no_reply(chat, reservation, exc)
        if variant:
            user_message.reply_status = ReplyStatus.ANSWERED  # it keeps the answer it had
        else:
            _record_failure(user_message, failure.detail.code)
        body = failure_body(failure, user_message)
        live.finished(chat.pk, user_message.pk, text, event="error", data=body, watched=watched)
        raise failure from exc
    else:
        user_message.reply_status = ReplyStatus.ANSWERED
        body = {"message": message.pk}
        live.finished(
            chat.pk, user_message.pk, message.content, event="assistant_message", data=body, watched=watched
        )
    finally:
        heartbeat.unwatch(watched)  # a network call only if nothing above took it out of the index
    return message


def failure_body(failure: APIException, user_message: Message | int) -> dict:
    """What a client gets when no reply came: the error, the saved user
    message's id, and `retry_after` (seconds) when the JSON answer would
    carry `Retry-After`."""
    body = {
        "detail": str(failure.detail),
        "code": failure.get_codes(),
        "user_message": getattr(user_message, "pk", user_message),
    }
    if getattr(failure, "retry_after", None) is not None:
        body["retry_after"] = failure.retry_after
    return body


def reply_abandon(*, chat_id: int, user_message_id: int, user_id: int, day: date, variant: bool) -> None:
    """Ends a reply whose process died mid-way (chats.heartbeat found it):
    the reservation is given back, a first reply's user message turns
    failed (`reply_interrupted`; a regeneration leaves the answer it had),
    the Idempotency-Key bound to it can be retried at once, and followers
    get `event: error`."""
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


def _record_failure(user_message: Message, code: str) -> None:
    user_message.reply_status, user_message.reply_error = ReplyStatus.FAILED, code
    try:
        Message.objects.filter(pk=user_message.pk).update(reply_error=code)
    except Exception:  # the database itself failed: the reply is missing all the same
        logger.warning("Could not record the failed reply to message %s", user_message.pk)


def _record_no_reply(chat: Chat, reservation: usage.Reservation, exc: Exception) -> None:
    try:
        usage.record_failure(reservation, tutor_id=chat.tutor_id, ai_core_failed=isinstance(exc, AICoreError))
    except Exception:  # the database itself failed: the student keeps one reply reserved today
        logger.warning("Could not give back the reservation of user %s", reservation.user_id)


def _save_reply(
    *, chat: Chat, user_message: Message, reply: AIReply, variant: bool, reservation: usage.Reservation
) -> Message:
    """Saves the reply under the chat's lock, and counts it (usage). A first
    reply relies on the one-current-reply constraint (a second one raises
    NothingToReply); a variant first retires the current one, and counts
    its siblings."""
    count, now = 1, timezone.now()
    try:
        with transaction.atomic():
            # The chat's row first, as clearing and deleting lock it: the
            # update that moves its last_message_at to the reply takes the lock.
            if not _touch_chat(chat, at=now, containing=user_message):
                raise ReplyDiscarded()
            if variant:
                Message.objects.filter(reply_to=user_message, is_current=True).update(is_current=False)
            assistant_message = Message.objects.create(
                chat=chat,
                role=Message.Role.ASSISTANT,
                content=reply.content,
                metadata=reply.metadata,
                tokens_used=reply.tokens_used,
                latency_ms=reply.latency_ms,
                tutor_version=reply.tutor_version,
                reply_to=user_message,
                created_at=now,
            )
            usage.record_reply(reservation, tutor_id=chat.tutor_id, reply=assistant_message)
            if variant:
                count = Message.objects.filter(reply_to=user_message).count()
    except IntegrityError:
        # Another request saved the reply to this message first.
        raise NothingToReply() from None
    assistant_message.variant = {"index": count, "count": count}  # the newest is the last
    return assistant_message
