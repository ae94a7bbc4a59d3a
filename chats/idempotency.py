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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException

from accounts.models import User
from tutor_platform.exceptions import Conflict

from .models import IdempotencyKey, Message

KEY_MAX_LENGTH = 255
KEY_TTL = timedelta(hours=24)


class KeyInUse(Conflict):
    default_detail = "A request with this Idempotency-Key is still being processed."
    default_code = "idempotency_key_in_use"


class KeyReused(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was used with a different request."
    default_code = "idempotency_key_reused"


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
        elif existing.state == IdempotencyKey.State.DONE:
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


Send = Callable[[Message | None, Callable[[Message], None]], StoredResponse]


def run_once(*, user: User, key: str, digest: str, call: Send) -> StoredResponse:
    """Runs `call` once per (user, key); repeats get the stored success.

    `call(user_message, bind)`: `user_message` is the message an earlier
    attempt saved (None on the first), and `bind` must be called with the
    user message as soon as it is saved.
    """
    claimed = _claim(user=user, key=key, digest=digest)
    if isinstance(claimed, StoredResponse):
        return claimed
    rows = IdempotencyKey.objects.filter(pk=claimed.pk)
    saved = claimed.user_message

    def bind(user_message: Message) -> None:
        nonlocal saved
        saved = user_message
        rows.update(user_message=user_message)

    def give_up() -> None:
        if saved is not None:
            rows.update(state=IdempotencyKey.State.FAILED)  # a retry answers `saved`
        else:
            rows.delete()  # nothing was saved: the key is free again

    try:
        response = call(claimed.user_message, bind)
    except BaseException:
        give_up()
        raise
    if 200 <= response.status < 300:
        rows.update(
            state=IdempotencyKey.State.DONE,
            response_status=response.status,
            response_body=response.body,
            response_headers=response.headers,
        )
    else:
        give_up()
    return response
