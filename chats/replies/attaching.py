"""The flow's attachments stage: the uploads a send shows, checked to be the
student's own, kept on the user message, and handed to AI-Core (and to a
moderation service that looks at images) as signed links.

- `resolved`: a send's `attachments` ids to the student's uploads, as the
  copy of their public fields the message keeps (one query; none without
  attachments); another's or a missing id is a 400. With a `Reference`
  each (saving.user_message_save), a page of messages needs no join and an
  upload a message shows cannot be deleted.
- `for_ai_core`: what AI-Core is sent, each with a signed `url` made at
  the moment of the call (a regeneration or /reply/ gets fresh links).
"""

from collections.abc import Sequence
from typing import Any

from django.conf import settings

from accounts.models import User
from attachments import links
from attachments.models import Attachment
from attachments.selectors import attachments_for_send
from attachments.serializers import AttachmentSerializer

# What AI-Core is told of each attachment (the contract), besides its `url`.
AI_CORE_FIELDS = ("id", "kind", "content_type", "name", "size", "width", "height")


def resolved(user: User, ids: Sequence[int]) -> list[dict[str, Any]]:
    """What the message keeps: each upload as the API shows it."""
    if not ids:
        return []
    serializer = AttachmentSerializer()
    return [serializer.to_representation(found) for found in attachments_for_send(user=user, ids=ids)]


def for_ai_core(kept: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A message's attachments as AI-Core receives them, each with a signed link."""
    return [
        {**{key: item[key] for key in AI_CORE_FIELDS}, "url": links.signed_url(item["id"])} for item in kept
    ]


def image_links(kept: Sequence[dict[str, Any]]) -> list[str]:
    """Signed links to the images among them, for a moderation service that
    fetches images; none without BACKEND_URL (it could not reach them)."""
    if not settings.BACKEND_URL:
        return []
    return [links.signed_url(item["id"]) for item in kept if item["kind"] == Attachment.Kind.IMAGE]
