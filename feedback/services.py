"""Writes for feedback: submit, delete, the tutor's rating, ML processing."""

from copy import copy
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Avg, Count, QuerySet
from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import NotFound

from accounts.models import User
from attachments.serializers import described
from chats.models import Message
from chats.selectors import history_for
from tutoring.catalogue import catalogue_changed
from tutoring.models import Tutor
from usage import services as usage

from .models import ConsentRevocation, Feedback
from .selectors import two_places


def tutor_rating_recompute(*, tutor_id: int) -> None:
    """Sets the tutor's rating and count from its detailed feedback.

    Call inside a transaction that holds the tutor's row lock, after the
    change: the aggregate then sees every committed change and none can
    commit in between.
    """
    stats = Feedback.objects.filter(
        tutor_id=tutor_id, feedback_type=Feedback.FeedbackType.DETAILED, rating__isnull=False
    ).aggregate(mean=Avg("rating"), count=Count("id"))
    rating = two_places(stats["mean"] or 0)
    Tutor.objects.filter(pk=tutor_id).update(rating=rating, total_feedbacks=stats["count"])
    usage.record_rating(tutor_id=tutor_id, rating=rating if stats["count"] else None)  # the dashboard's trend
    catalogue_changed()  # the catalogue shows ratings


def _lock_tutor(tutor_id: int) -> None:
    # One lock per tutor orders every rating change for it, and every
    # (user, message, type) upsert, since a message has one tutor.
    Tutor.objects.select_for_update().filter(pk=tutor_id).order_by().values_list("pk", flat=True).first()


def _lock_author(user: User) -> bool:
    # Waits for an erasure of this user in progress (it holds FOR UPDATE),
    # and after one finds no row. Always taken before a tutor's lock.
    return (
        User.objects.select_for_update(no_key=True).filter(pk=user.pk).values_list("pk").first() is not None
    )


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
        if not _lock_author(user):
            raise NotFound("No such message.")  # erased meanwhile
        _lock_tutor(tutor_id)  # orders every upsert of this (user, message, type)
        existing = Feedback.objects.filter(user=user, message=message, feedback_type=feedback_type).first()
        created, before = existing is None, copy(existing)  # as it stood, for the arm's statistics
        if existing is None:
            feedback = Feedback.objects.create(
                user=user,
                message=message,
                feedback_type=feedback_type,
                chat_id=message.chat_id,
                tutor_id=tutor_id,
                tutor_version_id=message.tutor_version_id,
                experiment_arm_id=message.experiment_arm_id,
                reply_content=message.content,
                reply_metadata=message.metadata,
                prompt_content=message.reply_to.content if message.reply_to else "",
                prompt_attachments=described(message.reply_to.attachments) if message.reply_to else [],
                prompt_message_id=message.reply_to_id,
                history=history_for(message.reply_to) if message.reply_to else [],
                **fields,
            )
        else:
            feedback = existing
            changed = [name for name, value in fields.items() if getattr(feedback, name) != value]
            if "allow_training" in changed and not fields["allow_training"]:  # consent was on until now
                _log_revocations(Feedback.objects.filter(pk=feedback.pk), ConsentRevocation.Reason.REVOKED)
            if changed:
                for name in changed:
                    setattr(feedback, name, fields[name])
                feedback.processed, feedback.processed_at, feedback.processed_by = False, None, None
                feedback.save(
                    update_fields=[*changed, "processed", "processed_at", "processed_by", "updated_at"]
                )
        if feedback.experiment_arm_id is not None:  # the arm's statistics (usage.ArmStudentUsage)
            usage.record_arm_feedback(
                arm_id=feedback.experiment_arm_id, user_id=user.pk, before=before, after=feedback
            )
        if feedback_type == Feedback.FeedbackType.DETAILED:
            tutor_rating_recompute(tutor_id=tutor_id)
    return SubmitResult(feedback=feedback, created=created)


def _log_revocations(feedback: QuerySet[Feedback], reason: str) -> None:
    """Logs, for the ML team, the items among `feedback` they processed and
    may no longer use (callers pass the consented ones, or for an erasure all
    of them). Call before the change, in its transaction."""
    revoked_at = timezone.now()
    ids = feedback.filter(processed=True).values_list("id", flat=True)
    ConsentRevocation.objects.bulk_create(
        [ConsentRevocation(feedback_id=pk, revoked_at=revoked_at, reason=reason) for pk in ids]
    )


def feedback_revoke_consent(*, user: User) -> int:
    """Withdraws the user's consent: the profile's standing consent and every
    feedback's `allow_training`. Returns how many feedback items changed."""
    with transaction.atomic():
        _lock_author(user)
        now = timezone.now()
        User.objects.filter(pk=user.pk).update(allow_training=False, consent_revoked_at=now, updated_at=now)
        consented = Feedback.objects.filter(user=user, allow_training=True)
        _log_revocations(consented, ConsentRevocation.Reason.REVOKED)
        updated = consented.update(allow_training=False, updated_at=timezone.now())
    user.allow_training, user.consent_revoked_at = False, now
    return updated


def feedback_erase_author(*, user: User) -> None:
    """The feedback part of erasing a user: consented feedback stays for
    training with only what the consent covered, the rated exchange (the
    reply and the message that prompted it): every link to the person
    (user, chat, message) is cut and the earlier conversation (`history`,
    messages the student never rated) is dropped. The rest is deleted;
    tutor ratings are recomputed.

    What the ML team is told is what remains: deleted items they processed
    are logged `erased`; a kept item they processed with its history is
    logged `erased` too (purge that copy) and offered again, unprocessed,
    as it now stands. A kept item without history is unchanged.

    Call inside the erasure's transaction, holding the user's row lock
    (FOR UPDATE: every feedback write of the user waits for it, so nothing
    slips in between), before the user row is deleted. Tutors are locked
    after it, in id order, as every other feedback write does.
    """
    mine = Feedback.objects.filter(user=user)
    dropped = mine.filter(allow_training=False)
    trimmed = mine.filter(allow_training=True).exclude(history=[])
    _log_revocations(dropped, ConsentRevocation.Reason.ERASED)
    _log_revocations(trimmed, ConsentRevocation.Reason.ERASED)
    kinds = set(mine.values_list("tutor_id", "feedback_type"))
    for tutor_id in sorted({tutor_id for tutor_id, _kind in kinds}):
        _lock_tutor(tutor_id)
    dropped.delete()
    now = timezone.now()
    trimmed.update(history=[], processed=False, processed_at=None, processed_by=None, updated_at=now)
    mine.update(user=None, chat=None, message=None, updated_at=now)
    for tutor_id in sorted({tutor_id for tutor_id, kind in kinds if kind == Feedback.FeedbackType.DETAILED}):
        tutor_rating_recompute(tutor_id=tutor_id)


def feedback_delete(*, feedback: Feedback) -> None:
    with transaction.atomic():
        _lock_tutor(feedback.tutor_id)
        _log_revocations(
            Feedback.objects.filter(pk=feedback.pk, allow_training=True), ConsentRevocation.Reason.REVOKED
        )
        feedback.delete()
        if feedback.experiment_arm_id is not None and feedback.user_id is not None:
            usage.record_arm_feedback(
                arm_id=feedback.experiment_arm_id, user_id=feedback.user_id, before=feedback, after=None
            )
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
