from django.db.models import QuerySet

from accounts.models import User

from .models import Feedback


def feedback_list(*, user: User) -> QuerySet[Feedback]:
    return Feedback.objects.filter(user=user)


def ml_feedback_list() -> QuerySet[Feedback]:
    """Every user's feedback with its tutor, for the ML team's training queue."""
    return Feedback.objects.select_related("tutor").order_by("created_at", "id")
