"""The admin's try-it panel: what AI-Core answers a question with a
version's content (saved, or an editor's unsaved draft). No chat, message
or feedback is involved."""

from typing import Any

from aicore.client import drain, get_client, request_body
from tutor_platform.connections import release_db_connection


def preview_reply(
    *, tutor_id: int | None, version_number: int | None, content: Any, question: str, request_id: str
) -> str:
    """The reply's text. Raises `AICoreError`."""
    payload = request_body(
        student=None,  # staff trying a version: no student asks
        chat_id=None,
        tutor_id=tutor_id,
        version_number=version_number,
        content=content,
        message=question,
        history=[],
        attachments=[],
        # No student: an empty profile, a first question, nothing to struggle with.
        learner={
            "profile": {"grade": None, "level": None, "language": None, "goals": ""},
            "teaching_mode": content.teaching_mode,
            "intent": "question",
            "progress_minutes": 0,
            "struggle": {"level": "none", "score": 0.0, "evidence": []},
        },
    )
    release_db_connection()
    return drain(get_client().generate(payload, request_id=request_id, stream=False)).content
