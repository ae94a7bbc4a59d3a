"""`Idempotency-Key` on sends, stored in the database so it holds across
processes and restarts.

A key is scoped to its user. The first request claims it (a unique row);
a repeat within 24 h replays the stored response, a repeat with another body
gets 422, and a repeat while the first still runs gets 409.

Only a success is stored as the key's outcome. Once the send has saved its
user message the key is bound to it, so a repeat after any failure (a 503
from AI-Core, a 500, a process that died) answers that message, as /reply/
would, and never saves a second copy.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from chats.models import IdempotencyKey, Message

from .errors import KeyInUse, KeyReused

KEY_MAX_LENGTH = 255
KEY_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def fingerprint(**parts: Any) -> str:
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _stale_after() -> timedelta:
    """How long an unfinished claim may live before we assume its process died."""
    one_call = settings.AI_CORE_CONNECT_TIMEOUT + settings.AI_CORE_TIMEOUT
    return timedelta(seconds=one_call * (settings.AI_CORE_MAX_RETRIES + 1) + 60)


def _claim(*, user: User, key: str, digest: str) -> IdempotencyKey | StoredResponse:
    for _attempt in range(3):
        now = timezone.now()
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(user=user, key=key, fingerprint=digest, created_at=now)
        except IntegrityError:
            pass
        existing = IdempotencyKey.objects.filter(user=user, key=key).first()
        if existing is None:
            continue  # released in between: try to claim again
        expired = existing.created_at < now - KEY_TTL
        if expired:
            # A new request under an old key: start afresh.
            taken = _take_over(existing, now, fingerprint=digest, user_message=None)
        elif existing.fingerprint != digest:
            raise KeyReused()
        elif existing.state == IdempotencyKey.State.DONE and existing.response_status is not None:
            return StoredResponse(existing.response_status, existing.response_body, existing.response_headers)
        elif existing.state == IdempotencyKey.State.FAILED or existing.created_at < now - _stale_after():
            # Failed, or its process died: this request finishes the job.
            taken = _take_over(existing, now)
        else:
            raise KeyInUse()
        if taken:
            return IdempotencyKey.objects.select_related("user_message").get(pk=existing.pk)
    raise KeyInUse()


def _take_over(existing: IdempotencyKey, now: Any, **changes: Any) -> bool:
    """Claims an existing row, unless another request just did."""
    return bool(
        IdempotencyKey.objects.filter(
            pk=existing.pk, state=existing.state, created_at=existing.created_at
        ).update(
            state=IdempotencyKey.State.IN_PROGRESS,
            response_status=None,
            response_body=None,
            response_headers={},
            created_at=now,
            **changes,
        )
    )


class Claim:
    """A claimed key: bind it to the user message once saved, then finish it."""

    def __init__(self, record: IdempotencyKey | None) -> None:
        self._rows = IdempotencyKey.objects.filter(pk=record.pk) if record is not None else None
        self.user_message: Message | None = record.user_message if record is not None else None

    def bind(self, user_message: Message) -> None:
        if self.user_message is not None and self.user_message.pk == user_message.pk:
            return  # a retry answering the message the key is bound to already
        self.user_message = user_message
        if self._rows is not None:
            self._rows.update(user_message=user_message)

    def finish(self, response: StoredResponse | None) -> None:
        """Stores a success for replay; otherwise a retry answers the bound
        message, or, with none saved, the key is free again."""
        if self._rows is None:
            return
        if response is not None and 200 <= response.status < 300:
            self._rows.update(
                state=IdempotencyKey.State.DONE,
                response_status=response.status,
                response_body=response.body,
                response_headers=response.headers,
            )
        elif self.user_message is not None:
            self._rows.update(state=IdempotencyKey.State.FAILED)
        else:
            self._rows.delete()


def claim(*, user: User, key: str | None, digest: str) -> Claim | StoredResponse:
    """The stored success for a repeated key, or a claim to do the work.

    Without a key every request is new (a claim that records nothing).
    """
    if key is None:
        return Claim(None)
    claimed = _claim(user=user, key=key, digest=digest)
    if isinstance(claimed, StoredResponse):
        return claimed
    return Claim(claimed)
