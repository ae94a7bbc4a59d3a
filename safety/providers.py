"""The checks (`MODERATION_PROVIDERS`): each says which categories it found
in a text, or fails (`CheckFailed`).

- `rules`: the staff's term lists (safety.rules), no network, cannot fail;
- `openai`: an OpenAI-compatible `POST {MODERATION_URL}/moderations`, with
  a total deadline and a circuit breaker as AI-Core's client has;
- `aicore`: the verdict AI-Core gave with its reply (`moderation:
  {"categories": [...]}`), for replies only.
"""

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import requests
from django.conf import settings

from aicore.circuit import CircuitBreaker
from aicore.transport import deadline, new_session

from . import rules
from .models import Category

logger = logging.getLogger(__name__)

RULES, OPENAI, AICORE = "rules", "openai", "aicore"
KNOWN = (RULES, OPENAI, AICORE)
CATEGORIES = frozenset(Category.values)
MAX_ANSWER_BYTES = 256 * 1024

# OpenAI's moderation categories, as this product's.
OPENAI_CATEGORIES = {
    "self-harm": Category.SELF_HARM,
    "self-harm/intent": Category.SELF_HARM,
    "self-harm/instructions": Category.SELF_HARM,
    "sexual": Category.SEXUAL,
    "sexual/minors": Category.SEXUAL,
    "violence": Category.VIOLENCE,
    "violence/graphic": Category.VIOLENCE,
    "hate": Category.HATE,
    "hate/threatening": Category.HATE,
    "harassment": Category.HARASSMENT,
    "harassment/threatening": Category.HARASSMENT,
    "illicit": Category.ILLICIT,
    "illicit/violent": Category.ILLICIT,
}


class CheckFailed(Exception):
    """A check could not give a verdict (it failed, timed out, or is paused)."""


@dataclass(frozen=True)
class Finding:
    provider: str
    categories: frozenset[str]
    scores: dict[str, Any] = field(default_factory=dict)  # evidence: matched terms or scores


def by_rules(text: str) -> Finding:
    found = rules.matcher().categories(text)
    return Finding(RULES, frozenset(found), {category: terms[:5] for category, terms in found.items()})


def by_aicore(metadata: dict[str, Any]) -> Finding:
    """AI-Core's own verdict on its reply; anything but a list of known category names is ignored."""
    verdict = metadata.get("moderation")
    named = verdict.get("categories") if isinstance(verdict, dict) else None
    found = (
        {name for name in named if isinstance(name, str)} & CATEGORIES if isinstance(named, list) else set()
    )
    return Finding(AICORE, frozenset(found))


class OpenAIModeration:
    """`POST {url}/moderations` (omni-moderation-latest and compatible servers)."""

    def __init__(
        self, *, url: str, api_key: str, model: str, timeout: float, breaker: CircuitBreaker
    ) -> None:
        self.url = url.rstrip("/") + "/moderations"
        self.api_key, self.model, self.timeout, self.breaker = api_key, model, timeout, breaker
        self.session = new_session(32, self.url)

    def check(self, text: str, images: list[str]) -> Finding:
        if not self.breaker.allow():
            raise CheckFailed("the moderation service is failing; checks are paused")
        try:
            finding = self._check(text, images)
        except BaseException:
            self.breaker.record_failure()
            raise
        self.breaker.record_success()
        return finding

    def _check(self, text: str, images: list[str]) -> Finding:
        parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
        parts += [{"type": "image_url", "image_url": {"url": url}} for url in images]
        body = {"model": self.model, "input": parts if images else text}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            with (
                deadline(self.timeout),
                self.session.post(
                    self.url, json=body, headers=headers, timeout=self.timeout, stream=True
                ) as response,
            ):
                if response.status_code != 200:
                    raise CheckFailed(f"the moderation service answered {response.status_code}")
                raw = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise CheckFailed(f"the moderation service did not answer ({type(exc).__name__})") from exc
        if len(raw) > MAX_ANSWER_BYTES:
            raise CheckFailed("the moderation service's answer is too large")
        try:
            result = json.loads(raw)["results"][0]
            flagged, scores = result["categories"], result.get("category_scores") or {}
            found = {
                OPENAI_CATEGORIES[name]
                for name, on in flagged.items()
                if on is True and name in OPENAI_CATEGORIES
            }
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise CheckFailed("the moderation service's answer is not a moderation result") from exc
        kept = {
            name: round(score, 4)
            for name, score in scores.items()
            if name in OPENAI_CATEGORIES and isinstance(score, int | float) and score >= 0.01
        }
        return Finding(OPENAI, frozenset(str(category) for category in found), kept)


_openai: dict[tuple[Any, ...], OpenAIModeration] = {}
_openai_lock = threading.Lock()


def openai() -> OpenAIModeration:
    """The process's client for the current settings (one session, one breaker)."""
    key = (
        settings.MODERATION_URL,
        settings.MODERATION_API_KEY,
        settings.MODERATION_MODEL,
        settings.MODERATION_TIMEOUT,
    )
    with _openai_lock:
        client = _openai.get(key)
        if client is None:
            client = _openai[key] = OpenAIModeration(
                url=settings.MODERATION_URL,
                api_key=settings.MODERATION_API_KEY,
                model=settings.MODERATION_MODEL,
                timeout=settings.MODERATION_TIMEOUT,
                breaker=CircuitBreaker(
                    settings.AI_CORE_CIRCUIT_FAILURES, settings.AI_CORE_CIRCUIT_RESET_SECONDS
                ),
            )
        return client


def external() -> bool:
    """Whether a configured check calls out over the network."""
    return OPENAI in settings.MODERATION_PROVIDERS
