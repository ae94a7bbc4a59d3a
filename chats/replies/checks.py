"""Which user message a request answers, once it is checked that it may.

Each raises a refusal (errors.py) and saves nothing.
"""

from rest_framework.exceptions import NotFound

from chats import selectors
from chats.models import Chat, Message

from .errors import NothingToRegenerate, NothingToReply, TutorUnavailable


def tutor_available(chat: Chat) -> None:
    if not chat.tutor.is_available:
        raise TutorUnavailable()


def awaiting_reply(*, chat: Chat, message_id: int | None = None) -> Message:
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
    tutor_available(chat)
    return candidate


def to_regenerate(*, chat: Chat) -> Message:
    """The chat's last user message, when it has a reply to regenerate."""
    last = Message.objects.filter(chat=chat, role=Message.Role.USER).order_by("-id").first()
    if last is None or not Message.objects.filter(reply_to=last).exists():
        raise NothingToRegenerate()
    tutor_available(chat)
    return last


def answered(*, chat: Chat, user_message: Message) -> Message | None:
    """For a retried send whose user message was saved before: the reply it
    got meanwhile, or None once the tutor is checked to be still available."""
    existing = Message.objects.filter(reply_to=user_message, is_current=True).first()
    if existing is None:
        tutor_available(chat)
    else:
        selectors.annotate_messages([user_message, existing], chat_id=chat.pk)
    return existing
