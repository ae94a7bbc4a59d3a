"""Writes for feedback: submit, delete, the tutor's rating, ML processing."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import transaction
from django.db.models import Avg, Count
from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import NotFound

from accounts.models import User
from chats.models import Message
from tutoring.catalogue import catalogue_changed
from tutoring.models import Tutor

from .models import Feedback


def tutor_rating_recompute(*, tutor_id: int) -> None:
    """Sets the tutor's rating and count from its detailed feedback.

    Call inside a transaction that holds the tutor's row lock, after the
    change: the aggregate then sees every committed change and none can
    commit in between.
    """
    stats = Feedback.objects.filter(
        tutor_id=tutor_id, feedback_type=Feedback.FeedbackType.DETAILED, rating__isnull=False
    ).aggregate(mean=Avg("rating"), count=Count("id"))
    mean = Decimal(str(stats["mean"] or 0)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    Tutor.objects.filter(pk=tutor_id).update(rating=mean, total_feedbacks=stats["count"])
    catalogue_changed()  # the catalogue shows ratings


def _lock_tutor(tutor_id: int) -> None:
    # One lock per tutor orders every rating change for it, and every
    # (user, message, type) upsert, since a message has one tutor.
    Tutor.objects.select_for_update().filter(pk=tutor_id).order_by().values_list("pk", flat=True).first()


@dataclass(frozen=True)
class SubmitResult:
    feedback: Feedback
    created: bool


def feedback_submit(
    *, user: User, message_id: int, feedback_type: str, fields: dict[str, Any]
) -> SubmitResult:
    """Creates or updates the user's feedback of this type on an assistant message.

    `fields` are the ones the client sent (rating, texts, quick_reaction,
    allow_training): an update changes only those, and a real change puts
    the item back into the ML queue. Chat, tutor and the copies of the reply
    and its prompt come from the message, never from the client.
    """
    message = (
        Message.objects.select_related("chat", "reply_to").filter(pk=message_id, chat__user=user).first()
    )
    if message is None:
        raise NotFound("No such message.")
    if message.role != Message.Role.ASSISTANT:
        raise serializers.ValidationError(
            {"message": ["Only the tutor's (assistant) messages can be rated."]}
        )
    tutor_id = message.chat.tutor_id
    with transaction.atomic():
        _lock_tutor(tutor_id)  # orders every upsert of this (user, message, type)
        feedback = Feedback.objects.filter(user=user, message=message, feedback_type=feedback_type).first()
        created = feedback is None
        if created:
            feedback = Feedback.objects.create(
                user=user,
                message=message,
                feedback_type=feedback_type,
                chat_id=message.chat_id,
                tutor_id=tutor_id,
                reply_content=message.content,
                reply_metadata=message.metadata,
                prompt_content=message.reply_to.content if message.reply_to else "",
                **fields,
            )
        else:
            changed = [name for name, value in fields.items() if getattr(feedback, name) != value]
            if changed:
                for name in changed:
                    setattr(feedback, name, fields[name])
                feedback.processed, feedback.processed_at, feedback.processed_by = False, None, None
                feedback.save(
                    update_fields=[*changed, "processed", "processed_at", "processed_by", "updated_at"]
                )
        if feedback_type == Feedback.FeedbackType.DETAILED:
            tutor_rating_recompute(tutor_id=tutor_id)
    return SubmitResult(feedback=feedback, created=created)


def feedback_delete(*, feedback: Feedback) -> None:
    with transaction.atomic():
        _lock_tutor(feedback.tutor_id)
        feedback.delete()
        if feedback.feedback_type == Feedback.FeedbackType.DETAILED:
            tutor_rating_recompute(tutor_id=feedback.tutor_id)


@dataclass(frozen=True)
class MarkResult:
    updated: int
    not_found: list[int]


def feedback_mark_processed(*, ids: list[int], by: User, processed: bool = True) -> MarkResult:
    """Marks feedback (un)processed. Idempotent: rows already in that state are left alone.

    Rows are locked in id order, so overlapping batches from two ML jobs
    wait for each other instead of deadlocking.
    """
    wanted = set(ids)
    with transaction.atomic():
        states = dict(
            Feedback.objects.select_for_update()
            .filter(id__in=wanted)
            .order_by("id")
            .values_list("id", "processed")
        )
        to_change = [pk for pk, state in states.items() if state != processed]
        updated = Feedback.objects.filter(id__in=to_change).update(
            processed=processed,
            processed_at=timezone.now() if processed else None,
            processed_by=by if processed else None,
        )
    return MarkResult(updated=updated, not_found=sorted(wanted - states.keys()))
