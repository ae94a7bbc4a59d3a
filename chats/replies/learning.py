"""The learner context (API_CONTRACT.md, "Learner context"): what AI-Core is
told with every question about the student, how the tutor teaches, what the
student asked for, and whether the student is struggling.

The struggle estimate is read from what the chat already holds, in one
query (the last messages of the chat with the student's feedback on them,
and the student's minutes with this tutor): over the last
AI_STRUGGLE_WINDOW exchanges, each piece of evidence adds its weight
(`WEIGHTS`), saying `understood` takes one away, and the sum over `FULL` is
the score (0..1). Questions asked again in other words are told by the
overlap of their words (`asked_again`), no model involved.
"""

import itertools
import re
from typing import Any

from django.conf import settings
from django.db.models import Case, F, QuerySet, Subquery, Value, When
from django.db.models.functions import Left

from chats.models import Chat, Intent, Message
from progress.models import Progress
from tutor_platform.prepared import Prepared
from tutoring.models import TeachingMode, TutorVersion

# The evidence and what each piece of it weighs; `understood` counts against.
WEIGHTS = {
    "too_hard": 1.0,
    "need_more_examples": 0.5,
    "low_rating": 0.75,  # a rating of 2 or less
    "regenerated": 0.5,
    "asked_again": 0.75,  # a question asked again in other words
    "hint": 0.5,  # intent
    "show_solution": 1.0,  # intent
    "understood": -1.0,
}
FULL = 3.0  # evidence worth this much is a score of 1
LEVELS = ((0.6, "high"), (0.25, "some"))  # the lowest score of each level; below them, "none"
# Two consecutive questions whose word sets overlap this much (Jaccard) are one question asked again.
SAME_QUESTION = 0.6
COMPARED_CHARS = 1000  # of each question: the estimate's CPU stays bounded
_WORD = re.compile(r"\w+")


def learner_block(*, chat: Chat, user_message: Message, version: TutorVersion) -> dict[str, Any]:
    """The `learner` block of a call to AI-Core about `user_message`."""
    rows = _window(chat)
    return {
        "profile": chat.user.learner,
        "teaching_mode": version.teaching_mode or TeachingMode.SOCRATIC,
        "intent": user_message.intent or Intent.QUESTION,
        "progress_minutes": next((row["minutes"] for row in rows if row["minutes"] is not None), 0),
        "struggle": struggle_of(rows, user_message.pk),
    }


def _window(chat: Chat) -> list[dict[str, Any]]:
    """The chat's last messages, newest first, each with the student's
    reaction and rating (a reply rated both ways is two rows) and, on every
    row, the student's minutes with this tutor. One query, compiled once
    (tutor_platform.prepared)."""
    # An exchange is a question, its replies (variants) and up to two feedback rows on each.
    limit = settings.AI_STRUGGLE_WINDOW * 8
    return _WINDOW.all(limit, chat_id=chat.pk, user_id=chat.user_id, tutor_id=chat.tutor_id)


def _window_query(limit: int, chat_id: int, user_id: int, tutor_id: int) -> QuerySet[Message, Any]:
    minutes = Progress.objects.filter(user_id=user_id, tutor_id=tutor_id).values("total_minutes")[:1]
    # Only the questions' text is compared, and only its start: replies' is not read.
    question = Case(When(role=Message.Role.USER, then=Left("content", COMPARED_CHARS)), default=Value(""))
    return (
        Message.objects.filter(chat_id=chat_id)
        .order_by("-id")
        .annotate(
            text=question,
            minutes=Subquery(minutes),
            reaction=F("feedback__quick_reaction"),
            rating=F("feedback__rating"),
        )
        .values("id", "role", "text", "intent", "reply_to_id", "reaction", "rating", "minutes")[:limit]
    )


_WINDOW: Prepared[dict[str, Any]] = Prepared(_window_query)


def struggle_of(rows: list[dict[str, Any]], asked: int) -> dict[str, Any]:
    """The estimate from the window's rows (newest first) for the question `asked`."""
    seen: set[int] = set()
    questions = []
    for row in rows:  # newest first; only those up to the question asked
        if row["role"] == Message.Role.USER and row["id"] <= asked and row["id"] not in seen:
            seen.add(row["id"])
            questions.append(row)
    questions = questions[: settings.AI_STRUGGLE_WINDOW]
    kept = {q["id"] for q in questions}
    counts = dict.fromkeys(WEIGHTS, 0)
    replies: dict[int, set[int]] = {question: set() for question in kept}
    rated: set[tuple[int, str]] = set()
    for row in rows:
        if row["role"] != Message.Role.ASSISTANT or row["reply_to_id"] not in kept:
            continue
        replies[row["reply_to_id"]].add(row["id"])
        reaction = row["reaction"]
        counted = reaction in ("too_hard", "need_more_examples", "understood")
        if counted and (row["id"], reaction) not in rated:
            rated.add((row["id"], reaction))
            counts[reaction] += 1
        if row["rating"] is not None and row["rating"] <= 2 and (row["id"], "rating") not in rated:
            rated.add((row["id"], "rating"))
            counts["low_rating"] += 1
    # Every reply beyond a question's first was a regeneration; for the
    # question asked now, every reply it has already (another is coming).
    counts["regenerated"] = sum(
        len(ids) if question == asked else max(0, len(ids) - 1) for question, ids in replies.items()
    )
    for question in questions:
        if question["intent"] in ("hint", "show_solution"):
            counts[question["intent"]] += 1
    oldest_first = [_words(q["text"]) for q in reversed(questions)]
    counts["asked_again"] = sum(
        1 for before, after in itertools.pairwise(oldest_first) if _same(before, after)
    )
    score = max(0.0, min(1.0, sum(WEIGHTS[signal] * count for signal, count in counts.items()) / FULL))
    return {
        "level": next((name for lowest, name in LEVELS if score >= lowest), "none"),
        "score": round(score, 2),
        "evidence": [{"signal": signal, "count": count} for signal, count in counts.items() if count],
    }


def _words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text[:COMPARED_CHARS].lower().replace("ё", "е")))


def _same(before: frozenset[str], after: frozenset[str]) -> bool:
    if not before or not after:
        return False
    return len(before & after) / len(before | after) >= SAME_QUESTION
