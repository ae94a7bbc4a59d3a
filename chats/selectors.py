from dataclasses import dataclass

from django.db.models import QuerySet

from accounts.models import User

from . import live
from .models import Chat, Message


def chat_list(*, user: User, tutor_id: int | None = None) -> QuerySet[Chat]:
    """The user's chats, most recently active first, with tutor, course and
    the tutor's current version joined (a send checks that tutor and course
    are still active, and sends the version)."""
    chats = Chat.objects.filter(user=user).select_related("tutor__course", "tutor__current_version")
    if tutor_id is not None:
        chats = chats.filter(tutor_id=tutor_id)
    return chats


def with_version_number(messages: QuerySet[Message]) -> QuerySet[Message]:
    """Joins the producing tutor version for its number, without its prompt."""
    return messages.select_related("tutor_version").defer(
        "tutor_version__system_prompt", "tutor_version__note"
    )


@dataclass(frozen=True)
class MessagePage:
    results: list[Message]
    has_more: bool
    next_before_id: int | None
    reply_in_progress: bool


def message_page(*, chat: Chat, limit: int, before_id: int | None = None) -> MessagePage:
    """The newest `limit` messages with id < before_id, oldest first.

    Keyset pagination on the (chat, id) index: one LIMIT query whatever the
    depth of the page or the length of the chat.
    """
    messages = with_version_number(Message.objects.filter(chat=chat))
    if before_id is not None:
        messages = messages.filter(id__lt=before_id)
    newest_first = list(messages.order_by("-id")[: limit + 1])
    has_more = len(newest_first) > limit
    page = newest_first[:limit][::-1]
    return MessagePage(
        results=page,
        has_more=has_more,
        next_before_id=page[0].id if has_more else None,
        reply_in_progress=live.in_progress(chat.pk),
    )
