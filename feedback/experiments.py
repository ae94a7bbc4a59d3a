"""An experiment's statistics, per arm (API_CONTRACT.md, "Experiments").

Read from the rollup each arm keeps per student (usage.ArmStudentUsage,
counted as replies, regenerations, failures and feedback happen), never
from the messages: two queries whatever the number of experiments, arms,
replies and feedback. An erased student's rows go with them; a student
who withdrew their consent (`consent_revoked_at`) is left out of every
figure until they give it again.

Definitions (each over the arm's replies unless said):
- `failure_rate`: (AI-Core failures + replies the safety check withheld)
  over attempts (replies + AI-Core failures);
- `regenerate_rate`: replies the student asked to regenerate;
- `reaction_shares`: quick reactions of each kind per reply; `bad_share`,
  the guardrail's, is `too_hard` + `incorrect`;
- `rating_ci`: the 95 % interval of the mean detailed rating (Student's
  t; null under two ratings), within 1..5;
- latency p50 / p95: from the rollup's histogram, interpolated within a
  bucket (usage.dashboard.percentile), as the usage dashboard's.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.db.models import Count, Q, Sum

from tutoring.models import ExperimentArm
from usage.dashboard import percentile
from usage.models import LATENCY_BUCKETS, ArmStudentUsage

from .models import Feedback
from .selectors import STRUGGLE_LEVELS as LEVELS
from .selectors import two_places

# Student's t, two-sided 95 %, by degrees of freedom; 1.96 beyond the table.
T_95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
REACTIONS = Feedback.QuickReaction.values
COUNTERS = [
    *("replies", "regenerated", "withheld", "failures", "detailed_count", "rating_sum", "rating_squares"),
    *(f"struggle_{level}" for level in LEVELS),
    *(f"reaction_{reaction}" for reaction in REACTIONS),
]
BAD_REACTIONS = (Feedback.QuickReaction.TOO_HARD, Feedback.QuickReaction.INCORRECT)


@dataclass(frozen=True)
class ArmStats:
    arm_id: int
    letter: str
    version: int  # the version's number
    weight: int
    halted_at: datetime | None
    halt_figures: dict[str, Any]
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


def experiment_stats(*, experiment_ids: Iterable[int]) -> dict[int, list[ArmStats]]:
    """Each experiment's arms, in order, with their figures."""
    experiment_ids = list(experiment_ids)
    arms = list(
        ExperimentArm.objects.filter(experiment_id__in=experiment_ids)
        .select_related("version")
        .only("id", "experiment_id", "position", "weight", "halted_at", "halt_figures", "version__number")
        .order_by("experiment_id", "position")
    )
    columns = [*COUNTERS, *LATENCY_BUCKETS]
    rows: dict[int, dict[str, Any]] = {
        row["arm_id"]: dict(row)
        for row in ArmStudentUsage.objects.filter(
            arm_id__in=[arm.pk for arm in arms], user__consent_revoked_at__isnull=True
        )
        .values("arm_id")
        .order_by()
        .annotate(
            students=Count("id", filter=Q(replies__gt=0)), **{column: Sum(column) for column in columns}
        )
    }
    stats: dict[int, list[ArmStats]] = {pk: [] for pk in experiment_ids}
    for arm in arms:
        row = rows.get(arm.pk) or dict.fromkeys(columns, 0)
        n, rated = row["replies"], row["detailed_count"]
        buckets = [row[bucket] for bucket in LATENCY_BUCKETS]
        mean = row["rating_sum"] / rated if rated else None
        stats[arm.experiment_id].append(
            ArmStats(
                arm_id=arm.pk,
                letter=arm.letter,
                version=arm.version.number,
                weight=arm.weight,
                halted_at=arm.halted_at,
                halt_figures=arm.halt_figures,
                students=row.get("students", 0),
                replies=n,
                detailed_count=rated,
                rating_avg=two_places(mean),
                rating_ci=rating_interval(rated, mean, row["rating_squares"]),
                reactions={r: row[f"reaction_{r}"] for r in REACTIONS},
                regenerated=row["regenerated"],
                withheld=row["withheld"],
                failures=row["failures"],
                latency_p50_ms=percentile(buckets, 0.5),
                latency_p95_ms=percentile(buckets, 0.95),
                struggle={level: round(row[f"struggle_{level}"] / n, 4) if n else 0.0 for level in LEVELS},
            )
        )
    return stats
