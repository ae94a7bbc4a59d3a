from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, QuerySet
from django.utils import timezone
from rest_framework.exceptions import NotFound

from accounts.models import User
from tutor_platform.prepared import Prepared

from .models import Chat, Message, ReplyStatus
from .replies import live
from .replies.errors import INTERRUPTED

# What chat JSON and the reply flow read of a chat's tutor and course: not
# their descriptions and timestamps, whose fetching and conversion was 5 %
# of the Python calls of a chat list.
CHAT_COLUMNS = (
    *("id", "user_id", "tutor_id", "title", "created_at", "last_message_at", "has_variants"),
    *("tutor__id", "tutor__name", "tutor__is_active", "tutor__course_id", "tutor__current_version_id"),
    "tutor__running_experiment_id",  # a reply's version depends on it (tutoring.experiments)
    *("tutor__course__id", "tutor__course__is_active"),
)


def chat_list(*, user: User | int, tutor_id: int | None = None) -> QuerySet[Chat]:
    """The user's chats, most recently active first, with tutor and course joined."""
    chats = Chat.objects.filter(user=user).select_related("tutor__course").only(*CHAT_COLUMNS)
    if tutor_id is not None:
        chats = chats.filter(tutor_id=tutor_id)
    return chats


_FIRST_CHATS = Prepared(
    lambda limit, user_id, tutor_id=None: chat_list(user=user_id, tutor_id=tutor_id)[:limit]
)
# COUNT(*) as a values_list query (one group: the user's), which a Prepared runs.
_CHAT_COUNT = Prepared(
    lambda user_id, tutor_id=None: (
        chat_list(user=user_id, tutor_id=tutor_id)
        .order_by()
        .values("user_id")
        .annotate(count=Count("id"))
        .values_list("count")
    )
)


class ChatPages:
    """chat_list as the API's paginator reads it (a Paginator's object
    list): the first rows, which nearly every request wants, and the count
    by prepared queries (tutor_platform.prepared); a later page as a
    queryset, sliced by the ORM."""

    model = Chat
    ordered = True  # by Chat.Meta.ordering
    FIRST_ROWS_MAX = 101  # a page of at most 100, and one more to know whether there is another

    def __init__(self, *, user_id: int, tutor_id: int | None = None) -> None:
        self.user_id, self.tutor_id = user_id, tutor_id

    def __getitem__(self, rows: slice) -> list[Chat]:
        if rows.start or rows.step or rows.stop is None or not 0 < rows.stop <= self.FIRST_ROWS_MAX:
            return list(chat_list(user=self.user_id, tutor_id=self.tutor_id)[rows])  # built only here
        return _FIRST_CHATS.all(rows.stop, **self._ids())

    def count(self) -> int:
        rows = _CHAT_COUNT.all(**self._ids())
        return rows[0][0] if rows else 0

    def _ids(self) -> dict[str, int]:
        """The prepared queries' values: the tutor's only when the list is filtered by it."""
        return {"user_id": self.user_id} | ({} if self.tutor_id is None else {"tutor_id": self.tutor_id})


def _owned_chat(for_reply: bool, chat_id: int, user_id: int) -> QuerySet[Chat]:
    joins = ("user", "tutor__course", "tutor__current_version") if for_reply else ("user", "tutor__course")
    chats = Chat.objects.select_related(*joins).only(*CHAT_COLUMNS)  # all of the user's and version's
    return chats.filter(pk=chat_id, user_id=user_id).order_by()[:1]


_OWNED_CHAT = Prepared(_owned_chat)


def owned_chat(*, chat_id: int, user_id: int | str, for_reply: bool = False) -> Chat | None:
    """Chat `chat_id` if user `user_id` owns it, else None. One query that
    joins the user (the view authenticates with it), tutor and course (a
    send checks that both are still active) and, with `for_reply`, the
    tutor's current version, which a reply sends (prompt text: only then)."""
    return _OWNED_CHAT.first(for_reply, chat_id=chat_id, user_id=int(user_id))


def with_version_number(messages: QuerySet[Message]) -> QuerySet[Message]:
    """Joins the producing tutor version for its number, without its prompt."""
    return messages.select_related("tutor_version").defer(
        "tutor_version__system_prompt", "tutor_version__note"
    )


def _newest(limit: int, older: bool, chat_id: int, before_id: int = 0) -> QuerySet[Message]:
    messages = with_version_number(Message.objects.filter(chat_id=chat_id, is_current=True))
    if older:
        messages = messages.filter(id__lt=before_id)
    return messages.order_by("-id")[:limit]


