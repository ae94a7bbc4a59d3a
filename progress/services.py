"""Study minutes per (user, tutor). Every change is one atomic UPDATE."""

from django.db.models import Expression, F, Value
from django.db.models.functions import Greatest, Least
from django.utils import timezone
from rest_framework.exceptions import NotFound

from accounts.models import User
from tutoring.selectors import tutor_list

from .models import Progress

MAX_MINUTES = 100_000_000


def progress_get(*, user: User, tutor_id: int) -> Progress:
    """The user's row for this tutor, created with 0 minutes when absent.

    Concurrent first requests create one row: the loser of the unique
    constraint reads the winner's row (get_or_create).
    """
    row = Progress.objects.select_related("tutor").filter(user=user, tutor_id=tutor_id).first()
    if row is not None:
        return row
    tutor = tutor_list().filter(pk=tutor_id).first()
    if tutor is None:
        raise NotFound("No such tutor.")
    row, _created = Progress.objects.get_or_create(user=user, tutor=tutor)
    return row


def _update(row: Progress, total: Expression) -> Progress:
    Progress.objects.filter(pk=row.pk).update(total_minutes=total, updated_at=timezone.now())
    row.refresh_from_db(fields=["total_minutes", "updated_at"])
    return row


def progress_set(*, user: User, tutor_id: int, total_minutes: int) -> Progress:
    return _update(progress_get(user=user, tutor_id=tutor_id), Value(total_minutes))


def progress_add(*, user: User, tutor_id: int, minutes: int) -> Progress:
    """Adds (or, when negative, subtracts) minutes; the total never goes below 0."""
    row = progress_get(user=user, tutor_id=tutor_id)
    return _update(row, Least(Greatest(F("total_minutes") + minutes, Value(0)), Value(MAX_MINUTES)))
