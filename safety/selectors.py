"""What other apps read of the safety record."""

from datetime import date

from django.db.models import QuerySet
from django.db.models.functions import TruncDate

from .models import Category, Flag


def flagged_exchanges() -> QuerySet[Flag]:
    """The user-message ids (`exchange`) of every exchange a flag that was
    not dismissed holds back from training, as a subquery (`values`)."""
    return (
        Flag.objects.exclude(review=Flag.Review.DISMISSED).filter(exchange__isnull=False).values("exchange")
    )


def daily_counts(*, first: date, last: date, tutor_id: int | None = None) -> dict[str, list[int]]:
    """Flags per day from `first` to `last`, per category found (a flag
    with two categories counts in both) and `unchecked` (a check failed):
    a count per day for each that had any."""
    days = (last - first).days + 1
    counts = {name: [0] * days for name in [*Category.values, "unchecked"]}
    flags = Flag.objects.filter(created_at__date__gte=first, created_at__date__lte=last)
    if tutor_id is not None:
        flags = flags.filter(tutor_id=tutor_id)
    rows = flags.annotate(day=TruncDate("created_at")).values_list("day", "categories", "unchecked")
    for day, categories, unchecked in rows.iterator():
        position = (day - first).days
        for name in [*categories, *(["unchecked"] if unchecked else [])]:
            if name in counts:
                counts[name][position] += 1
    return {name: values for name, values in counts.items() if any(values)}
