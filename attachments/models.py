"""An upload (a photo of the problem, a worksheet) and the messages that show it.

The file itself lives in Django's default storage under `file`; the row
describes what is stored (for an image, the re-encoded file). A message
keeps a copy of its attachments' public fields (`Message.attachments`) so
a page of messages needs no join; `Reference` is what makes an upload "in
use" (it cannot be deleted) and what erasure and the orphan purge follow.
"""

import uuid

from django.conf import settings
from django.db import models
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


def storage_name(instance: "Attachment", filename: str) -> str:
    """A random name: nothing of the user or of their file name in the storage."""
    extension = EXTENSIONS.get(instance.content_type, "")
    token = uuid.uuid4().hex
    return f"attachments/{token[:2]}/{token}{extension}"


EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
}


class Attachment(models.Model):
    class Kind(models.TextChoices):
        IMAGE = "image", _("Image")
        DOCUMENT = "document", _("Document")

    # Indexed by (user, size) below.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="attachments",
        db_index=False,
        verbose_name=_("user"),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    content_type = models.CharField(_("content type"), max_length=64, choices=[(t, t) for t in EXTENSIONS])
    name = models.CharField(
        _("name"), max_length=255, help_text=_("The file's name as the student gave it (shown only).")
    )
    file = models.FileField(_("file"), upload_to=storage_name, max_length=255)
    size = models.PositiveBigIntegerField(_("size"), help_text=_("Bytes stored."))
    width = models.PositiveIntegerField(_("width"), null=True, blank=True)
    height = models.PositiveIntegerField(_("height"), null=True, blank=True)
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        indexes = [
            # The storage quota's sum, and the orphan purge's scan by age.
            models.Index(fields=["user", "size"], name="attachment_user_size_idx"),
            models.Index(fields=["created_at"], name="attachment_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="document", width__isnull=True, height__isnull=True)
                | models.Q(kind="image", width__isnull=False, height__isnull=False),
                name="attachment_image_has_dimensions",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.content_type}, {filesizeformat(self.size)})"


class Reference(models.Model):
    """A message that shows an attachment (one upload may be shown by several)."""

    # Indexed by the unique (message, attachment) below.
    message = models.ForeignKey(
        "chats.Message",
        on_delete=models.CASCADE,
        related_name="attachment_references",
        db_index=False,
        verbose_name=_("message"),
    )
    # RESTRICT: an upload a message shows is never deleted on its own; with
    # the message (erasure, a deleted chat) it may go.
    attachment = models.ForeignKey(
        Attachment, on_delete=models.RESTRICT, related_name="references", verbose_name=_("attachment")
    )

    class Meta:
        verbose_name = _("reference")
        verbose_name_plural = _("references")
        constraints = [
            models.UniqueConstraint(fields=["message", "attachment"], name="reference_unique"),
        ]

    def __str__(self) -> str:
        return gettext("message %(message)s shows attachment %(attachment)s") % {
            "message": self.message_id,
            "attachment": self.attachment_id,
        }