_NEWEST = Prepared(_newest)


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
    if before_id is None:
        newest_first = _NEWEST.all(limit + 1, False, chat_id=chat.pk)
    else:
        newest_first = _NEWEST.all(limit + 1, True, chat_id=chat.pk, before_id=before_id)
    has_more = len(newest_first) > limit
    page = newest_first[:limit][::-1]
    running = annotate_messages(
        page, chat_id=chat.pk, has_variants=chat.has_variants, newest=before_id is None
    )
    return MessagePage(
        results=page,
        has_more=has_more,
        next_before_id=page[0].id if has_more else None,
        reply_in_progress=running is not None,
    )


def annotate_messages(
    messages: list[Message], *, chat_id: int, has_variants: bool = True, newest: bool = False
) -> int | None:
    """Sets what the message JSON shows beyond the row, in one query for
    any number of messages (none in a chat without variants, `has_variants`
    false, whose user messages' replies are all among `messages`, or whose
    `messages` are its newest: a reply comes after its question and, with
    no variants, every reply is current, so it would be on that page):
    `variant` ({index, count}, oldest first) on replies, `reply_status` on
    user messages (answered when it has a reply; else pending while one is
    being generated, or for a fresh message not yet tried; else failed,
    with `reply_error`: the last attempt's code, or
    `reply_interrupted` when no attempt finished, as when a worker died
    mid-reply). Returns the id of the user message whose reply is being
    generated in the chat, if any.
    """
    asked = {m.pk for m in messages if m.role == Message.Role.USER}
    asked |= {m.reply_to_id for m in messages if m.role == Message.Role.ASSISTANT and m.reply_to_id}
    siblings: dict[int, list[int]] = defaultdict(list)
    if not has_variants:  # a reply shown is its message's only one
        for message in messages:
            if message.role == Message.Role.ASSISTANT and message.reply_to_id:
                siblings[message.reply_to_id].append(message.pk)
        asked = set() if newest else asked - siblings.keys()
    if asked:
        rows = Message.objects.filter(reply_to_id__in=asked).order_by("id").values_list("reply_to_id", "id")
        for reply_to_id, pk in rows:
            siblings[reply_to_id].append(pk)
    pending_since = timezone.now() - timedelta(seconds=settings.AI_CORE_STREAM_TIMEOUT + 60)
    entry = live.get(chat_id)
    running = entry["user_message"] if entry is not None and entry["state"] == "running" else None
    for message in messages:
        if message.role == Message.Role.ASSISTANT:
            ids = siblings.get(message.reply_to_id) or [message.pk]
            index = ids.index(message.pk) + 1 if message.pk in ids else len(ids)
            message.variant = {"index": index, "count": len(ids)}
        elif siblings.get(message.pk):
            message.reply_status = ReplyStatus.ANSWERED
        elif running == message.pk:
            message.reply_status = ReplyStatus.PENDING
        elif message.reply_error:
            message.reply_status = ReplyStatus.FAILED
        elif message.created_at > pending_since:
            message.reply_status = ReplyStatus.PENDING
        else:  # nothing is answering it and nothing will: a retry is needed
            message.reply_status, message.reply_error = ReplyStatus.FAILED, INTERRUPTED
    return running


def variants_of(*, chat: Chat, message_id: int) -> list[Message]:
    """Every reply answering the same user message as `message_id` (a reply,
    or the user message itself), oldest first, annotated."""
    message = Message.objects.filter(chat=chat, pk=message_id).first()
    if message is None:
        raise NotFound("No such message in this chat.")
    asked = message.pk if message.role == Message.Role.USER else message.reply_to_id
    replies = list(with_version_number(Message.objects.filter(chat=chat, reply_to_id=asked)).order_by("id"))
    for index, reply in enumerate(replies, start=1):
        reply.variant = {"index": index, "count": len(replies)}
    return replies


def history_for(user_message: Message) -> list[dict[str, str]]:
    """The last AI_HISTORY_MESSAGES current messages before `user_message`
    (one variant per reply, the one the student kept), oldest first.

    One LIMIT query on the (chat, id) index: its cost does not grow with
    the length of the chat.
    """
    limit = settings.AI_HISTORY_MESSAGES
    if limit <= 0:
        return []
    rows = _HISTORY.all(limit, chat_id=user_message.chat_id, before_id=user_message.id)
    return [{"role": role, "content": content} for role, content in reversed(rows)]


def _history(limit: int, chat_id: int, before_id: int) -> QuerySet[Message, tuple[str, str]]:
    messages = Message.objects.filter(chat_id=chat_id, id__lt=before_id, is_current=True)
    return messages.order_by("-id").values_list("role", "content")[:limit]


_HISTORY = Prepared(_history)
