"""What the tutors' replies cost, rolled up per UTC day (kept by usage.services).

The rows are counters, changed only by atomic increments in the transaction
that saves a reply (or when a reply fails), so they are exact under
concurrency and the dashboard and the quotas never scan the messages.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

# Upper bounds (ms) of the latency histogram's buckets; one more bucket
# holds everything slower. Fine enough for p50 / p95 within a bucket.
LATENCY_BOUNDS_MS = (250, 500, 1000, 2000, 3000, 5000, 8000, 13000, 20000, 30000, 60000)


def _counter(**kwargs) -> models.PositiveIntegerField:
    return models.PositiveIntegerField(default=0, db_default=0, **kwargs)


def latency_bucket(latency_ms: int) -> str:
    """The histogram column a reply of `latency_ms` is counted in."""
    for bound in LATENCY_BOUNDS_MS:
        if latency_ms <= bound:
            return f"latency_le_{bound}"
    return f"latency_over_{LATENCY_BOUNDS_MS[-1]}"


LATENCY_BUCKETS = [latency_bucket(bound) for bound in LATENCY_BOUNDS_MS] + [
    latency_bucket(LATENCY_BOUNDS_MS[-1] + 1)
]


class LatencyHistogram(models.Model):
    """The replies' latency, counted in the buckets of LATENCY_BOUNDS_MS
    (`latency_bucket` names the column)."""

    latency_le_250 = _counter()
    latency_le_500 = _counter()
    latency_le_1000 = _counter()
    latency_le_2000 = _counter()
    latency_le_3000 = _counter()
    latency_le_5000 = _counter()
    latency_le_8000 = _counter()
    latency_le_13000 = _counter()
    latency_le_20000 = _counter()
    latency_le_30000 = _counter()
    latency_le_60000 = _counter()
    latency_over_60000 = _counter()

    class Meta:
        abstract = True


class UserDailyUsage(models.Model):
    """A student's replies and tokens in one UTC day: what the quota counts."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    messages = _counter(help_text=_("Replies saved (sends, replies and regenerations)."))
    tokens = models.PositiveBigIntegerField(default=0, db_default=0)
    reserved = _counter(help_text=_("Replies being generated now: the quota counts them too."))

    class Meta:
        verbose_name = _("user daily usage")
        verbose_name_plural = _("user daily usage")
        constraints = [models.UniqueConstraint(fields=["user", "day"], name="user_usage_one_per_day")]
        # The day's most active students (nearest their quota), and students per day.
        indexes = [models.Index(fields=["day", "-messages"], name="user_usage_day_messages_idx")]

    def __str__(self) -> str:
        return gettext("user %(user)s on %(day)s") % {"user": self.user_id, "day": self.day}


class TutorDailyUsage(LatencyHistogram):
    """A tutor's replies, tokens, AI-Core failures and latency in one UTC day."""

    tutor = models.ForeignKey("tutoring.Tutor", on_delete=models.CASCADE, related_name="daily_usage")
    day = models.DateField()
    messages = _counter()
    tokens = models.PositiveBigIntegerField(default=0, db_default=0)
    failures = _counter(help_text=_("Sends, replies and regenerations AI-Core failed (no reply saved)."))
    students = _counter(help_text=_("Students the tutor answered (see TutorDailyStudent)."))
    struggling = _counter(help_text=_("Replies given to a student whose struggle estimate was high."))
    latency_ms_sum = models.PositiveBigIntegerField(default=0, db_default=0)
    # The tutor's mean rating as it stood at the end of the day (set by
    # every rating change; null on days without one).
    rating = models.DecimalField(max_digits=3, decimal_places=2, null=True, blank=True)

    class Meta:
        verbose_name = _("tutor daily usage")
        verbose_name_plural = _("tutor daily usage")
        constraints = [models.UniqueConstraint(fields=["day", "tutor"], name="tutor_usage_one_per_day")]
        # A tutor's rating notes, newest first: the dashboard's rating line
        # and the last note before its window, whatever the history's length.
        indexes = [
            models.Index(
                fields=["tutor", "-day"],
                condition=models.Q(rating__isnull=False),
                name="tutor_usage_rating_notes_idx",
            )
        ]

    def __str__(self) -> str:
        return gettext("tutor %(tutor)s on %(day)s") % {"tutor": self.tutor_id, "day": self.day}


class DailyStudents(models.Model):
    """Students who got a reply on a day, from any tutor."""

    day = models.DateField(unique=True)
    students = _counter()

    class Meta:
        verbose_name = _("daily students")
        verbose_name_plural = _("daily students")

    def __str__(self) -> str:
        return ngettext("%(count)d student on %(day)s", "%(count)d students on %(day)s", self.students) % {
            "count": self.students,
            "day": self.day,
        }


class TutorDailyStudent(models.Model):
    """A student the tutor answered on a day: its first reply that day counts
    the student once in TutorDailyUsage.students."""

    day = models.DateField()
    tutor = models.ForeignKey("tutoring.Tutor", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        verbose_name = _("tutor daily student")
        verbose_name_plural = _("tutor daily students")
        constraints = [
            models.UniqueConstraint(fields=["day", "tutor", "user"], name="tutor_student_one_per_day")
        ]

    def __str__(self) -> str:
        return gettext("user %(user)s with tutor %(tutor)s on %(day)s") % {
            "user": self.user_id,
            "tutor": self.tutor_id,
            "day": self.day,
        }


class ArmStudentUsage(LatencyHistogram):
    """What one student got from one experiment arm, kept like the daily
    rollups (usage.services.record_arm_*): an experiment's statistics read
    these rows, never the messages. Gone with the student (erasure)."""

    arm = models.ForeignKey("tutoring.ExperimentArm", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    replies = _counter()
    regenerated = _counter(help_text=_("Replies the student asked to regenerate."))
    withheld = _counter(help_text=_("Replies the safety check withheld."))
    failures = _counter(help_text=_("Sends, replies and regenerations AI-Core failed (no reply saved)."))
    struggle_none = _counter()
    struggle_some = _counter()
    struggle_high = _counter()
    # The student's detailed ratings of the arm's replies, and quick reactions.
    detailed_count = _counter()
    rating_sum = _counter()
    rating_squares = _counter()
    reaction_understood = _counter()
    reaction_too_hard = _counter()
    reaction_need_more_examples = _counter()
    reaction_too_easy = _counter()
    reaction_incorrect = _counter()

    class Meta:
        verbose_name = _("experiment arm usage")
        verbose_name_plural = _("experiment arm usage")
        constraints = [models.UniqueConstraint(fields=["arm", "user"], name="arm_usage_one_per_student")]

    def __str__(self) -> str:
        return gettext("user %(user)s in arm %(arm)s") % {"user": self.user_id, "arm": self.arm_id}


class UsageDashboard(TutorDailyUsage):
    """The admin's usage dashboard (usage.admin); its view permission opens it."""

    class Meta:
        proxy = True
        verbose_name = verbose_name_plural = _("usage dashboard")
        default_permissions = ("view",)
