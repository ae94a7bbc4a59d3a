"""Usage accounting and the daily quotas, as the send flow uses them.

Every reply is asked for in the same three steps, each a statement or a
few on the rollup rows of usage.models, never a scan of the messages:

- `reserve(user)` before anything is saved or AI-Core is called: takes one
  of the student's replies for the day (one atomic upsert), or raises
  QuotaExceeded. A reply being generated counts against the limit, so
  concurrent sends cannot overshoot it.
- `record_reply(...)` in the transaction that saves the reply: the
  reservation becomes a counted reply with its tokens, for the student, and
  for the tutor with its latency (on PostgreSQL, `reply_counted_with`
  makes the same writes part of the reply's own INSERT statement).
- `record_failure(...)` when no reply was saved: the reservation is given
  back (a failure costs the student nothing), and an AI-Core failure is
  counted for the tutor.

Days are UTC days; a reply counts on the day it is saved.
"""

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.apps import apps as global_apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException

from .models import (
    LATENCY_BOUNDS_MS,
    LATENCY_BUCKETS,
    ArmStudentUsage,
    DailyStudents,
    TutorDailyStudent,
    TutorDailyUsage,
    latency_bucket,
)
from .models import UserDailyUsage as UserDailyUsageModel


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def today() -> date:
    return utc_day(timezone.now())


def resets_at(day: date) -> datetime:
    """When the quota of `day` is renewed: the next UTC midnight."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)


class QuotaExceeded(APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = "You have used today's replies from the tutors. The quota renews at midnight UTC."
    default_code = "quota_exceeded"

    def __init__(self, day: date) -> None:
        super().__init__()
        self.resets_at = resets_at(day)
        self.retry_after = max(1, math.ceil((self.resets_at - timezone.now()).total_seconds()))
        self.extra = {"resets_at": self.resets_at.isoformat().replace("+00:00", "Z")}


@dataclass(frozen=True)
class Limits:
    """A student's daily limits; None is no limit."""

    messages: int | None
    tokens: int | None


def limits_for(user: Any) -> Limits:
    return limits_of(user.daily_messages_limit, user.daily_tokens_limit)


def limits_of(messages_override: int | None, tokens_override: int | None) -> Limits:
    """A student's limits from the staff's overrides, else the settings; 0 is no limit."""

    def limit(override: int | None, default: int) -> int | None:
        value = default if override is None else override
        return value or None

    return Limits(
        messages=limit(messages_override, settings.AI_DAILY_MESSAGES_PER_USER),
        tokens=limit(tokens_override, settings.AI_DAILY_TOKENS_PER_USER),
    )


