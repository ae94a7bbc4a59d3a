"""Signed, expiring links to an attachment's content: what AI-Core, a
moderation service, the data export and the admin's thumbnails use, with
no token. `django.core.signing` with its own salt: a link names one
attachment, and a changed id, a changed signature or an old link (past
ATTACHMENT_URL_SECONDS) is refused."""

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "attachments.content"
PARAMETER = "signature"


def signed_path(attachment_id: int) -> str:
    signature = signing.TimestampSigner(salt=SALT).sign(str(attachment_id)).split(":", 1)[1]
    return f"{reverse('attachment-content', args=[attachment_id])}?{PARAMETER}={signature}"


def signed_url(attachment_id: int) -> str:
    """An absolute link when BACKEND_URL is set (what a service elsewhere
    needs), else the path."""
    return settings.BACKEND_URL + signed_path(attachment_id)


def verify(attachment_id: int, signature: str) -> bool:
    try:
        signing.TimestampSigner(salt=SALT).unsign(
            f"{attachment_id}:{signature}", max_age=settings.ATTACHMENT_URL_SECONDS
        )
    except signing.BadSignature:  # SignatureExpired is one
        return False
    return True
