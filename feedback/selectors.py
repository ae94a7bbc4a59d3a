from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from accounts.models import User

from .models import ConsentRevocation, Feedback


def feedback_list(*, user: User) -> QuerySet[Feedback]:
    return Feedback.objects.filter(user=user)


def ml_feedback_list() -> QuerySet[Feedback]:
    """Every user's feedback with its tutor, for the ML team's training queue."""
    return Feedback.objects.select_related("tutor").order_by("created_at", "id")


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
    quick = Q(feedback_type=Feedback.FeedbackType.QUICK)
    aggregates = {f"rating_{r}": Count("id", filter=detailed & Q(rating=r)) for r in range(1, 6)}
    aggregates |= {
        f"reaction_{value}": Count("id", filter=quick & Q(quick_reaction=value))
        for value in Feedback.QuickReaction.values
    }
    aggregates["unprocessed"] = Count("id", filter=Q(processed=False))
    row = Feedback.objects.filter(tutor_id=tutor_id).aggregate(**aggregates)
    return FeedbackSummary(
        ratings={r: row[f"rating_{r}"] for r in range(1, 6)},
        reactions={label: row[f"reaction_{value}"] for value, label in Feedback.QuickReaction.choices},
        unprocessed=row["unprocessed"],
    )