@dataclass(frozen=True)
class Reservation:
    """One of a student's replies for `day`, taken before AI-Core is called."""

    user_id: int
    day: date


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _execute(sql: str, params: list[Any]) -> tuple[Any, ...] | None:
    """Runs one statement; its RETURNING row, if any. Only table and column
    names from this module are ever formatted into `sql`; values are parameters."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() if cursor.description else None


def reserve(user: Any) -> Reservation:
    """Takes one reply of today's quota, or raises QuotaExceeded. One statement:
    the row is created, or its `reserved` grows only while the student is
    under both limits, atomically."""
    day, limits = today(), limits_for(user)
    t = _table(UserDailyUsageModel)
    sql = (
        f"INSERT INTO {t} (user_id, day, messages, tokens, reserved) VALUES (%s, %s, 0, 0, 1) "  # noqa: S608
        f"ON CONFLICT (user_id, day) DO UPDATE SET reserved = {t}.reserved + 1 "
        f"WHERE (%s = 0 OR {t}.messages + {t}.reserved < %s) AND (%s = 0 OR {t}.tokens < %s) "
        "RETURNING reserved"
    )
    taken = _execute(sql, [user.pk, day, *[limits.messages or 0] * 2, *[limits.tokens or 0] * 2])
    if not taken:
        raise QuotaExceeded(day)
    return Reservation(user_id=user.pk, day=day)


def refund(reservation: Reservation) -> None:
    UserDailyUsageModel.objects.filter(
        user_id=reservation.user_id, day=reservation.day, reserved__gt=0
    ).update(reserved=F("reserved") - 1)


@dataclass(frozen=True)
class Raw:
    """A value written as SQL in `_upsert_sql` (this module's text only)."""

    sql: str


def _upsert_sql(
    model: Any,
    keys: dict[str, Any],
    *,
    add: dict[str, Any],
    put: dict[str, Any] | None = None,
    update: dict[str, tuple[Any, str]] | None = None,
    source: str | None = None,
    returning: str = "",
) -> tuple[str, list[Any]]:
    """The upsert that adds `add` to the counters of the row with `keys`
    (and sets `put`; `update` maps a column to its value in a new row and
    its change, in SQL, in an existing one), creating the row. With
    `source` (a table expression, e.g. a CTE's name) it writes once per row
    of `source`, and a value may be SQL (`Raw`). Column names and SQL come
    from this module only, never from input."""
    put, update = put or {}, update or {}
    table = _table(model)
    values = {**keys, **add, **put, **{column: value for column, (value, _) in update.items()}}
    changes = [f"{column} = {table}.{column} + excluded.{column}" for column in add]
    changes += [f"{column} = excluded.{column}" for column in put]
    changes += [f"{column} = {change}" for column, (_, change) in update.items()]
    marks = [value.sql if isinstance(value, Raw) else "%s" for value in values.values()]
    rows = f"SELECT {', '.join(marks)} FROM {source}" if source else f"VALUES ({', '.join(marks)})"  # noqa: S608
    sql = (
        f"INSERT INTO {table} ({', '.join(values)}) {rows} "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(changes)}{returning}"
    )
    return sql, [value for value in values.values() if not isinstance(value, Raw)]


def _upsert(
    model: Any, keys: dict[str, Any], *, add: dict[str, int], put: dict[str, Any] | None = None
) -> None:
    """Adds `add` to the counters of the row with `keys` (and sets `put`),
    creating the row: one atomic statement."""
    _execute(*_upsert_sql(model, keys, add=add, put=put))


@dataclass(frozen=True)
class ReplyFigures:
    """What a saved reply adds to the rollups (everything but whether its
    student is new for the day, which only the rows can tell)."""

    day: date
    held: int  # 1: reserved on `day`; 0: reserved before midnight, saved after
    tokens: int
    tutor: dict[str, int]  # TutorDailyUsage's counters but `students`
    arm: dict[str, int]  # ArmStudentUsage's counters

    @classmethod
    def of(cls, reservation: Reservation, reply: Any) -> "ReplyFigures":
        day, tokens = utc_day(reply.created_at), reply.tokens_used or 0
        tutor = {"messages": 1, "tokens": tokens}
        if struggle_level(reply.metadata) == "high":
            tutor["struggling"] = 1
        if reply.latency_ms is not None:
            tutor |= {"latency_ms_sum": reply.latency_ms, latency_bucket(reply.latency_ms): 1}
        return cls(day, int(day == reservation.day), tokens, tutor, arm_counts(reply))


def arm_counts(reply: Any) -> dict[str, int]:
    """What a reply adds to its experiment arm's ArmStudentUsage row."""
    counts = {"replies": 1, "withheld": int(reply.moderation == "withheld")}
    level = struggle_level(reply.metadata)
    if level in ("none", "some", "high"):
        counts[f"struggle_{level}"] = 1
    if reply.latency_ms is not None:
        counts[latency_bucket(reply.latency_ms)] = 1
    return counts


def record_arm_reply(*, arm_id: int, user_id: int, reply: Any) -> None:
    """Counts a saved reply of an experiment arm (call in its transaction)."""
    _upsert(ArmStudentUsage, {"arm_id": arm_id, "user_id": user_id}, add=arm_counts(reply))


