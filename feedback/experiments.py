"""An experiment's statistics, per arm (API_CONTRACT.md, "Experiments").

Read from what the students still have: the arm's replies in their chats,
the feedback on those replies, and the attempts AI-Core failed. An erased
student's chats are gone, so are their figures; a student who withdrew
their consent (`consent_revoked_at`) is left out of every figure. Five
queries whatever the number of experiments, arms, replies and feedback.

Definitions (each over the arm's replies unless said):
- `failure_rate`: (AI-Core failures + replies the safety check withheld)
  over attempts (replies + AI-Core failures);
- `regenerate_rate`: replies the student asked to regenerate;
- `reaction_shares`: replies that got each quick reaction; `bad_share`,
  the guardrail's, is `too_hard` + `incorrect`;
- `rating_ci`: the 95 % interval of the mean detailed rating (Student's
  t; null under two ratings), within 1..5;
- latency percentiles: nearest rank.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from django.db import connection
from django.db.models import Avg, Count, F, Q, Sum

from chats.models import FailedReply, Message
from tutoring.models import ExperimentArm

from .models import Feedback
from .selectors import STRUGGLE_LEVELS, two_places

# Student's t, two-sided 95 %, by degrees of freedom; 1.96 beyond the table.
T_95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
REACTIONS = Feedback.QuickReaction.values
BAD_REACTIONS = (Feedback.QuickReaction.TOO_HARD, Feedback.QuickReaction.INCORRECT)


@dataclass(frozen=True)
class ArmStats:
    arm_id: int
    letter: str
    version: int  # the version's number
    weight: int
    halted_at: datetime | None
    halt_figures: dict
    students: int = 0
    replies: int = 0
    detailed_count: int = 0
    rating_avg: Decimal | None = None
    rating_ci: tuple[Decimal, Decimal] | None = None
    reactions: dict[str, int] = field(default_factory=dict)
    regenerated: int = 0
    withheld: int = 0
    failures: int = 0  # AI-Core failures
    latency_p50_ms: int | None = None
    latency_p95_ms: int | None = None
    struggle: dict[str, float] = field(default_factory=dict)

    def _share(self, part: int, whole: int) -> Fraction:
        return Fraction(part, whole) if whole else Fraction(0)

    @property
    def exact_failure_rate(self) -> Fraction:
        return self._share(self.failures + self.withheld, self.replies + self.failures)

    @property
    def exact_bad_share(self) -> Fraction:
        return self._share(sum(self.reactions.get(r, 0) for r in BAD_REACTIONS), self.replies)

    @property
    def failure_rate(self) -> float:
        return round(float(self.exact_failure_rate), 4)

    @property
    def regenerate_rate(self) -> float:
        return round(float(self._share(self.regenerated, self.replies)), 4)

    @property
    def reaction_shares(self) -> dict[str, float]:
        return {r: round(float(self._share(self.reactions.get(r, 0), self.replies)), 4) for r in REACTIONS}


def rating_interval(
    n: int, mean: float | None, sum_of_squares: float | None
) -> tuple[Decimal, Decimal] | None:
    """The 95 % confidence interval of a mean of `n` ratings (1..5)."""
    if n < 2 or mean is None or sum_of_squares is None:
        return None
    variance = max((sum_of_squares - n * mean * mean) / (n - 1), 0.0)
    t = T_95[n - 2] if n - 1 <= len(T_95) else 1.96
    half = t * math.sqrt(variance / n)
    low, high = two_places(max(mean - half, 1.0)), two_places(min(mean + half, 5.0))
    assert low is not None and high is not None
    return low, high


def _counted(arm_ids: list[int]) -> Q:
    """The arms' rows of students who have not withdrawn their consent."""
    return Q(experiment_arm_id__in=arm_ids, chat__user__consent_revoked_at__isnull=True)


