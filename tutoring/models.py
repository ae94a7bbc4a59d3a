from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class Course(models.Model):
    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=200, unique=True)
    description = models.TextField(_("description"), blank=True)
    # New courses start hidden; an editor publishes them when they are ready.
    is_active = models.BooleanField(_("is active"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("course")
        verbose_name_plural = _("courses")
        ordering = ["name", "id"]
        constraints = [
            # Case-insensitive for Cyrillic too on PostgreSQL; the admin form
            # also checks with Python's casefold, which SQLite's lower() is not.
            models.UniqueConstraint(
                Lower("name"),
                name="course_name_ci_unique",
                violation_error_message=_("A course with this name already exists."),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Tutor(models.Model):
    """A subject tutor. What AI-Core gets for it (prompt, model, knowledge
    base) lives in its versions: `current_version` is the newest, and only
    tutoring.services.tutor_version_save makes one."""

    # PROTECT: a tutor with chats or feedback is deactivated, never deleted,
    # so students keep their history and the ML team its training data.
    course = models.ForeignKey(
        Course, on_delete=models.PROTECT, related_name="tutors", verbose_name=_("course")
    )
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    current_version = models.OneToOneField(
        "TutorVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("current version"),
    )
    # The experiment running on this tutor (tutoring.experiments keeps it
    # with the experiment's state): a send reads it in the chat's own query.
    running_experiment = models.ForeignKey(
        "Experiment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("running experiment"),
    )
    is_active = models.BooleanField(_("is active"), default=False)
    # Computed from detailed feedback by feedback.services; never edited by hand.
    rating = models.DecimalField(_("rating"), max_digits=3, decimal_places=2, default=Decimal("0.00"))
    total_feedbacks = models.PositiveIntegerField(_("total feedbacks"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("tutor")
        verbose_name_plural = _("tutors")
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(rating__gte=0, rating__lte=5), name="tutor_rating_0_5"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_available(self) -> bool:
        """Students can chat with it: the tutor and its course are both active.
        Reads `course`: join it (`select_related("course")`)."""
        return self.is_active and self.course.is_active and self.current_version_id is not None

    # The current version's content, read-only: changing it means a new
    # version. Reads `current_version`: join it.
    @property
    def system_prompt(self) -> str:
        return self.current_version.system_prompt if self.current_version else ""

    @property
    def model_id(self) -> str:
        return self.current_version.model_id if self.current_version else ""

    @property
    def knowledge_base_id(self) -> str:
        return self.current_version.knowledge_base_id if self.current_version else ""


class TeachingMode(models.TextChoices):
    """How a tutor version teaches (the contract's `teaching_mode`)."""

    SOCRATIC = "socratic", _("Socratic: guiding questions, no full solution before the student tries")
    HINTS = "hints", _("Hints: one step at a time")
    DIRECT = "direct", _("Direct: the full explanation")


class TutorVersion(models.Model):
    """An immutable snapshot of what AI-Core gets for a tutor. Rows are only
    ever added (tutoring.services), never changed or deleted."""

    tutor = models.ForeignKey(
        Tutor, on_delete=models.CASCADE, related_name="versions", verbose_name=_("tutor")
    )
    number = models.PositiveIntegerField(_("number"))
    system_prompt = models.TextField(
        _("system prompt"), blank=True, help_text=_("Instructions sent to AI-Core with every message.")
    )
    model_id = models.CharField(
        _("model id"), max_length=200, help_text=_("AI-Core model that answers for this tutor.")
    )
    knowledge_base_id = models.CharField(_("knowledge base id"), max_length=200, blank=True)
    teaching_mode = models.CharField(
        _("teaching mode"),
        max_length=16,
        choices=TeachingMode.choices,
        default=TeachingMode.SOCRATIC,
        db_default=TeachingMode.SOCRATIC,
        help_text=_("How the tutor teaches; sent to AI-Core with every message."),
    )
    note = models.CharField(_("note"), max_length=500, blank=True, help_text=_("What changed and why."))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("tutor version")
        verbose_name_plural = _("tutor versions")
        ordering = ["tutor", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["tutor", "number"], name="tutor_version_number_unique"),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="tutor_version_number_positive"),
        ]

    def __str__(self) -> str:
        return gettext("%(tutor)s v%(number)s") % {"tutor": self.tutor, "number": self.number}


class Experiment(models.Model):
    """An A/B test between versions of one tutor (the contract's
    Experiments): 2 to 4 arms, each a version with a weight. While it runs,
    each student gets one arm's version (tutoring.experiments). Only
    tutoring.experiments changes its state."""

    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        RUNNING = "running", _("Running")
        STOPPED = "stopped", _("Stopped")

    tutor = models.ForeignKey(
        Tutor, on_delete=models.PROTECT, related_name="experiments", verbose_name=_("tutor")
    )
    name = models.CharField(_("name"), max_length=200)
    hypothesis = models.TextField(
        _("hypothesis"), blank=True, help_text=_("What the new version should improve.")
    )
    state = models.CharField(
        _("state"), max_length=16, choices=State.choices, default=State.DRAFT, editable=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True, editable=False)
    stopped_at = models.DateTimeField(_("stopped at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("experiment")
        verbose_name_plural = _("experiments")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tutor"],
                condition=models.Q(state="running"),
                name="experiment_one_running_per_tutor",
                violation_error_message=_("This tutor already has a running experiment."),
            ),
            models.CheckConstraint(
                condition=models.Q(state__in=["draft", "running", "stopped"]), name="experiment_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ExperimentArm(models.Model):
    """One arm: a version of the experiment's tutor and the share of
    students (`weight`, percent) it gets. The first arm (`position` 0) is
    the one the others are compared with, and takes the students of an arm
    the guardrail halted."""

    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="arms", verbose_name=_("experiment")
    )
    position = models.PositiveSmallIntegerField(
        _("arm"), choices=[(0, "A"), (1, "B"), (2, "C"), (3, "D")], help_text=_("A is the first arm.")
    )
    version = models.ForeignKey(
        TutorVersion, on_delete=models.PROTECT, related_name="+", verbose_name=_("version")
    )
    weight = models.PositiveSmallIntegerField(_("weight"), help_text=_("Percent of the students."))
    # Set by the guardrail (tutoring.experiments.guard): from then on the
    # arm gets no students; `halt_figures` are the figures it was halted on.
    halted_at = models.DateTimeField(_("halted at"), null=True, blank=True, editable=False)
    halt_figures = models.JSONField(_("halt figures"), default=dict, blank=True, editable=False)

    class Meta:
        verbose_name = _("experiment arm")
        verbose_name_plural = _("experiment arms")
        ordering = ["experiment", "position"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "position"], name="experiment_arm_position_unique"),
            models.UniqueConstraint(fields=["experiment", "version"], name="experiment_arm_version_unique"),
            models.CheckConstraint(
                condition=models.Q(weight__gte=1, weight__lte=100), name="experiment_arm_weight_1_100"
            ),
            models.CheckConstraint(condition=models.Q(position__lte=3), name="experiment_arm_at_most_4"),
        ]

    def __str__(self) -> str:
        return gettext("Arm %(letter)s") % {"letter": self.letter}

    @property
    def letter(self) -> str:
        return self.get_position_display()

    @property
    def label(self) -> dict[str, int | str]:
        """The arm as AI-Core, the ML API and the exports name it."""
        return {"experiment": self.experiment_id, "arm": self.letter}


class ExperimentEvent(models.Model):
    """Each state change of an experiment: what, who (null: the guardrail)
    and when, with its figures."""

    class Action(models.TextChoices):
        STARTED = "started", _("Started")
        STOPPED = "stopped", _("Stopped")
        PROMOTED = "promoted", _("Promoted")
        ARM_HALTED = "arm_halted", _("Arm halted by the guardrail")

    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="events", verbose_name=_("experiment")
    )
    action = models.CharField(_("action"), max_length=16, choices=Action.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    at = models.DateTimeField(_("at"), default=timezone.now)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("experiment event")
        verbose_name_plural = _("experiment events")
        ordering = ["experiment", "at", "id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.at:%Y-%m-%d %H:%M}"
