"""The safety stage: a text checked by every configured check (`screen`),
what was found kept for review and the right adult told (`record`), and a
streamed reply checked piece by piece before it is relayed (`StreamCheck`).

Used by the reply flow (chats.replies.moderation) on the way in and on the
way out; knows nothing of chats beyond the ids it records.
"""

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException

from accounts.models import User
from tutor_platform.pseudonyms import student_key

from . import policies, providers, rules
from .models import Action, Category, Flag, Stage

logger = logging.getLogger(__name__)

STRICTNESS: dict[str, int] = {Action.ALLOW: 0, Action.FLAG: 1, Action.RESPOND: 2, Action.BLOCK: 3}
ALERTED = frozenset({Category.SELF_HARM, Category.SEXUAL})


class ModerationUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Messages cannot be checked right now. Please retry shortly."
    default_code = "moderation_unavailable"
    retry_after = 5


class ContentBlocked(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "This message can't be sent: it breaks the rules of a school chat."
    default_code = "content_blocked"

    def __init__(self, categories: tuple[str, ...]) -> None:
        super().__init__()
        self.extra = {"categories": list(categories)}


@dataclass(frozen=True)
class Verdict:
    """What the checks found in one text, and what it means for the student."""

    stage: str
    text: str
    categories: tuple[str, ...] = ()  # most severe first; `allow`ed ones left out
    action: str = Action.ALLOW  # the strictest of their actions
    providers: tuple[str, ...] = ()  # the checks that found something
    scores: dict[str, Any] = field(default_factory=dict)
    failed: tuple[str, ...] = ()  # checks that gave no verdict

    @property
    def withholds(self) -> bool:
        """A reply with this verdict is replaced; a message with it gets no AI answer."""
        return self.action in (Action.BLOCK, Action.RESPOND)

    @property
    def worth_recording(self) -> bool:
        return bool(self.categories) or bool(self.failed)

    def safe_text(self, language: str) -> str:
        """The text of the most severe category whose action won."""
        known = policies.rules()
        for category in self.categories:
            rule = known[category]
            if rule.action == self.action:
                return rule.safe_text.get(language) or rule.safe_text["en"]
        return policies.DEFAULTS[Category.SEXUAL].safe_text[language]


def screen(
    text: str,
    *,
    stage: str,
    metadata: dict[str, Any] | None = None,
    only: tuple[str, ...] | None = None,
    images: list[str] | None = None,
) -> Verdict:
    """Runs the configured checks (or `only` those) on `text`, and on
    `images` (links) the checks that look at images (`openai`)."""
    findings, failed = [], []
    for name in settings.MODERATION_PROVIDERS if only is None else only:
        if name == providers.RULES:
            findings.append(providers.by_rules(text))
        elif name == providers.OPENAI:
            try:
                findings.append(providers.openai().check(text, images or []))
            except providers.CheckFailed as exc:
                logger.warning("Moderation check %s failed on %s: %s", name, stage, exc)
                failed.append(name)
        elif name == providers.AICORE and metadata is not None:
            findings.append(providers.by_aicore(metadata))
    return judge(text, stage=stage, findings=findings, failed=tuple(failed))


def judge(
    text: str, *, stage: str, findings: list[providers.Finding], failed: tuple[str, ...] = ()
) -> Verdict:
    known = policies.rules()
    found = {c for finding in findings for c in finding.categories if known[c].action != Action.ALLOW}
    categories = tuple(sorted(found, key=lambda c: (-known[c].severity, c)))
    action = max((known[c].action for c in categories), key=STRICTNESS.__getitem__, default=Action.ALLOW)
    return Verdict(
        stage=stage,
        text=text,
        categories=categories,
        action=action,
        providers=tuple(f.provider for f in findings if f.categories & found),
        scores={f.provider: f.scores for f in findings if f.scores and f.categories & found},
        failed=failed,
    )


class Exchange(Protocol):
    """The chat a checked text belongs to (chats.models.Chat)."""

    pk: int
    user_id: int
    tutor_id: int


def record(verdict: Verdict, *, chat: Exchange, message_id: int | None, exchange: int | None) -> Flag | None:
    """Keeps what was found for review, and tells SAFETY_ALERT_EMAILS about
    a `respond` or `block` in self_harm or sexual. With
    MODERATION_ON_ERROR=block, a verdict a check failed to give ends here:
    ModerationUnavailable (after it was recorded)."""
    if not verdict.worth_recording:
        return None
    unchecked = bool(verdict.failed)
    known = policies.rules()
    top = verdict.categories[0] if verdict.categories else ""
    refused = unchecked and settings.MODERATION_ON_ERROR == "block"
    flag = Flag.objects.create(
        stage=verdict.stage,
        categories=list(verdict.categories),
        category=top,
        severity=known[top].severity if top else 0,
        action=Action.BLOCK if refused else verdict.action if verdict.categories else Action.FLAG,
        providers=",".join(verdict.providers + tuple(f"{name} (failed)" for name in verdict.failed))[:100],
        scores=verdict.scores,
        unchecked=unchecked,
        text=verdict.text,
        student=student_key(chat.user_id) or "",
        tutor_id=chat.tutor_id,
        chat_id=chat.pk,
        message_id=message_id,
        exchange=exchange,
    )
    if verdict.action in (Action.RESPOND, Action.BLOCK) and ALERTED & set(verdict.categories):
        alert(flag)
    if refused:
        raise ModerationUnavailable()
    return flag


def alert(flag: Flag) -> None:
    """An email to SAFETY_ALERT_EMAILS now; the student's identity is in
    neither the subject nor the body (their pseudonymous key is)."""
    if not settings.SAFETY_ALERT_EMAILS:
        logger.warning("Safety flag %s needs attention, but SAFETY_ALERT_EMAILS is empty", flag.pk)
        return
    what, stage = flag.get_action_display().lower(), flag.get_stage_display().lower()
    subject = f"[Safety] {flag.get_category_display()}: {what} ({stage})"
    body = "\n".join(
        [
            f"A {flag.get_stage_display().lower()} was found to be {flag.get_category_display().lower()} "
            f"and the platform answered with: {flag.get_action_display().lower()}.",
            "",
            f"Categories: {', '.join(flag.categories)}",
            f"Student (pseudonymous key): {flag.student}",
            f"Tutor: {flag.tutor_id}, chat: {flag.chat_id}",
            f"Review it in the admin: {reverse('admin:safety_flag_change', args=[flag.pk])}",
        ]
    )
    try:
        send_mail(subject, body, None, settings.SAFETY_ALERT_EMAILS)
    except Exception:
        logger.exception("Could not send the safety alert for flag %s", flag.pk)


def flag_review(*, flag: Flag, by: User, review: str, note: str) -> None:
    """Confirms or dismisses a flag: who and when are recorded."""
    if review not in (Flag.Review.CONFIRMED, Flag.Review.DISMISSED):
        raise ValueError(review)
    with transaction.atomic():
        Flag.objects.filter(pk=flag.pk).update(
            review=review, review_note=note, reviewed_by=by, reviewed_at=timezone.now()
        )
    flag.refresh_from_db()


def flags_forget_student(*, student: str | None) -> None:
    """An erased student's flags keep their categories, action and review,
    not the text or the key."""
    if student:
        Flag.objects.filter(student=student).update(text="", student="")


# How much of what was already relayed a check sees again with the new
# text: a phrase or spaced-out word that started there and ends in the new
# text (the longest starter phrase folds to 40 characters). Each check
# costs about 0.2 µs per character it sees (bench/moderation.py); whatever
# is longer is still found by the check of the whole reply at its end
# (docs/decisions/2026-12-05-safety-matching.md).
OVERLAP_CHARS = 64
SENTENCE_ENDS = frozenset(".!?\n")


class Withheld(Exception):
    """The reply must not go on: `verdict` says why."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.categories)
        self.verdict = verdict


class StreamCheck:
    """A reply checked as it is written. `feed` returns what may be relayed
    now: the built-in check has seen it, and at most the last unfinished
    word is held back. Network checks run on the text so far at sentence
    ends (what they find is retracted afterwards: `event: moderated`).
    Raises Withheld when a check finds a category whose text must not reach
    the student."""

    def __init__(self) -> None:
        self.released = ""
        self.held = ""
        self.network = providers.external()
        self.matcher = rules.matcher() if providers.RULES in settings.MODERATION_PROVIDERS else None

    def feed(self, piece: str) -> str:
        self.held += piece
        cut = max(self.held.rfind(" "), self.held.rfind("\n"), self.held.rfind("\t")) + 1
        if not cut:
            return ""
        ready, self.held = self.held[:cut], self.held[cut:]
        start = self.released.rfind(" ", 0, max(0, len(self.released) - OVERLAP_CHARS)) + 1
        found = self.matcher.categories(self.released[start:] + ready) if self.matcher else {}
        if found:
            verdict = judge(
                self.released + ready,
                stage=Stage.OUTPUT,
                findings=[providers.Finding(providers.RULES, frozenset(found))],
            )
            if verdict.withholds:
                raise Withheld(verdict)
        if self.network and SENTENCE_ENDS & set(ready):
            verdict = screen(self.released + ready, stage=Stage.OUTPUT, only=(providers.OPENAI,))
            if verdict.withholds:
                raise Withheld(verdict)
        self.released += ready
        return ready

    def finish(self, content: str, metadata: dict[str, Any]) -> Verdict:
        """The whole reply (`content`, AI-Core's `metadata`) by every check,
        AI-Core's verdict included; the caller relays `held` only when the
        verdict does not withhold."""
        return screen(content, stage=Stage.OUTPUT, metadata=metadata)