def _latencies(arm_ids: list[int]) -> dict[int, tuple[int, int]]:
    """p50 and p95 (nearest rank) of each arm's reply latency: one query,
    ranked by a window function (PostgreSQL and SQLite alike)."""
    if not arm_ids:
        return {}
    ranked = (
        Message.objects.filter(_counted(arm_ids), latency_ms__isnull=False)
        .values(arm=F("experiment_arm_id"), latency=F("latency_ms"))
        .order_by()
    )
    inner, params = ranked.query.sql_with_params()
    sql = f"""
        SELECT arm, latency, rank, n FROM (
            SELECT arm, latency,
                   ROW_NUMBER() OVER (PARTITION BY arm ORDER BY latency) AS rank,
                   COUNT(*) OVER (PARTITION BY arm) AS n
            FROM ({inner}) AS replies
        ) AS ranked
        WHERE rank = (n * 50 + 99) / 100 OR rank = (n * 95 + 99) / 100
    """  # noqa: S608 (the ORM's own SQL, its values as parameters)
    found: dict[int, dict[int, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for arm, latency, rank, n in cursor.fetchall():
            found.setdefault(arm, {})[rank] = latency
            found[arm]["n"] = n
    return {
        arm: (ranks[(ranks["n"] * 50 + 99) // 100], ranks[(ranks["n"] * 95 + 99) // 100])
        for arm, ranks in found.items()
    }


def experiment_stats(*, experiment_ids: Iterable[int]) -> dict[int, list[ArmStats]]:
    """Each experiment's arms, in order, with their figures."""
    arms = list(
        ExperimentArm.objects.filter(experiment_id__in=list(experiment_ids))
        .select_related("version")
        .only("id", "experiment_id", "position", "weight", "halted_at", "halt_figures", "version__number")
        .order_by("experiment_id", "position")
    )
    arm_ids = [arm.pk for arm in arms]
    levels = {
        f"struggle_{level}": Count("id", filter=Q(metadata__learner__struggle__level=level))
        for level in STRUGGLE_LEVELS
    }
    replies = {
        row["experiment_arm_id"]: row
        for row in Message.objects.filter(_counted(arm_ids))
        .values("experiment_arm_id")
        .order_by()
        .annotate(
            n=Count("id"),
            students=Count("chat__user_id", distinct=True),
            regenerated=Count("id", filter=Q(is_current=False)),
            withheld=Count("id", filter=Q(moderation=Message.Moderation.WITHHELD)),
            **levels,
        )
    }
    detailed = Q(feedback_type=Feedback.FeedbackType.DETAILED)
    quick = Q(feedback_type=Feedback.FeedbackType.QUICK)
    feedback = {
        row["arm"]: row
        for row in Feedback.objects.filter(
            message__experiment_arm_id__in=arm_ids, message__chat__user__consent_revoked_at__isnull=True
        )
        .values(arm=F("message__experiment_arm_id"))
        .order_by()
        .annotate(
            detailed_count=Count("id", filter=detailed),
            rating_avg=Avg("rating", filter=detailed),
            rating_squares=Sum(F("rating") * F("rating"), filter=detailed),
            **{f"reaction_{r}": Count("id", filter=quick & Q(quick_reaction=r)) for r in REACTIONS},
        )
    }
    failures = dict(
        FailedReply.objects.filter(_counted(arm_ids))
        .values("experiment_arm_id")
        .order_by()
        .annotate(n=Count("id"))
        .values_list("experiment_arm_id", "n")
    )
    latencies = _latencies(arm_ids)
    stats: dict[int, list[ArmStats]] = {pk: [] for pk in experiment_ids}
    for arm in arms:
        made, rated = replies.get(arm.pk, {}), feedback.get(arm.pk, {})
        n = made.get("n", 0)
        stats[arm.experiment_id].append(
            ArmStats(
                arm_id=arm.pk,
                letter=arm.letter,
                version=arm.version.number,
                weight=arm.weight,
                halted_at=arm.halted_at,
                halt_figures=arm.halt_figures,
                students=made.get("students", 0),
                replies=n,
                detailed_count=rated.get("detailed_count", 0),
                rating_avg=two_places(rated.get("rating_avg")),
                rating_ci=rating_interval(
                    rated.get("detailed_count", 0), rated.get("rating_avg"), rated.get("rating_squares")
                ),
                reactions={r: rated.get(f"reaction_{r}", 0) for r in REACTIONS},
                regenerated=made.get("regenerated", 0),
                withheld=made.get("withheld", 0),
                failures=failures.get(arm.pk, 0),
                latency_p50_ms=latencies.get(arm.pk, (None, None))[0],
                latency_p95_ms=latencies.get(arm.pk, (None, None))[1],
                struggle={
                    level: round(made.get(f"struggle_{level}", 0) / n, 4) if n else 0.0
                    for level in STRUGGLE_LEVELS
                },
            )
        )
    return stats
