"""Erasure: an account and everything of it, in one transaction."""

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.models import User
from attachments.services import attachments_erase_owner
from chats.models import Chat
from feedback.services import feedback_erase_author
from progress.models import Progress
from safety.services import flags_forget_student
from tutor_platform.pseudonyms import student_key


def _admin_log_scrub(user: User) -> None:
    """The admin's history of the user's account, chats and progress keeps
    what was done and when (the changed fields' names), not who it was
    about: their `object_repr` (an email, a chat title taken from a
    message) becomes "(erased)"."""
    owned = {
        User: [user.pk],
        Chat: list(Chat.objects.filter(user=user).values_list("pk", flat=True)),
        Progress: list(Progress.objects.filter(user=user).values_list("pk", flat=True)),
    }
    for model, ids in owned.items():
        if ids:
            LogEntry.objects.filter(
                content_type=ContentType.objects.get_for_model(model), object_id__in=[str(pk) for pk in ids]
            ).update(object_repr="(erased)")


def user_erase(*, user: User) -> None:
    """Erases the account, in one transaction: chats and their messages,
    progress, preferences, idempotency keys and every token go; feedback
    the student allowed for training stays with no link to them, the rest
    goes (feedback.services.feedback_erase_author), and tutor ratings are
    recomputed, and the admin log is scrubbed of them. Their uploaded files
    are deleted from storage once it commits. Safety flags stay
    for their review, without the text and the student's key. The email
    can be registered again at once.

    The user's row is locked FOR UPDATE first: a refresh, a password change
    or a feedback write of this user waits, then finds no user.
    """
    with transaction.atomic():
        if User.objects.select_for_update().filter(pk=user.pk).values_list("pk").first() is None:
            return
        feedback_erase_author(user=user)
        flags_forget_student(student=student_key(user.pk))
        attachments_erase_owner(user=user)
        _admin_log_scrub(user)
        OutstandingToken.objects.filter(user=user).delete()  # and, by cascade, the blacklist
        user.delete()
