"""What each category does (staff's policies), read once per
POLICIES_TTL_SECONDS in a process; the contract's defaults until staff
change them."""

import re
import threading
import time
from dataclasses import dataclass

from .models import Action, Category

POLICIES_TTL_SECONDS = 10.0


@dataclass(frozen=True)
class Rule:
    action: str
    severity: int
    safe_text: dict[str, str]  # language -> text


# The contract's defaults, for a category staff have no policy for.
_STOP = {
    "ru": "Я не могу продолжать этот разговор. Давай вернёмся к учёбе: с какой задачей тебе помочь?",
    "en": "I can't continue with that. Let's get back to your studies: which problem can I help you with?",
}
DEFAULTS = {
    Category.SELF_HARM: Rule(Action.RESPOND, 100, _STOP),
    Category.SEXUAL: Rule(Action.BLOCK, 90, _STOP),
    Category.HATE: Rule(Action.BLOCK, 70, _STOP),
    Category.VIOLENCE: Rule(Action.FLAG, 60, _STOP),
    Category.ILLICIT: Rule(Action.BLOCK, 50, _STOP),
    Category.HARASSMENT: Rule(Action.FLAG, 40, _STOP),
    Category.PROFANITY: Rule(Action.FLAG, 10, _STOP),
}

_lock = threading.Lock()
_current: tuple[float, dict[str, Rule]] | None = None


def rules() -> dict[str, Rule]:
    global _current
    current = _current
    if current is not None and time.monotonic() - current[0] < POLICIES_TTL_SECONDS:
        return current[1]
    with _lock:
        from .models import Policy

        loaded = dict(DEFAULTS)
        for policy in Policy.objects.all():
            loaded[policy.category] = Rule(
                policy.action, policy.severity, {"ru": policy.safe_text_ru, "en": policy.safe_text_en}
            )
        _current = (time.monotonic(), loaded)
        return loaded


def forget() -> None:
    global _current
    _current = None


_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
_LATIN = re.compile(r"[a-z]", re.IGNORECASE)


def language_of(text: str) -> str:
    """`ru` or `en`: the script most of the letters of `text` are in."""
    sample = text[:2000]
    return "ru" if len(_CYRILLIC.findall(sample)) >= len(_LATIN.findall(sample)) else "en"