def _quota_counted_sql(
    reservation: Reservation, figures: ReplyFigures, source: str | None = None
) -> tuple[str, list[Any]]:
    """The student's day: a counted reply with its tokens, the reservation
    it held released. RETURNING the day's replies."""
    t, held = _table(UserDailyUsageModel), figures.held
    release = f"CASE WHEN {t}.reserved >= {held} THEN {t}.reserved - {held} ELSE 0 END"
    return _upsert_sql(
        UserDailyUsageModel,
        {"user_id": reservation.user_id, "day": figures.day},
        add={"messages": 1, "tokens": figures.tokens},
        update={"reserved": (0, release)},
        source=source,
        returning=" RETURNING messages",
    )


def _tutor_student_sql(
    day: date, tutor_id: int, user_id: int, source: str | None = None
) -> tuple[str, list[Any]]:
    """The student counted once among the tutor's students of `day`
    (with `source`, once per row of it): RETURNING 1 when they are new."""
    rows = f"SELECT %s, %s, %s FROM {source}" if source else "VALUES (%s, %s, %s)"  # noqa: S608
    sql = (
        f"INSERT INTO {_table(TutorDailyStudent)} (day, tutor_id, user_id) {rows} "
        "ON CONFLICT (day, tutor_id, user_id) DO NOTHING RETURNING 1"
    )
    return sql, [day, tutor_id, user_id]


def record_reply(reservation: Reservation, *, tutor_id: int, reply: Any, arm_id: int | None = None) -> None:
    """Counts a saved reply (a Message with `created_at`, `tokens_used`,
    `latency_ms`, `metadata` and `moderation`) for the student, the tutor
    and, with `arm_id`, the experiment arm. Call inside the transaction
    that saves it; `reply_counted_with` is the same as one statement."""
    figures = ReplyFigures.of(reservation, reply)
    returned = _execute(*_quota_counted_sql(reservation, figures))
    assert returned is not None  # an upsert RETURNING its row
    (replies_today,) = returned
    release_overnight(reservation, reply)
    if replies_today == 1:  # the student's first reply today (once per student and day)
        _upsert(DailyStudents, {"day": figures.day}, add={"students": 1})
    new_student = _execute(*_tutor_student_sql(figures.day, tutor_id, reservation.user_id)) is not None
    counts = figures.tutor | {"students": int(new_student)}
    _upsert(TutorDailyUsage, {"day": figures.day, "tutor_id": tutor_id}, add=counts)
    if arm_id is not None:
        _upsert(ArmStudentUsage, {"arm_id": arm_id, "user_id": reservation.user_id}, add=figures.arm)


def release_overnight(reservation: Reservation, reply: Any) -> None:
    """A reservation taken before midnight for a reply saved after it is
    given back on its own day (the reply counts on the reply's)."""
    if utc_day(reply.created_at) != reservation.day:
        refund(reservation)


def reply_counted_with(
    reservation: Reservation, *, tutor_id: int, reply: Any, arm_id: int | None = None, source: str
) -> tuple[list[str], list[Any]]:
    """`record_reply` as common table expressions of one PostgreSQL
    statement (data-modifying WITH), each writing only when `source` (the
    reply's INSERT ... RETURNING) has a row: (the expressions, their
    params). Then `release_overnight`, as `record_reply` does."""
    figures, user_id = ReplyFigures.of(reservation, reply), reservation.user_id
    day = figures.day
    parts: list[tuple[str, tuple[str, list[Any]]]] = [
        ("counted_quota", _quota_counted_sql(reservation, figures, source)),
        ("counted_day", _upsert_sql(DailyStudents, {"day": day}, add={"students": 1},
                                    source="counted_quota WHERE messages = 1")),
        ("counted_student", _tutor_student_sql(day, tutor_id, user_id, source)),
        ("counted_tutor", _upsert_sql(
            TutorDailyUsage, {"day": day, "tutor_id": tutor_id},
            add={**figures.tutor, "students": Raw("(SELECT count(*) FROM counted_student)")},
            source=source,
        )),
    ]  # fmt: skip
    if arm_id is not None:
        keys = {"arm_id": arm_id, "user_id": user_id}
        parts.append(("counted_arm", _upsert_sql(ArmStudentUsage, keys, add=figures.arm, source=source)))
    return [f"{name} AS ({sql})" for name, (sql, _) in parts], [p for _, (_, ps) in parts for p in ps]


