from django.conf import settings
from django.db import models
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _


class Progress(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="progress", verbose_name=_("user")
    )
    tutor = models.ForeignKey(
        "tutoring.Tutor", on_delete=models.PROTECT, related_name="progress", verbose_name=_("tutor")
    )
    total_minutes = models.PositiveIntegerField(_("total minutes"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = pgettext_lazy("one", "progress")
        verbose_name_plural = pgettext_lazy("many", "progress")
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "tutor"], name="progress_one_per_user_tutor"),
            models.CheckConstraint(condition=models.Q(total_minutes__gte=0), name="progress_minutes_gte_0"),
        ]

    def __str__(self) -> str:
        return gettext("%(user)s · %(tutor)s: %(minutes)s min") % {
            "user": self.user,
            "tutor": self.tutor,
            "minutes": self.total_minutes,
        }
