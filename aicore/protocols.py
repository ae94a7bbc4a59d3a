"""The two ways of asking a model the client speaks: AI-Core's own contract
(`aicore`) and the OpenAI chat-completions protocol (`openai`: vLLM, Ollama,
llama.cpp's server, LM Studio, OpenAI itself).

A protocol knows the paths, the request body, and how to read an answer,
JSON or server-sent events; the client (client.py) keeps everything else
the same for both: the session, the deadline, retries, the circuit
breaker, the answer-size cap, the idempotency header and the error mapping.
"""

from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from tutor_platform.validators import json_problem

from .exceptions import AICoreBadResponse, AICoreUnavailable

MAX_METADATA_DEPTH = 8


@dataclass(frozen=True)
class Generation:
    """The model's answer: the reply text and every other field it returned."""

    content: str
    extra: dict[str, Any] = field(default_factory=dict)


def parse_generation(body: Any) -> Generation:
    """Checks a decoded answer at the boundary: nothing unstorable gets past it."""
    if not isinstance(body, dict) or not isinstance(body.get("content"), str):
        raise AICoreBadResponse("AI-Core answered JSON without a string `content`.")
    problem = json_problem(body, max_depth=MAX_METADATA_DEPTH)
    if problem:
        raise AICoreBadResponse(f"AI-Core answered JSON that cannot be stored: {problem}.")
    extra = {key: value for key, value in body.items() if key != "content"}
    return Generation(content=body["content"], extra=extra)


def checked_delta(delta: Any) -> str:
    """A streamed piece of the reply, refused unless it is text the reply may hold."""
    if not isinstance(delta, str) or json_problem(delta, max_depth=0):
        raise AICoreBadResponse("AI-Core sent a delta that is not text it may send.")
    return delta


class Decode(Protocol):
    def __call__(self, raw: bytes) -> Any: ...


class WireProtocol(Protocol):
    name: str
    generate_path: str
    health_path: str
    # Answers that say the request was not taken and when to come back: retried.
    retry_statuses: frozenset[int]

    def request(self, data: dict[str, Any], stream: bool) -> dict[str, Any]: ...

    def answer(self, body: Any) -> Generation: ...

    def events(self, data: Iterator[bytes], decode: Decode) -> Generator[str, None, Generation]: ...


class AICoreProtocol:
    """The contract's `POST /api/v1/generate` (API_CONTRACT.md, AI-Core)."""

    name = "aicore"
    generate_path = "/api/v1/generate"
    health_path = "/api/v1/health"
    retry_statuses = frozenset({503})

    def request(self, data: dict[str, Any], stream: bool) -> dict[str, Any]:
        return {**data, "stream": True} if stream else data

    def answer(self, body: Any) -> Generation:
        return parse_generation(body)

    def events(self, data: Iterator[bytes], decode: Decode) -> Generator[str, None, Generation]:
        """`{"delta": "..."}`..., then `{"done": true, ...extra}`."""
        pieces: list[str] = []
        for raw in data:
            event = decode(raw)
            if not isinstance(event, dict):
                raise AICoreBadResponse("AI-Core sent an event that is not a JSON object.")
            if event.get("done") is True:
                extra = {key: value for key, value in event.items() if key != "done"}
                return parse_generation({**extra, "content": "".join(pieces)})
            pieces.append(checked_delta(event.get("delta")))
            yield pieces[-1]
        raise AICoreUnavailable("The AI tutor's answer broke off. Please retry.")