def struggle_level(metadata: Any) -> str | None:
    """The struggle level a reply was given at (its learner block), if any."""
    learner = metadata.get("learner") if isinstance(metadata, dict) else None
    struggle = learner.get("struggle") if isinstance(learner, dict) else None
    return struggle.get("level") if isinstance(struggle, dict) else None


def record_failure(reservation: Reservation, *, tutor_id: int, ai_core_failed: bool) -> None:
    """No reply was saved: gives the reservation back; counts AI-Core's failure."""
    refund(reservation)
    if ai_core_failed:
        _upsert(TutorDailyUsage, {"day": today(), "tutor_id": tutor_id}, add={"failures": 1})


def record_rating(*, tutor_id: int, rating: Any) -> None:
    """Notes the tutor's mean rating as it stands now on today's row (the dashboard's trend)."""
    _upsert(TutorDailyUsage, {"day": today(), "tutor_id": tutor_id}, add={}, put={"rating": rating})


def record_arm_event(*, arm_id: int, user_id: int, counter: str) -> None:
    """Counts a regeneration of one of the arm's replies (`regenerated`) or
    an AI-Core failure of the arm (`failures`)."""
    assert counter in ("regenerated", "failures")
    _upsert(ArmStudentUsage, {"arm_id": arm_id, "user_id": user_id}, add={counter: 1})


def record_arm_feedback(*, arm_id: int, user_id: int, before: Any, after: Any) -> None:
    """Moves the student's feedback on an arm's reply from `before` to
    `after` (each a Feedback, or None when there is none): rating sums and
    reaction counts, in the feedback's own transaction."""
    counts: dict[str, int] = defaultdict(int)
    for feedback, sign in ((before, -1), (after, 1)):
        if feedback is None:
            continue
        if feedback.feedback_type == "detailed" and feedback.rating is not None:
            counts["detailed_count"] += sign
            counts["rating_sum"] += sign * feedback.rating
            counts["rating_squares"] += sign * feedback.rating**2
        elif feedback.quick_reaction:
            counts[f"reaction_{feedback.quick_reaction}"] += sign
    changed = {column: n for column, n in counts.items() if n}
    if not changed:
        return
    if before is None:
        _upsert(ArmStudentUsage, {"arm_id": arm_id, "user_id": user_id}, add=changed)
    else:  # counted when it was given: the row exists, and an INSERT of a negative count would be refused
        ArmStudentUsage.objects.filter(arm_id=arm_id, user_id=user_id).update(
            **{column: F(column) + n for column, n in changed.items()}
        )


def usage_today(user: Any) -> dict[str, Any]:
    """The student's day so far, as GET /auth/me/usage/ shows it."""
    day, limits = today(), limits_for(user)
    row = (
        UserDailyUsageModel.objects.filter(user=user, day=day)
        .values("messages", "tokens", "reserved")
        .first()
    )
    row = row or {"messages": 0, "tokens": 0, "reserved": 0}
    return {
        "date": day,
        "messages": row["messages"] + row["reserved"],
        "tokens": row["tokens"],
        "messages_limit": limits.messages,
        "tokens_limit": limits.tokens,
        "resets_at": resets_at(day),
    }


