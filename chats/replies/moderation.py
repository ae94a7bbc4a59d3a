"""The flow's safety stage: a send's message checked on the way in, every
reply on the way out (safety.services does the checking and recording).

- In (`inbound`), before the quota is reserved and anything is saved: a
  `block` refuses the send (400 content_blocked); a `respond` is answered
  with the category's safe text, AI-Core not asked (`safe_reply`); a
  `flag` is recorded once the message is saved (`recorded`). A saved
  message asked about again is checked again (`asked_again`).
- Out (`outbound`): every piece of a streamed reply is checked by the
  built-in check before it is relayed; a reply a check withholds is
  replaced by the category's safe text (`withheld`), AI-Core's stream
  stopped.
"""

import logging
import time
from collections.abc import Generator
from dataclasses import replace

from django.conf import settings

from chats.models import Chat, Message
from safety import services as safety
from safety.models import Action, Stage
from safety.policies import language_of
from tutoring.experiments import Assigned

from . import attaching
from .generation import AIReply

logger = logging.getLogger(__name__)


def inbound(chat: Chat, content: str, *, images: list[str]) -> safety.Verdict:
    """The verdict on a send's message (and its images, for a check that
    looks at them). Refuses a `block` (ContentBlocked), or a message no
    check could judge under MODERATION_ON_ERROR=block
    (ModerationUnavailable); both are recorded, nothing else is saved."""
    verdict = safety.screen(content, stage=Stage.INPUT, images=images)
    if verdict.action == Action.BLOCK or (verdict.failed and settings.MODERATION_ON_ERROR == "block"):
        safety.record(verdict, chat=chat, message_id=None, exchange=None)
        raise safety.ContentBlocked(verdict.categories)
    return verdict


def asked_again(user_message: Message) -> None:
    """A saved message asked about again (/reply/, /regenerate/, a retried
    send): AI-Core answers it only if the checks let it through now, so
    regenerating a `safe_reply` never reaches AI-Core. Refusals as in
    `inbound`; nothing is recorded again (the send recorded it)."""
    verdict = safety.screen(
        user_message.content, stage=Stage.INPUT, images=attaching.image_links(user_message.attachments)
    )
    if verdict.failed and settings.MODERATION_ON_ERROR == "block":
        raise safety.ModerationUnavailable()
    if verdict.withholds:
        raise safety.ContentBlocked(verdict.categories)


def responds(verdict: safety.Verdict) -> bool:
    return verdict.action == Action.RESPOND


def safe_text(verdict: safety.Verdict, asked: str) -> str:
    """The category's text, in the language the student wrote in."""
    return verdict.safe_text(language_of(asked))


def recorded(verdict: safety.Verdict | None, *, chat: Chat, message: Message, exchange: Message) -> None:
    """Keeps a verdict worth a review, now that its message is saved. The
    message is past its check: a failure to record (the database went
    away) is logged with what was found, and the student's reply goes on."""
    if verdict is None or not verdict.worth_recording:
        return
    try:
        safety.record(verdict, chat=chat, message_id=message.pk, exchange=exchange.pk)
    except Exception:
        logger.exception(
            "Safety flag not recorded: %s %s in message %s of chat %s",
            verdict.stage, ",".join(verdict.categories) or "unchecked", message.pk, chat.pk,
        )  # fmt: skip


def outbound(
    pieces: Generator[str, None, AIReply], *, chat: Chat, user_message: Message, assigned: Assigned
) -> Generator[str, None, AIReply]:
    """`pieces` as the student may see them; returns the reply to save, its
    `verdict` set (and its content replaced when withheld). Under
    MODERATION_ON_ERROR=block a reply no check could judge is
    ModerationUnavailable."""
    started = time.monotonic()
    check = safety.StreamCheck()
    reply: AIReply | None = None
    try:
        while True:
            try:
                piece = next(pieces)
            except StopIteration as stop:
                reply = stop.value
                break
            ready = check.feed(piece)
            if ready:
                yield ready
        verdict = check.finish(reply.content, reply.metadata)
    except safety.Withheld as withheld:
        pieces.close()  # AI-Core's stream is not read any further
        verdict = withheld.verdict
    if verdict.failed and settings.MODERATION_ON_ERROR == "block":
        safety.record(verdict, chat=chat, message_id=None, exchange=user_message.pk)  # raises
    if verdict.withholds:
        text = safe_text(verdict, user_message.content)
        if reply is None:  # stopped mid-way: AI-Core reported nothing
            latency_ms = round((time.monotonic() - started) * 1000)
            version = assigned.version
            metadata = {"model_id": version.model_id if version else None, "latency_ms": latency_ms}
            reply = AIReply(text, metadata, version, assigned.arm, None, latency_ms)
        return replace(reply, content=text, moderation=Message.Moderation.WITHHELD, verdict=verdict)
    if check.held:
        yield check.held
    assert reply is not None
    return replace(reply, verdict=verdict)
