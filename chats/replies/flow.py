"""Asking the tutor: one flow for a send, a reply and a regeneration.

`answer()` reads top to bottom:

1. idempotency claim: a repeat of a finished request gets its first
   success again, even where the checks below would now refuse;
2. checks: which user message is answered, and whether it may be;
3. attachments: a send's uploads, the student's own (attaching.resolved);
   safety, on the way in: a send's message checked (moderation.inbound);
   refused, or answered with the category's safe text, AI-Core not asked;
   a saved message asked about again is checked again (asked_again);
4. quota: one reply reserved (given back when none is saved);
5. the user message: saved (a send) and bound to the claim;
6. the version: the tutor's current one or, during an experiment, the
   student's arm's (tutoring.experiments.assigned);
7. the call, with the learner context (learning.learner_block, built by
   generation.generate), checked on the way out (moderation.outbound), the
   reply saved and counted, the live state (`_reply`);
8. delivery: JSON or server-sent events, the same outcome either way; a
   failure has one shape (errors.failure_body).

Every stage is one call here; a new stage (attachments, learner context)
is one more line in `answer` or `_reply`. No transaction
is open while AI-Core works: the user message is committed before the
call and the reply saved in a transaction of its own after it.
"""

import enum
import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from django.http.response import HttpResponseBase
from rest_framework import status
from rest_framework.response import Response

from chats.models import Chat, Intent, Message, ReplyStatus
from chats.serializers import MessageSerializer, ReplyResultSerializer, SendResultSerializer
from safety.services import Verdict
from tutoring import experiments
from usage import services as usage

from . import attaching, checks, heartbeat, idempotency, live, moderation, saving, streaming
from .errors import NothingToReply, ReplyDiscarded, ReplyFailed, failure_body
from .generation import generate

# One line per reply, however it ended (the access line of a streamed send
# says only 200): outcome or error code, duration, chat, tokens.
reply_log = logging.getLogger("chats.replies")


class Kind(enum.Enum):
    SEND = "send"  # a new user message, then its reply
    REPLY = "reply"  # the missing reply to a saved user message
    REGENERATE = "regenerate"  # another reply to the last user message, the new current variant


@dataclass(frozen=True)
class Question:
    """What the student asked for, validated by the view."""

    kind: Kind
    chat: Chat
    request_id: str
    idempotency_key: str | None = None
    content: str = ""  # a send's
    intent: str = Intent.QUESTION  # a send's: what the student asks the tutor to do
    attachments: list[int] = field(default_factory=list)  # a send's: ids of the student's uploads
    message_id: int | None = None  # /reply/'s, when it names one

    @property
    def fingerprint(self) -> str:
        """What a repeated Idempotency-Key must match."""
        if self.kind is Kind.SEND:
            # The default intent is left out: keys stored before intents existed still match.
            asked = {} if self.intent == Intent.QUESTION else {"intent": self.intent}
            return idempotency.fingerprint(
                chat=self.chat.pk, content=self.content, attachments=self.attachments, **asked
            )
        if self.kind is Kind.REPLY:
            return idempotency.fingerprint(chat=self.chat.pk, action="reply", message=self.message_id)
        return idempotency.fingerprint(chat=self.chat.pk, action="regenerate")