class OpenAIProtocol:
    """`POST {url}/chat/completions`, as OpenAI documents it and every
    compatible server implements it. The tutor's system prompt is the
    system message; image attachments are `image_url` parts of the
    student's message (the signed link), other files a line of text naming
    them; `tokens_used` is `usage.total_tokens`."""

    name = "openai"
    generate_path = "/chat/completions"
    health_path = "/models"
    retry_statuses = frozenset({429, 503})

    def request(self, data: dict[str, Any], stream: bool) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        parts = (data.get("system_prompt"), learner_text(data.get("learner")))
        system = "\n\n".join(part for part in parts if part)
        if system:
            messages.append({"role": "system", "content": system})
        messages += [{"role": item["role"], "content": item["content"]} for item in data.get("history") or []]
        messages.append({"role": "user", "content": self.user_content(data)})
        body: dict[str, Any] = {"model": data.get("model_id") or "", "messages": messages, "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        if data.get("student"):
            body["user"] = data["student"]  # the pseudonymous key: lets the provider tell students apart
        return body

    @staticmethod
    def user_content(data: dict[str, Any]) -> str | list[dict[str, Any]]:
        """The message as text, or as content parts when it carries images."""
        attachments = data.get("attachments") or []
        if not attachments:
            return str(data.get("message", ""))
        text = str(data.get("message", ""))
        files = [item for item in attachments if item.get("kind") != "image"]
        if files:
            text += "\n\n" + "\n".join(f"[{item.get('name', 'file')}]({item['url']})" for item in files)
        images = [item for item in attachments if item.get("kind") == "image"]
        return [{"type": "text", "text": text}] + [
            {"type": "image_url", "image_url": {"url": item["url"]}} for item in images
        ]

    def answer(self, body: Any) -> Generation:
        choice = _first_choice(body) or {}
        message = choice.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise AICoreBadResponse("The model answered without a text `choices[0].message.content`.")
        return parse_generation(
            {"content": message["content"], **_metadata(body, choice.get("finish_reason"), body.get("usage"))}
        )

    def events(self, data: Iterator[bytes], decode: Decode) -> Generator[str, None, Generation]:
        """`chat.completion.chunk` events with `choices[0].delta.content`, an
        optional last one with `usage` (`stream_options.include_usage`), then
        `[DONE]`. An event with an `error` object ends the reply as a failure."""
        pieces: list[str] = []
        finish_reason: Any = None
        usage: Any = None
        last: dict[str, Any] = {}
        for raw in data:
            if raw.strip() == b"[DONE]":
                return parse_generation({"content": "".join(pieces), **_metadata(last, finish_reason, usage)})
            event = decode(raw)
            if not isinstance(event, dict):
                raise AICoreBadResponse("The model sent an event that is not a JSON object.")
            if "error" in event:
                raise AICoreBadResponse("The model server reported an error mid-answer.")
            last, usage = event, event.get("usage") or usage
            choice = _first_choice(event)
            if choice is None:
                continue  # the usage chunk (no choices), or a keep-alive
            finish_reason = choice.get("finish_reason") or finish_reason
            delta = choice.get("delta") or {}
            content = delta.get("content") if isinstance(delta, dict) else None
            if content:
                pieces.append(checked_delta(content))
                yield pieces[-1]
        raise AICoreUnavailable("The AI tutor's answer broke off. Please retry.")


def learner_text(learner: Any) -> str:
    """The learner block as text, for a model that reads only messages: it
    follows the tutor's prompt in the system message."""
    if not isinstance(learner, dict):
        return ""
    profile = _object(learner.get("profile"))
    struggle = _object(learner.get("struggle"))
    lines = [
        "Learner context:",
        f"- teaching mode: {learner.get('teaching_mode')}",
        f"- the student asks for: {learner.get('intent')}",
        f"- struggling: {struggle.get('level', 'none')} (score {struggle.get('score', 0)})",
        f"- minutes studied with this tutor: {learner.get('progress_minutes', 0)}",
    ]
    known = {key: value for key, value in profile.items() if value not in (None, "")}
    if known:
        lines.append("- student: " + "; ".join(f"{key}: {value}" for key, value in known.items()))
    return "\n".join(lines)


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first_choice(body: Any) -> dict[str, Any] | None:
    if not isinstance(body, dict):
        raise AICoreBadResponse("The model answered something other than a JSON object.")
    choices = body.get("choices")
    if not choices:
        return None
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise AICoreBadResponse("The model answered `choices` that are not a list of objects.")
    return choices[0]


def _metadata(body: dict[str, Any], finish_reason: Any, usage: Any) -> dict[str, Any]:
    """What the reply keeps of an OpenAI answer besides its text."""
    metadata: dict[str, Any] = {}
    if isinstance(usage, dict) and "total_tokens" in usage:
        metadata["tokens_used"] = usage["total_tokens"]
    if isinstance(finish_reason, str):
        metadata["finish_reason"] = finish_reason
    if isinstance(body.get("model"), str):
        metadata["served_model"] = body["model"]
    return metadata


PROTOCOLS: dict[str, WireProtocol] = {"aicore": AICoreProtocol(), "openai": OpenAIProtocol()}
