"""The daily clean-up (run it from cron, see the README): records that can
no longer be used are deleted, so these tables stop growing forever.

- JWT refresh tokens past their expiry, with their blacklist entries: an
  expired token is refused on its signature alone.
- Idempotency-Key records older than 24 h: they can no longer be replayed.
- Uploads no message shows, ATTACHMENT_ORPHAN_HOURS after they were made
  (never sent, or their messages deleted in the admin): rows and files.

On several app servers only one runs it at a time (tutor_platform.jobs).
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from attachments.services import attachments_purge_orphans
from chats.models import IdempotencyKey
from chats.replies.idempotency import KEY_TTL
from tutor_platform.jobs import only_one


class Command(BaseCommand):
    help = (
        "Delete expired JWT refresh tokens (and their blacklist rows), Idempotency-Keys past 24 h, "
        "and uploads no message shows after ATTACHMENT_ORPHAN_HOURS."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with only_one("purge_expired") as mine:
            if not mine:
                self.stdout.write("Another app server is cleaning up now: nothing done here.")
                return
            self._purge()

    def _purge(self) -> None:
        now = timezone.now()
        _, tokens = OutstandingToken.objects.filter(expires_at__lte=now).delete()
        _, keys = IdempotencyKey.objects.filter(created_at__lt=now - KEY_TTL).delete()
        orphans = attachments_purge_orphans(
            created_before=now - timedelta(hours=settings.ATTACHMENT_ORPHAN_HOURS)
        )
        self.stdout.write(
            f"Deleted {tokens.get('token_blacklist.OutstandingToken', 0)} expired refresh token(s), "
            f"{tokens.get('token_blacklist.BlacklistedToken', 0)} blacklist entr(ies), "
            f"{keys.get('chats.IdempotencyKey', 0)} idempotency key(s), "
            f"{orphans} unused upload(s)."
        )
