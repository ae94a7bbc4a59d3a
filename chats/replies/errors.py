"""Why a reply was not given: every refusal, conflict and failure of the flow.

Refusals before anything is saved (`TutorUnavailable`, `NothingToReply`,
`NothingToRegenerate`, the Idempotency-Key's `KeyInUse` and `KeyReused`)
answer as DRF errors (re-attaching has its own, followers.TooManyStreams). Once the user
message is saved, whatever goes wrong is a `ReplyFailed` carrying it, and
`failure_body` is its one shape, in JSON, in a stream and in the live state.
"""

import logging
from typing import Any

from rest_framework import status
from rest_framework.exceptions import APIException

from aicore.exceptions import AICoreError
from chats.models import Message
from tutor_platform.exceptions import Conflict, DatabaseUnavailable, is_database_outage

logger = logging.getLogger(__name__)

# The code a user message's reply_error shows when its reply was never finished.
INTERRUPTED = "reply_interrupted"


class TutorUnavailable(Conflict):
    default_detail = "This tutor is no longer available. Start a chat with another tutor."
    default_code = "tutor_unavailable"


class NothingToReply(Conflict):
    default_detail = "The chat's last message is not a user message waiting for a reply."
    default_code = "nothing_to_reply"


class NothingToRegenerate(Conflict):
    default_detail = "The chat's last user message has no reply yet: ask for it with /reply/."
    default_code = "nothing_to_regenerate"


class ReplyDiscarded(Conflict):
    default_detail = "The chat was cleared or deleted while the tutor was answering."
    default_code = "reply_discarded"


class KeyInUse(Conflict):
    default_detail = "A request with this Idempotency-Key is still being processed."
    default_code = "idempotency_key_in_use"


class KeyReused(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was used with a different request."
    default_code = "idempotency_key_reused"


class ReplyInterrupted(APIException):
    status_code = 503
    default_detail = "The server writing the reply stopped before it was finished. Please retry."
    default_code = INTERRUPTED


class ServerError(APIException):
    default_detail = "Internal server error."
    default_code = "server_error"


class ReplyFailed(APIException):
    """No reply, for whatever reason; the user message is saved and can be
    answered later (/reply/, or a retry with the same Idempotency-Key)."""

    def __init__(self, error: APIException | AICoreError, user_message: Message) -> None:
        self.user_message = user_message
        self.status_code = error.status_code
        self.retry_after: int | None = getattr(error, "retry_after", None)
        self.code: str = error.code if isinstance(error, AICoreError) else str(error.default_code)
        super().__init__(detail=error.detail, code=self.code)

    @classmethod
    def after(cls, exc: Exception, user_message: Message) -> "ReplyFailed":
        if isinstance(exc, AICoreError | APIException):  # AI-Core's failure, or moderation_unavailable
            return cls(exc, user_message)
        if is_database_outage(exc):
            logger.warning("Database unavailable while replying: %s", type(exc).__name__)
            return cls(DatabaseUnavailable(), user_message)
        logger.error("Reply to message %s failed", user_message.pk, exc_info=exc)
        return cls(ServerError(), user_message)


def failure_body(failure: APIException, user_message: Any) -> dict[str, Any]:
    """What a client gets when no reply came: the error, the saved user
    message (its JSON, or its id where it is stored for later), and
    `retry_after` (seconds) when there is one."""
    body = {"detail": str(failure.detail), "code": failure.get_codes(), "user_message": user_message}
    retry_after = getattr(failure, "retry_after", None)
    if retry_after is not None:
        body["retry_after"] = retry_after
    return body
