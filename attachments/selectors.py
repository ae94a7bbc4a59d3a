"""Reads of attachments, always scoped to their owner."""

from collections.abc import Sequence

from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError

from accounts.models import User

from .models import Attachment


def owned(*, user: User) -> QuerySet[Attachment]:
    return Attachment.objects.filter(user=user)


def attachments_for_send(*, user: User, ids: Sequence[int]) -> list[Attachment]:
    """The user's own uploads with these ids, in this order (one query; none
    for no ids). Another user's id, or one that does not exist, is a 400."""
    if not ids:
        return []
    found = {attachment.pk: attachment for attachment in owned(user=user).filter(pk__in=ids)}
    missing = [pk for pk in ids if pk not in found]
    if missing:
        raise ValidationError(
            {"attachments": [f"No attachment {pk} of yours: upload it first." for pk in missing]}
        )
    return [found[pk] for pk in ids]