def rebuild(since: date, until: date, apps: Any = global_apps, app_label: str = "usage") -> int:
    """Recomputes the rollups' reply counts for the days `since`..`until`
    (UTC, inclusive) from the messages that exist: replies, tokens, latency
    and students. AI-Core failures, reservations and rating notes are not in
    the messages and are kept. Returns the number of replies counted.

    Takes `apps` (and the models' `app_label` then) so a migration can pass
    its historical models.
    """
    message_model = apps.get_model("chats", "Message")
    user_usage = apps.get_model(app_label, "UserDailyUsage")
    tutor_usage = apps.get_model(app_label, "TutorDailyUsage")
    tutor_student = apps.get_model(app_label, "TutorDailyStudent")
    daily_students = apps.get_model(app_label, "DailyStudents")
    start = datetime.combine(since, time(0), tzinfo=UTC)
    end = datetime.combine(until + timedelta(days=1), time(0), tzinfo=UTC)
    replies = message_model.objects.filter(
        role="assistant", created_at__gte=start, created_at__lt=end
    ).annotate(on=TruncDate("created_at", tzinfo=UTC))
    buckets: dict[str, Count] = {}
    low: int | None = -1
    for bound, column in zip([*LATENCY_BOUNDS_MS, None], LATENCY_BUCKETS, strict=True):
        window = Q(latency_ms__gt=low) if bound is None else Q(latency_ms__gt=low, latency_ms__lte=bound)
        buckets[column], low = Count("id", filter=window), bound
    counts = {"messages": Count("id"), "tokens": Coalesce(Sum("tokens_used"), 0)}
    # (An earlier migration's TutorDailyUsage has no `struggling` yet.)
    struggling = {f.name for f in tutor_usage._meta.get_fields()} >= {"struggling"}
    if struggling:
        buckets["struggling"] = Count("id", filter=Q(metadata__learner__struggle__level="high"))
    per_tutor = replies.values("on", "chat__tutor_id").annotate(
        **counts, latency_ms_sum=Coalesce(Sum("latency_ms"), 0), **buckets
    )
    per_tutor = per_tutor.annotate(students=Count("chat__user_id", distinct=True))
    per_user = replies.values("on", "chat__user_id").annotate(**counts)
    students = replies.values_list("on", "chat__tutor_id", "chat__user_id").distinct()
    per_day = replies.values("on").annotate(students=Count("chat__user_id", distinct=True))
    tutor_fields = ["messages", "tokens", "students", "latency_ms_sum", *LATENCY_BUCKETS]
    tutor_fields += ["struggling"] if struggling else []
    in_range = Q(day__gte=since, day__lte=until)
    with transaction.atomic():
        tutor_usage.objects.filter(in_range).update(**dict.fromkeys(tutor_fields, 0))
        user_usage.objects.filter(in_range).update(messages=0, tokens=0)
        tutor_student.objects.filter(in_range).delete()
        daily_students.objects.filter(in_range).delete()
        tutor_usage.objects.bulk_create(
            [
                tutor_usage(day=row.pop("on"), tutor_id=row.pop("chat__tutor_id"), **row)
                for row in per_tutor.order_by()
            ],
            update_conflicts=True,
            unique_fields=["day", "tutor"],
            update_fields=tutor_fields,
            batch_size=500,
        )
        user_usage.objects.bulk_create(
            [
                user_usage(
                    day=row["on"],
                    user_id=row["chat__user_id"],
                    messages=row["messages"],
                    tokens=row["tokens"],
                )
                for row in per_user.order_by()
            ],
            update_conflicts=True,
            unique_fields=["user", "day"],
            update_fields=["messages", "tokens"],
            batch_size=500,
        )
        tutor_student.objects.bulk_create(
            [tutor_student(day=on, tutor_id=tutor, user_id=user) for on, tutor, user in students.order_by()],
            batch_size=500,
        )
        daily_students.objects.bulk_create(
            [daily_students(day=row["on"], students=row["students"]) for row in per_day.order_by()]
        )
    counted: int = tutor_usage.objects.filter(in_range).aggregate(n=Coalesce(Sum("messages"), 0))["n"]
    return counted