def answer(question: Question, *, stream: bool) -> HttpResponseBase:
    """The tutor's reply to `question`, as JSON or as server-sent events."""
    chat = question.chat
    claim = idempotency.claim(user=chat.user, key=question.idempotency_key, digest=question.fingerprint)
    if isinstance(claim, idempotency.StoredResponse):
        return _stored(claim, stream=stream)
    try:
        user_message, earlier = _target(question, claim.user_message)
        if earlier is not None and user_message is not None:  # a retried send, answered meanwhile
            outcome = _success(question, user_message, earlier)
            claim.finish(outcome)
            return _stored(outcome, stream=stream)
        verdict, attachments = None, []
        if user_message is None:
            attachments = attaching.resolved(chat.user, question.attachments)
            verdict = moderation.inbound(chat, question.content, images=attaching.image_links(attachments))
            if moderation.responds(verdict):
                outcome = _safe_reply(question, attachments, verdict)
                claim.finish(outcome)
                return _stored(outcome, stream=stream)
        else:
            moderation.asked_again(user_message)
        reservation = usage.reserve(chat.user)
        try:
            if user_message is None:
                user_message = saving.user_message_save(
                    chat=chat, content=question.content, attachments=attachments, intent=question.intent
                )
            claim.bind(user_message)
        except BaseException:
            usage.refund(reservation)
            raise
        moderation.recorded(verdict, chat=chat, message=user_message, exchange=user_message)
    except BaseException:
        claim.finish(None)
        raise
    events = _reply(question, user_message, reservation, stream=stream)

    def on_end(reply: Message | None) -> idempotency.StoredResponse | None:
        outcome = _success(question, user_message, reply) if reply is not None else None
        claim.finish(outcome)
        return outcome

    if stream:
        return streaming.reply_stream(
            user_message=user_message, events=events, announce=question.kind is Kind.SEND, on_end=on_end
        )
    return _json(events, on_end)


def _target(question: Question, bound: Message | None) -> tuple[Message | None, Message | None]:
    """The user message to answer (None: a send's, not saved yet) and, for
    a retried send, the reply it already has."""
    chat = question.chat
    if question.kind is Kind.REPLY:
        return checks.awaiting_reply(chat=chat, message_id=question.message_id), None
    if question.kind is Kind.REGENERATE:
        return checks.to_regenerate(chat=chat), None
    if bound is not None:  # the key's earlier attempt saved the message
        return bound, checks.answered(chat=chat, user_message=bound)
    checks.tutor_available(chat)
    return None, None


def _reply(
    question: Question, user_message: Message, reservation: usage.Reservation, *, stream: bool
) -> Generator[str, None, Message]:
    """Asks AI-Core and saves its reply; with `stream`, yields its pieces as
    they come. Returns the saved reply. Any failure but a conflict is a
    ReplyFailed carrying the saved user message, whose `reply_error` then
    records the failure's code (a failed regeneration leaves the message's
    answer as it was). While it runs, `live` tells other requests (and
    processes) what has been written so far, and `heartbeat` ends it if
    this process dies."""
    chat, variant = question.chat, question.kind is Kind.REGENERATE
    started = time.monotonic()
    text = ""
    user_message.reply_status = ReplyStatus.PENDING
    watched = heartbeat.watch(
        chat_id=chat.pk,
        user_message_id=user_message.pk,
        user_id=reservation.user_id,
        day=reservation.day,
        variant=variant,
    )
    publisher = live.Publisher(chat.pk, user_message.pk, watched)
    assigned = experiments.Assigned(None)
    try:
        assigned = experiments.assigned(chat.tutor, chat.user_id)
        pieces = moderation.outbound(
            generate(
                chat=chat,
                user_message=user_message,
                assigned=assigned,
                request_id=question.request_id,
                stream=stream,
            ),
            chat=chat,
            user_message=user_message,
            assigned=assigned,
        )
        while True:
            try:
                piece = next(pieces)
            except StopIteration as stop:
                reply = stop.value
                break
            text += piece
            publisher.grew(text)
            yield piece
        message = saving.reply_save(
            chat=chat, user_message=user_message, reply=reply, variant=variant, reservation=reservation
        )
        moderation.recorded(reply.verdict, chat=chat, message=message, exchange=user_message)
    except (ReplyDiscarded, NothingToReply) as conflict:
        saving.no_reply_record(chat, reservation, conflict)
        _log(question, user_message, started, outcome="conflict", code=str(conflict.default_code))
        body = failure_body(conflict, user_message.pk)
        live.finished(chat.pk, user_message.pk, text, event="error", data=body, watched=watched)
        raise
    except Exception as exc:
        failure = ReplyFailed.after(exc, user_message)
        saving.no_reply_record(chat, reservation, exc, arm=assigned.arm)
        if variant:
            user_message.reply_status = ReplyStatus.ANSWERED  # it keeps the answer it had
        else:
            saving.reply_failure_record(user_message, failure.code)
        _log(question, user_message, started, outcome="failed", code=failure.code)
        body = failure_body(failure, user_message.pk)
        live.finished(chat.pk, user_message.pk, text, event="error", data=body, watched=watched)
        raise failure from exc
    else:
        user_message.reply_status = ReplyStatus.ANSWERED
        _log(question, user_message, started, outcome=message.moderation or "answered", reply=message)
        live.finished(
            chat.pk,
            user_message.pk,
            message.content,
            event=streaming.end_event(message),
            data={"message": message.pk},
            watched=watched,
        )
    finally:
        heartbeat.unwatch(watched)  # a network call only if nothing above took it out of the index
    return message


