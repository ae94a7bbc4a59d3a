"""A stand-in for AI-Core: same request and answer shape, no model.

Deterministic: the same request gives the same answer, and the answer shows
what it received (the message, the history length, the tutor's model), so a
developer can see the whole pipeline working without the ML team's service.
It never repeats the system prompt: that is internal, and a stub answering
students by mistake must not publish it.
"""

import re
from typing import Any

MESSAGE_ECHO_CHARS = 200


def generate(data: dict[str, Any]) -> dict[str, Any]:
    message = str(data.get("message", ""))
    history = data.get("history") or []
    model_id = str(data.get("model_id", ""))
    echo = message[:MESSAGE_ECHO_CHARS] + ("…" if len(message) > MESSAGE_ECHO_CHARS else "")
    attachments = [item for item in data.get("attachments") or [] if isinstance(item, dict)]
    content = "\n".join(
        line
        for line in (
            f"[stub · {model_id}]",
            f"Вы написали: «{echo}».",
            f"Я вижу {len(history)} предыдущих сообщений в этом диалоге.",
            _attachments_line(attachments),
            "Давайте разберём это по шагам: сначала сформулируем, что известно, "
            "затем — что нужно найти, и только потом выберем метод решения.",
        )
        if line
    )
    tokens_used = (
        len(message.split())
        + len(content.split())
        + sum(len(str(item.get("content", "")).split()) for item in history if isinstance(item, dict))
    )
    return {
        "content": content,
        "tokens_used": tokens_used,
        "processing_time": round(0.001 * tokens_used, 3),
        "stub": True,
    }


def _attachments_line(attachments: list[dict[str, Any]]) -> str:
    """What the stub got attached (names, kinds, sizes), so a developer sees them arrive."""
    if not attachments:
        return ""
    described = []
    for item in attachments:
        size = f", {item.get('width')}×{item.get('height')}" if item.get("kind") == "image" else ""
        described.append(f"«{item.get('name', '?')}» ({item.get('kind', '?')}{size})")
    return f"Вложения ({len(attachments)}): " + "; ".join(described) + "."


def stream_pieces(answer: dict[str, Any]) -> list[str]:
    """The answer's `content` word by word (each word with the space after it),
    as a streaming AI-Core sends it: joined, they are the content again."""
    return re.findall(r"\s*\S+\s*", answer["content"]) or [answer["content"]]
