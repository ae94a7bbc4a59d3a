"""Writes for chats and messages. Asking the tutor (sends, replies,
regenerations) is chats.replies."""

from django.db import transaction
from rest_framework.exceptions import NotFound, ValidationError

from accounts.models import User
from attachments.models import Reference
from attachments.services import attachments_release
from tutoring.models import Tutor

from .models import Chat, Message


def chat_create(*, user: User, tutor: Tutor, title: str = "") -> Chat:
    return Chat.objects.create(user=user, tutor=tutor, title=title.strip())


def chat_rename(*, chat: Chat, title: str) -> Chat:
    chat.title = title.strip()
    chat.save(update_fields=["title"])
    return chat


def _lock_chat(chat: Chat) -> None:
    """Locks the chat's row (only that row).

    Clearing, deleting, selecting a variant and saving a reply (whose
    UPDATE of the row in chats.replies.saving takes it) all take this lock
    first, so they run one after the other and always lock rows in the
    same order. Call inside a transaction.
    """
    Chat.objects.select_for_update(of=("self",)).filter(pk=chat.pk).order_by().values_list("pk").first()


def _shown_uploads(chat: Chat) -> list[int]:
    return list(Reference.objects.filter(message__chat=chat).values_list("attachment_id", flat=True))


def chat_delete(*, chat: Chat) -> None:
    """Deletes the chat and its messages; feedback on them is kept. Uploads
    its messages showed and no other message does go too, files included."""
    with transaction.atomic():
        _lock_chat(chat)
        shown = _shown_uploads(chat)
        chat.delete()
        attachments_release(ids=shown)


def chat_clear_history(*, chat: Chat) -> None:
    """Removes every message (and the uploads only they showed, as
    chat_delete does); the chat stays. Feedback on them is kept."""
    with transaction.atomic():
        _lock_chat(chat)
        shown = _shown_uploads(chat)
        Message.objects.filter(chat=chat).delete()
        Chat.objects.filter(pk=chat.pk).update(last_message_at=None)
        attachments_release(ids=shown)
    chat.last_message_at = None


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
