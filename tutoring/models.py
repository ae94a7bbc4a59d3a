from decimal import Decimal

from django.db import models


class Course(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Tutor(models.Model):
    # PROTECT: a tutor with chats or feedback is deactivated, never deleted,
    # so students keep their history and the ML team its training data.
    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="tutors")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    model_id = models.CharField(max_length=200, help_text="AI-Core model that answers for this tutor.")
    knowledge_base_id = models.CharField(max_length=200, blank=True)
    system_prompt = models.TextField(help_text="Instructions sent to AI-Core with every message.")
    is_active = models.BooleanField(default=True)
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
        return self.is_active and self.course.is_active
