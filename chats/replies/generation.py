"""The call: what the tutor is asked (its current version, the history,
the message) and what came back (`AIReply`).

No transaction may be open around `generate`: it hands the database
connection back before it waits on AI-Core.
"""

import logging
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aicore.client import get_client, request_body
from chats.models import Chat, Message
from chats.selectors import history_for
from tutor_platform.connections import release_db_connection
from tutor_platform.pseudonyms import student_key
from tutor_platform.serving import cpu_gate
from tutoring.experiments import Assigned
from tutoring.models import ExperimentArm, TutorVersion

from . import attaching, learning
from .errors import TutorUnavailable

if TYPE_CHECKING:
    from safety.services import Verdict

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AIReply:
    content: str
    metadata: dict[str, Any]
    tutor_version: TutorVersion | None
    experiment_arm: ExperimentArm | None
    tokens_used: int | None  # as AI-Core reported it, when it did
    latency_ms: int
    moderation: str = ""  # Message.Moderation: why the content is not AI-Core's
    verdict: "Verdict | None" = None  # the output checks' (moderation.outbound)


def counted(value: Any) -> int | None:
    """A count as AI-Core reports one (`tokens_used`), or None when it is not one."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31 else None


def generate(
    *, chat: Chat, user_message: Message, assigned: Assigned, request_id: str, stream: bool
) -> Generator[str, None, AIReply]:
    """Asks AI-Core for the reply to `user_message` with the `assigned`
    version (read once: what is sent is what the reply records); with
    `stream`, yields its pieces as AI-Core writes them. Raises `AICoreError`."""
    version = assigned.version
    if version is None:  # checks.tutor_available lets no such tutor through; kept for the type
        raise TutorUnavailable()
    learner = learning.learner_block(chat=chat, user_message=user_message, version=version)
    payload = request_body(
        student=student_key(chat.user_id),
        chat_id=chat.pk,
        tutor_id=chat.tutor_id,
        version_number=version.number,
        content=version,
        message=user_message.content,
        history=history_for(user_message),
        attachments=attaching.for_ai_core(user_message.attachments),
        learner=learner,
        experiment_arm=assigned.arm.label if assigned.arm else None,
    )
    release_db_connection()
    started = time.monotonic()
    with cpu_gate.set_aside():  # waiting needs no CPU: others may work meanwhile
        generation = yield from get_client().generate(payload, request_id=request_id, stream=stream)
    latency_ms = round((time.monotonic() - started) * 1000)
    logger.info("AI-Core replied for chat=%s in %dms", chat.pk, latency_ms)
    return AIReply(
        content=generation.content,
        metadata={
            **generation.extra,
            "model_id": version.model_id,
            "latency_ms": latency_ms,
            "learner": learner,  # what AI-Core was told, for the ML team (never shown to the student)
        },
        tutor_version=version,
        experiment_arm=assigned.arm,
        tokens_used=counted(generation.extra.get("tokens_used")),
        latency_ms=latency_ms,
    )
