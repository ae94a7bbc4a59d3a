from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Avg, Count, Q, QuerySet

from accounts.models import User
from chats.models import Message
from safety.selectors import flagged_exchanges

from .models import ConsentRevocation, Feedback


def two_places(mean: float | Decimal | None) -> Decimal | None:
    """A mean rating as the API shows it: two places, half up."""
    if mean is None:
        return None
    return Decimal(str(mean)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def reaction_counts() -> dict:
    """Aggregates `reaction_<value>`: how many quick reactions of each kind."""
    quick = Q(feedback_type=Feedback.FeedbackType.QUICK)
    return {
        f"reaction_{value}": Count("id", filter=quick & Q(quick_reaction=value))
        for value in Feedback.QuickReaction.values
    }


def feedback_list(*, user: User) -> QuerySet[Feedback]:
    return Feedback.objects.filter(user=user)


def ml_feedback_list() -> QuerySet[Feedback]:
    """Every user's feedback with its tutor, for the ML team's training queue;
    not an exchange a safety flag holds back (until the flag is dismissed)."""
    return (
        Feedback.objects.exclude(prompt_message_id__in=flagged_exchanges())
        .select_related("tutor__current_version", "tutor_version", "experiment_arm")
        .defer("tutor__current_version__system_prompt", "tutor_version__system_prompt")
        .order_by("created_at", "id")
    )


def consent_revocations() -> QuerySet[ConsentRevocation]:
    return ConsentRevocation.objects.order_by("revoked_at", "id")


@dataclass(frozen=True)
class FeedbackSummary:
    ratings: dict[int, int]
    reactions: dict[str, int]
    unprocessed: int


def tutor_feedback_summary(*, tutor_id: int) -> FeedbackSummary:
    """Rating distribution, quick-reaction counts and the unprocessed count: one query."""
    detailed = Q(feedback_type=Feedback.FeedbackType.DETAILED)
    aggregates = {f"rating_{r}": Count("id", filter=detailed & Q(rating=r)) for r in range(1, 6)}
    aggregates |= reaction_counts()
    aggregates["unprocessed"] = Count("id", filter=Q(processed=False))
    row = Feedback.objects.filter(tutor_id=tutor_id).aggregate(**aggregates)
    return FeedbackSummary(
        ratings={r: row[f"rating_{r}"] for r in range(1, 6)},
        reactions={label: row[f"reaction_{value}"] for value, label in Feedback.QuickReaction.choices},
        unprocessed=row["unprocessed"],
    )


@dataclass(frozen=True)
class VersionStats:
    replies: int
    detailed_count: int
    rating_avg: Decimal | None
    reactions: dict[str, int]
    # The share of its replies given at each struggle level (learner context);
    # replies from before learner context count in none of them.
    struggle: dict[str, float]


STRUGGLE_LEVELS = ("none", "some", "high")


def tutor_version_stats(*, version_ids: list[int]) -> dict[int, VersionStats]:
    """Replies, ratings and reactions per version: two grouped queries,
    whatever the number of versions, replies and feedback."""
    levels = {
        f"struggle_{level}": Count("id", filter=Q(metadata__learner__struggle__level=level))
        for level in STRUGGLE_LEVELS
    }
    replies = {
        row["tutor_version_id"]: row
        for row in Message.objects.filter(tutor_version_id__in=version_ids)
        .values("tutor_version_id")
        .order_by()
        .annotate(n=Count("id"), **levels)
    }
    detailed = Q(feedback_type=Feedback.FeedbackType.DETAILED)
    aggregates = {
        "detailed_count": Count("id", filter=detailed),
        "rating_avg": Avg("rating", filter=detailed),
        **reaction_counts(),
    }
    rows = {
        row["tutor_version_id"]: row
        for row in Feedback.objects.filter(tutor_version_id__in=version_ids)
        .values("tutor_version_id")
        .order_by()
        .annotate(**aggregates)
    }
    stats = {}
    for pk in version_ids:
        row = rows.get(pk, {})
        made = replies.get(pk, {})
        stats[pk] = VersionStats(
            replies=made.get("n", 0),
            detailed_count=row.get("detailed_count", 0),
            rating_avg=two_places(row.get("rating_avg")),
            reactions={value: row.get(f"reaction_{value}", 0) for value in Feedback.QuickReaction.values},
            struggle={
                level: round(made.get(f"struggle_{level}", 0) / made["n"], 4) if made.get("n") else 0.0
                for level in STRUGGLE_LEVELS
            },
        )
    return stats


def tutors_feedback_overview() -> list[dict]:
    """Per tutor with feedback: count, mean detailed rating, share of quick
    reactions that say `incorrect`, unprocessed. One grouped query."""
    detailed = Q(feedback_type=Feedback.FeedbackType.DETAILED)
    quick = Q(feedback_type=Feedback.FeedbackType.QUICK)
    rows = (
        Feedback.objects.values("tutor_id", "tutor__name", "tutor__course__name")
        .order_by("tutor__name", "tutor_id")
        .annotate(
            count=Count("id"),
            rating_avg=Avg("rating", filter=detailed),
            quick_count=Count("id", filter=quick),
            incorrect=Count("id", filter=quick & Q(quick_reaction=Feedback.QuickReaction.INCORRECT)),
            unprocessed=Count("id", filter=Q(processed=False)),
        )
    )
    return [
        {
            **row,
            "rating_avg": two_places(row["rating_avg"]),
            "incorrect_share": round(100 * row["incorrect"] / row["quick_count"])
            if row["quick_count"]
            else None,
        }
        for row in rows
    ]
