"""Deletes Idempotency-Key records older than 24 h (run daily, e.g. from cron)."""

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from chats.idempotency import KEY_TTL
from chats.models import IdempotencyKey


class Command(BaseCommand):
    help = "Delete Idempotency-Key records older than 24 hours; they can no longer be replayed."

    def handle(self, *args: Any, **options: Any) -> None:
        deleted, _ = IdempotencyKey.objects.filter(created_at__lt=timezone.now() - KEY_TTL).delete()
        self.stdout.write(f"Deleted {deleted} expired idempotency key(s).")
