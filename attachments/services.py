"""Writes for attachments: an upload checked and stored, a deletion, and the
files that go when nothing shows them any more.

A file is written to storage before its row, and deleted from storage
only once the transaction that deleted its row has committed: a failure
in between leaves at worst a file without a row, never a row without a
file.
"""

import logging
import unicodedata
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import models, transaction
from django.db.models import Sum

from accounts.models import User

from . import inspection, scanning
from .exceptions import AttachmentInUse, StorageQuotaExceeded
from .models import Attachment, Reference

logger = logging.getLogger(__name__)

NAME_MAX_CHARS = 255


def clean_name(name: str | None) -> str:
    """The file's name to show: no folders, no control characters, at most 255 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    if len(base) > NAME_MAX_CHARS:
        _stem, dot, extension = base.rpartition(".")
        keep = extension if dot and len(extension) <= 10 else ""
        base = base[: NAME_MAX_CHARS - len(keep) - 1].rstrip() + ("." + keep if keep else "")
    return base or "attachment"


def _check_quota(user: User, size: int) -> None:
    used = Attachment.objects.filter(user=user).aggregate(used=Sum("size"))["used"] or 0
    if used + size > settings.ATTACHMENT_STORAGE_PER_USER:
        raise StorageQuotaExceeded(
            f"Your attachments use {used} of {settings.ATTACHMENT_STORAGE_PER_USER} bytes; "
            f"this one needs {size}. Delete some first."
        )


def attachment_upload(*, user: User, upload: "UploadedFile[bytes]") -> Attachment:
    """Checks the upload (type, image, virus scan, the user's storage
    quota), stores what `inspection` made of it, and records it."""
    inspected = inspection.inspect(upload)
    try:
        scanning.scan(upload)
        _check_quota(user, inspected.size)  # before the file is written; again under the lock
        attachment = Attachment(
            user=user,
            kind=inspected.kind,
            content_type=inspected.content_type,
            name=clean_name(upload.name),
            size=inspected.size,
            width=inspected.width,
            height=inspected.height,
            sha256=inspected.sha256,
        )
        attachment.file.save(attachment.name, File(inspected.content), save=False)
        stored = str(attachment.file.name)
    finally:
        if inspected.content is not upload:
            inspected.content.close()
    try:
        with transaction.atomic():
            # One upload of a user at a time past this point: the quota holds.
            User.objects.select_for_update().filter(pk=user.pk).values_list("pk").first()
            _check_quota(user, inspected.size)
            attachment.save()
    except BaseException:
        attachment.file.storage.delete(stored)
        raise
    return attachment


def attachment_delete(*, attachment: Attachment) -> None:
    """Deletes an upload and its file; 409 while a message shows it."""
    with transaction.atomic():
        locked = Attachment.objects.select_for_update().filter(pk=attachment.pk).first()
        if locked is None:
            return
        if Reference.objects.filter(attachment=locked).exists():
            raise AttachmentInUse()
        locked.delete()
        _delete_files_after_commit([str(locked.file.name)])


def attachments_release(*, ids: Iterable[int]) -> int:
    """Deletes those of `ids` that no message shows any more (a chat
    deleted or cleared): rows now, files once the caller's transaction
    commits. Returns how many went."""
    return _delete(Attachment.objects.filter(pk__in=set(ids), references__isnull=True))


def attachments_purge_orphans(*, created_before: datetime) -> int:
    """Uploads older than `created_before` that no message shows (never
    sent, or their messages deleted in the admin): rows and files."""
    return _delete(Attachment.objects.filter(created_at__lt=created_before, references__isnull=True))


def attachments_erase_owner(*, user: User) -> None:
    """Within erasure: the user's files go once it commits (their rows go
    with the account, by cascade)."""
    _delete_files_after_commit(Attachment.objects.filter(user=user).values_list("file", flat=True))


def _delete(attachments: models.QuerySet[Attachment]) -> int:
    with transaction.atomic():
        rows = list(attachments.values_list("pk", "file"))
        if not rows:
            return 0
        Attachment.objects.filter(pk__in=[pk for pk, _ in rows]).delete()
        _delete_files_after_commit([name for _, name in rows])
    return len(rows)


def _delete_files_after_commit(names: Iterable[str]) -> None:
    names = list(names)
    if not names:
        return

    def delete() -> None:
        for name in names:
            try:
                default_storage.delete(name)
            except Exception:  # the storage is down: the row is gone, the file stays
                logger.exception("Attachment file %s could not be deleted from storage", name)

    transaction.on_commit(delete)
