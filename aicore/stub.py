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
            _learner_line(data.get("learner")),
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


def _learner_line(learner: Any) -> str:
    """How the stub was asked to teach (mode, intent, struggle): a developer
    sees the learner block arrive."""
    if not isinstance(learner, dict):
        return ""
    given = learner.get("struggle")
    struggle: dict[str, Any] = given if isinstance(given, dict) else {}
    return (
        f"Режим: {learner.get('teaching_mode')}; просьба: {learner.get('intent')}; "
        f"затруднения: {struggle.get('level', 'none')}."
    )


def _attachments_line(attachments: list[dict[str, Any]]) -> str:
    """What the stub got attached (names, kinds, sizes), so a developer sees them arrive."""
    if not attachments:
        return ""
    described = []
    for item in attachments:
        sized = item.get("kind") == "image" and "width" in item
        size = f", {item['width']}×{item['height']}" if sized else ""
        described.append(f"«{item.get('name', '?')}» ({item.get('kind', '?')}{size})")
    return f"Вложения ({len(attachments)}): " + "; ".join(described) + "."


def stream_pieces(answer: dict[str, Any]) -> list[str]:
    """The answer's `content` word by word (each word with the space after it),
    as a streaming AI-Core sends it: joined, they are the content again."""
    return re.findall(r"\s*\S+\s*", answer["content"]) or [answer["content"]]


# The same stub behind the OpenAI chat-completions protocol (`aicore_stub --protocol openai`).


def from_chat_completions(body: dict[str, Any]) -> dict[str, Any]:
    """A chat-completions request as the request `generate` answers: the last
    message is the student's (its text, its images), the user and assistant
    messages before it the history; the system message is never echoed."""
    messages = [item for item in body.get("messages") or [] if isinstance(item, dict)]
    content = messages[-1].get("content") if messages else ""
    given = content if isinstance(content, list) else [{"type": "text", "text": str(content or "")}]
    parts: list[dict[str, Any]] = [part for part in given if isinstance(part, dict)]
    images = [_link(part.get("image_url")) for part in parts if part.get("type") == "image_url"]
    return {
        "message": " ".join(str(part.get("text", "")) for part in parts if part.get("type") == "text"),
        "history": [item for item in messages[:-1] if item.get("role") in ("user", "assistant")],
        "model_id": str(body.get("model", "")),
        "attachments": [
            {"kind": "image", "name": url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "image"}
            for url in images
        ],
    }


def _link(image_url: Any) -> str:
    """An `image_url` part's link: `{"url": ...}`, or the bare string some clients send."""
    return str(image_url.get("url", "")) if isinstance(image_url, dict) else str(image_url or "")


def chat_completion(body: dict[str, Any]) -> dict[str, Any]:
    answer = generate(from_chat_completions(body))
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "model": str(body.get("model", "")),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer["content"]},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(answer),
    }


def chat_completion_chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The streamed answer: a chunk per word, one with the finish reason,
    and the usage chunk when `stream_options.include_usage` asks for it."""
    answer = generate(from_chat_completions(body))
    head: dict[str, Any] = {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "model": str(body.get("model", "")),
    }
    chunks: list[dict[str, Any]] = [
        {**head, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        for piece in stream_pieces(answer)
    ]
    chunks.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        chunks.append({**head, "choices": [], "usage": _usage(answer)})
    return chunks


def _usage(answer: dict[str, Any]) -> dict[str, int]:
    completion = len(answer["content"].split())
    return {
        "prompt_tokens": answer["tokens_used"] - completion,
        "completion_tokens": completion,
        "total_tokens": answer["tokens_used"],
    }
