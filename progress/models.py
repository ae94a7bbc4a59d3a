from django.conf import settings
from django.db import models


class Progress(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="progress")
    tutor = models.ForeignKey("tutoring.Tutor", on_delete=models.PROTECT, related_name="progress")
    total_minutes = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        verbose_name_plural = "progress"
        constraints = [
            models.UniqueConstraint(fields=["user", "tutor"], name="progress_one_per_user_tutor"),
            models.CheckConstraint(condition=models.Q(total_minutes__gte=0), name="progress_minutes_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.tutor}: {self.total_minutes} min"