def _safe_reply(
    question: Question, attachments: list[dict[str, Any]], verdict: Verdict
) -> idempotency.StoredResponse:
    """A send answered with its category's safe text: both messages saved,
    the verdict recorded (and the right adult told), no quota used."""
    started = time.monotonic()
    user_message, reply = saving.safe_exchange_save(
        chat=question.chat,
        content=question.content,
        attachments=attachments,
        intent=question.intent,
        answer=moderation.safe_text(verdict, question.content),
    )
    moderation.recorded(verdict, chat=question.chat, message=user_message, exchange=user_message)
    _log(question, user_message, started, outcome=Message.Moderation.SAFE_REPLY, reply=reply)
    return _success(question, user_message, reply)


def _log(
    question: Question,
    user_message: Message,
    started: float,
    *,
    outcome: str,
    code: str | None = None,
    reply: Message | None = None,
) -> None:
    """The reply's line: `answered`, `withheld` or `safe_reply` (a reply was
    saved), `failed` with the error code, or `conflict` (nothing to answer)."""
    fields = {
        "kind": question.kind.value,
        "outcome": outcome,
        "code": code,
        "chat": question.chat.pk,
        "user_message": user_message.pk,
        "reply": reply.pk if reply is not None else None,
        "tokens": reply.tokens_used if reply is not None else None,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }
    reply_log.log(
        logging.WARNING if outcome == "failed" else logging.INFO,
        "%s %s chat=%s message=%s reply=%s tokens=%s %.1fms",
        question.kind.value,
        code or outcome,
        question.chat.pk,
        user_message.pk,
        "-" if reply is None else reply.pk,
        "-" if reply is None or reply.tokens_used is None else reply.tokens_used,
        fields["duration_ms"],
        extra=fields,
    )


def _success(question: Question, user_message: Message, reply: Message) -> idempotency.StoredResponse:
    """The 201 a success answers (and a repeated Idempotency-Key replays)."""
    if question.kind is Kind.SEND:
        body = SendResultSerializer({"user_message": user_message, "assistant_message": reply}).data
    else:
        body = ReplyResultSerializer({"assistant_message": reply}).data
    return idempotency.StoredResponse(status.HTTP_201_CREATED, body)


def _stored(outcome: idempotency.StoredResponse, *, stream: bool) -> HttpResponseBase:
    if stream:
        return streaming.replay(outcome.body)
    return Response(outcome.body, status=outcome.status, headers=outcome.headers)


def _json(
    events: Generator[str, None, Message],
    on_end: Callable[[Message | None], idempotency.StoredResponse | None],
) -> Response:
    """The whole reply at once; a failure after the user message was saved
    is its status with the one failure body (`Retry-After` as a header)."""
    try:
        while True:
            next(events)
    except StopIteration as stop:
        reply = stop.value
    except ReplyFailed as failure:
        on_end(None)
        headers = {} if failure.retry_after is None else {"Retry-After": str(failure.retry_after)}
        body = failure_body(failure, MessageSerializer(failure.user_message).data)
        body.pop("retry_after", None)  # JSON carries it as the header
        return Response(body, status=failure.status_code, headers=headers)
    except BaseException:
        on_end(None)
        raise
    outcome = on_end(reply)
    assert outcome is not None  # a reply was saved: the 201
    return Response(outcome.body, status=outcome.status)
