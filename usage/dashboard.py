"""What the staff's usage dashboard shows, read from the rollups only.

A fixed number of queries over rows per (day, tutor) and per (day, student):
its cost does not grow with the number of messages.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Case, F, FilteredRelation, FloatField, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Cast, Coalesce, Greatest

from tutoring.models import Tutor

from .models import LATENCY_BOUNDS_MS, LATENCY_BUCKETS, DailyStudents, TutorDailyUsage, UserDailyUsage
from .services import limits_of, today

DAYS = 30
RATING_LINES = 6  # tutors on the rating chart when all are shown: the busiest
TABLE_ROWS = 10


def percentile(buckets: list[int], share: float) -> int | None:
    """The latency (ms) under which `share` of the replies fell, interpolated
    within its histogram bucket; None without replies. The last bucket is
    open: a value there is reported as its lower bound."""
    total = sum(buckets)
    if not total:
        return None
    wanted, seen, low = share * total, 0, 0
    for count, high in zip(buckets, [*LATENCY_BOUNDS_MS, None], strict=True):
        if count and seen + count >= wanted:
            if high is None:
                return low
            return round(low + (high - low) * (wanted - seen) / count)
        seen += count
        low = high if high is not None else low
    return low


@dataclass
class Day:
    day: date
    messages: int = 0
    tokens: int = 0
    failures: int = 0
    students: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))

    @property
    def failure_rate(self) -> float | None:
        """Failed asks out of all asks (replies + failures), in percent."""
        asked = self.messages + self.failures
        return round(100 * self.failures / asked, 1) if asked else None

    @property
    def p50(self) -> int | None:
        return percentile(self.buckets, 0.5)

    @property
    def p95(self) -> int | None:
        return percentile(self.buckets, 0.95)


@dataclass
class Dashboard:
    days: list[Day]
    ratings: dict[str, list[float | None]]  # tutor's name (and id, if two share it) -> mean rating by day
    top_tutors: list[dict[str, Any]]
    nearest_quota: list[dict[str, Any]]
    tutors: list[dict[str, Any]]  # for the picker


def dashboard(*, tutor_id: int | None = None, last: date | None = None) -> Dashboard:
    last = last or today()
    first = last - timedelta(days=DAYS - 1)
    window = Q(day__gte=first, day__lte=last)
    mine = Q(tutor_id=tutor_id) if tutor_id is not None else Q()
    days = {first + timedelta(days=offset): Day(first + timedelta(days=offset)) for offset in range(DAYS)}

    sums = {name: Sum(name) for name in ["messages", "tokens", "failures", "students", *LATENCY_BUCKETS]}
    if tutor_id is None:  # a student of two tutors counts once
        everyone = DailyStudents.objects.filter(day=OuterRef("day")).values("students")
        sums["students"] = Subquery(everyone)
    for row in TutorDailyUsage.objects.filter(window & mine).values("day").annotate(**sums).order_by():
        entry = days[row["day"]]
        entry.messages, entry.tokens, entry.failures = row["messages"], row["tokens"], row["failures"]
        entry.students = row["students"] or 0
        entry.buckets = [row[name] for name in LATENCY_BUCKETS]

    tutors = _tutors(first, last)
    busy = [row for row in tutors if row["messages"]]
    if tutor_id is None:
        shown, top = tutors[:RATING_LINES], busy[:TABLE_ROWS]
    else:
        shown = top = [row for row in tutors if row["id"] == tutor_id]
    return Dashboard(
        days=list(days.values()),
        ratings=_rating_lines(shown, first, last),
        top_tutors=[
            {**row, "struggling_share": round(100 * row["struggling"] / row["messages"], 1)}
            for row in top
            if row["messages"]
        ],
        nearest_quota=_nearest_quota(last),
        tutors=sorted(tutors, key=lambda row: row["name"]),
    )


def _tutors(first: date, last: date) -> list[dict[str, Any]]:
    """Every tutor, busiest first: its replies, tokens and failures in the
    window, its rating now, and its last rating note before the window.
    One query."""
    in_window = FilteredRelation(
        "daily_usage", condition=Q(daily_usage__day__gte=first, daily_usage__day__lte=last)
    )
    earlier = TutorDailyUsage.objects.filter(tutor_id=OuterRef("pk"), day__lt=first, rating__isnull=False)
    return list(
        Tutor.objects.annotate(recent=in_window)
        .values("id", "name", "rating")
        .annotate(
            messages=Coalesce(Sum("recent__messages"), 0),
            tokens=Coalesce(Sum("recent__tokens"), 0),
            failures=Coalesce(Sum("recent__failures"), 0),
            struggling=Coalesce(Sum("recent__struggling"), 0),
            carried=Subquery(earlier.order_by("-day").values("rating")[:1]),
        )
        .order_by("-messages", "name", "id")
    )


def _rating_lines(tutors: list[dict[str, Any]], first: date, last: date) -> dict[str, list[float | None]]:
    """Each tutor's mean rating day by day: the note of the day, else the
    last one before (carried in from before the window too). One query."""
    notes = TutorDailyUsage.objects.filter(
        tutor_id__in=[tutor["id"] for tutor in tutors], day__gte=first, day__lte=last, rating__isnull=False
    )
    noted: dict[int, dict[date, Decimal]] = {tutor["id"]: {} for tutor in tutors}
    for tutor_id, day, rating in notes.values_list("tutor_id", "day", "rating"):
        noted[tutor_id][day] = rating
    names = Counter(tutor["name"] for tutor in tutors)
    lines = {}
    for tutor in tutors:
        value, line = tutor["carried"], []
        for offset in range((last - first).days + 1):
            value = noted[tutor["id"]].get(first + timedelta(days=offset), value)
            line.append(float(value) if value is not None else None)
        shared = names[tutor["name"]] > 1
        lines[f"{tutor['name']} (#{tutor['id']})" if shared else tutor["name"]] = line
    return lines


def _share(used: Any, override: str, default: int) -> Case:
    """`used` over the effective limit (the user's `override`, else `default`); 0 without one."""
    limit = Coalesce(F(override), Value(default))
    has_limit = Q(**{f"{override}__gt": 0})
    if default:
        has_limit |= Q(**{f"{override}__isnull": True})
    ratio = Cast(used, FloatField()) / Cast(limit, FloatField())
    return Case(When(has_limit, then=ratio), default=Value(0.0), output_field=FloatField())


def _nearest_quota(day: date) -> list[dict[str, Any]]:
    """The day's students by the larger share of a limit they used; without
    limits, the busiest. One query."""
    used = F("messages") + F("reserved")
    rows = (
        UserDailyUsage.objects.filter(day=day)
        .annotate(
            used=used,
            share=Greatest(
                _share(used, "user__daily_messages_limit", settings.AI_DAILY_MESSAGES_PER_USER),
                _share(F("tokens"), "user__daily_tokens_limit", settings.AI_DAILY_TOKENS_PER_USER),
            ),
        )
        .order_by("-share", "-used", "user_id")
        .values(
            "user_id", "used", "tokens", "share", "user__daily_messages_limit", "user__daily_tokens_limit"
        )
    )
    return [
        {
            "user_id": row["user_id"],
            "messages": row["used"],
            "tokens": row["tokens"],
            "share": round(100 * row["share"]),
            "limits": limits_of(row["user__daily_messages_limit"], row["user__daily_tokens_limit"]),
        }
        for row in rows[:TABLE_ROWS]
    ]
