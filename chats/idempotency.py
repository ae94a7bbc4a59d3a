"""`Idempotency-Key` on sends, stored in the database so it holds across
processes and restarts.

A key is scoped to its user. The first request claims it (a unique row);
a repeat within 24 h replays the stored response, a repeat with another body
gets 422, and a repeat while the first still runs gets 409.
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

from .models import IdempotencyKey

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
        abandoned = (
            existing.state == IdempotencyKey.State.IN_PROGRESS and existing.created_at < now - _stale_after()
        )
        if expired or abandoned:
            # Take it over, unless another request just did.
            taken = IdempotencyKey.objects.filter(pk=existing.pk, created_at=existing.created_at).update(
                fingerprint=digest,
                state=IdempotencyKey.State.IN_PROGRESS,
                response_status=None,
                response_body=None,
                response_headers={},
                created_at=now,
            )
            if taken:
                existing.refresh_from_db()
                return existing
            continue
        if existing.fingerprint != digest:
            raise KeyReused()
        if existing.state == IdempotencyKey.State.IN_PROGRESS:
            raise KeyInUse()
        return StoredResponse(existing.response_status, existing.response_body, existing.response_headers)
    raise KeyInUse()


def run_once(*, user: User, key: str, digest: str, call: Callable[[], StoredResponse]) -> StoredResponse:
    """Runs `call` once per (user, key); repeats get the stored response."""
    claimed = _claim(user=user, key=key, digest=digest)
    if isinstance(claimed, StoredResponse):
        return claimed
    try:
        response = call()
    except BaseException:
        # Nothing to replay (e.g. an unexpected error): let the client retry.
        IdempotencyKey.objects.filter(pk=claimed.pk).delete()
        raise
    IdempotencyKey.objects.filter(pk=claimed.pk).update(
        state=IdempotencyKey.State.DONE,
        response_status=response.status,
        response_body=response.body,
        response_headers=response.headers,
    )
    return response
