from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class Course(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    # New courses start hidden; an editor publishes them when they are ready.
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            # Case-insensitive for Cyrillic too on PostgreSQL; the admin form
            # also checks with Python's casefold, which SQLite's lower() is not.
            models.UniqueConstraint(
                Lower("name"),
                name="course_name_ci_unique",
                violation_error_message="A course with this name already exists.",
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
    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="tutors")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    current_version = models.OneToOneField(
        "TutorVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    is_active = models.BooleanField(default=False)
    # Computed from detailed feedback by feedback.services; never edited by hand.
    rating = models.DecimalField(max_digits=3, decimal_places=2, default=Decimal("0.00"))
    total_feedbacks = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
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


class TutorVersion(models.Model):
    """An immutable snapshot of what AI-Core gets for a tutor. Rows are only
    ever added (tutoring.services), never changed or deleted."""

    tutor = models.ForeignKey(Tutor, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    system_prompt = models.TextField(blank=True, help_text="Instructions sent to AI-Core with every message.")
    model_id = models.CharField(max_length=200, help_text="AI-Core model that answers for this tutor.")
    knowledge_base_id = models.CharField(max_length=200, blank=True)
    note = models.CharField(max_length=500, blank=True, help_text="What changed and why.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["tutor", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["tutor", "number"], name="tutor_version_number_unique"),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="tutor_version_number_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.tutor} v{self.number}"
