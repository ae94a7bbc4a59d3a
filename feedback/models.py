from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _


class Feedback(models.Model):
    class FeedbackType(models.TextChoices):
        DETAILED = "detailed", _("Detailed")
        QUICK = "quick", _("Quick")

    class QuickReaction(models.TextChoices):
        UNDERSTOOD = "understood", _("Understood")
        TOO_HARD = "too_hard", _("Too hard")
        NEED_MORE_EXAMPLES = "need_more_examples", _("Need more examples")
        TOO_EASY = "too_easy", _("Too easy")
        INCORRECT = "incorrect", _("Incorrect")

    # Null once the author was erased (accounts.services.user_erase keeps
    # consented feedback without any link to the person). PROTECT: only that
    # service deletes a user with feedback, never a plain cascade.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="feedback",
        verbose_name=_("user"),
    )
    # Feedback outlives its chat and message: the links become null and the
    # copies below keep what the ML team needs.
    chat = models.ForeignKey(
        "chats.Chat",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("chat"),
    )
    message = models.ForeignKey(
        "chats.Message",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="feedback",
        verbose_name=_("message"),
    )
    tutor = models.ForeignKey(
        "tutoring.Tutor", on_delete=models.PROTECT, related_name="feedback", verbose_name=_("tutor")
    )
    # Part of the snapshot: the version that produced the rated reply.
    tutor_version = models.ForeignKey(
        "tutoring.TutorVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="feedback",
        verbose_name=_("tutor version"),
    )
    # The experiment arm that produced the rated reply (null outside experiments).
    experiment_arm = models.ForeignKey(
        "tutoring.ExperimentArm",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("experiment arm"),
    )
    feedback_type = models.CharField(_("feedback type"), max_length=16, choices=FeedbackType.choices)
    rating = models.PositiveSmallIntegerField(_("rating"), null=True, blank=True)
    positive_text = models.TextField(_("positive text"), blank=True)
    improvement_text = models.TextField(_("improvement text"), blank=True)
    quick_reaction = models.CharField(
        _("quick reaction"), max_length=32, choices=QuickReaction.choices, blank=True
    )
    allow_training = models.BooleanField(_("allow training"), default=False)
    processed = models.BooleanField(_("processed"), default=False)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    processed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("processed by"),
    )
    reply_content = models.TextField(
        _("reply content"), help_text=_("The assistant reply this feedback rates.")
    )
    reply_metadata = models.JSONField(_("reply metadata"), default=dict, blank=True)
    prompt_content = models.TextField(
        _("prompt content"), blank=True, help_text=_("The user message that prompted the reply.")
    )
    prompt_attachments = models.JSONField(
        _("prompt attachments"),
        default=list,
        blank=True,
        help_text=_(
            "What that message showed: each upload's kind, type, size, pixels and SHA-256 (no name, no file)."
        ),
    )
    # The id of that user message, kept after it is gone: feedback on two
    # variants of one reply share it (preference pairs).
    prompt_message_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    history = models.JSONField(
        _("history"),
        default=list,
        blank=True,
        help_text=_("The conversation before that user message, as AI-Core got it ([{role, content}])."),
    )
    # Set when a training export took the item (feedback.training): the
    # export's id, so a batch can be written again if its download failed.
    export_batch = models.UUIDField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = pgettext_lazy("one", "feedback")
        verbose_name_plural = pgettext_lazy("many", "feedback")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "message", "feedback_type"], name="feedback_one_per_user_message_type"
            ),
            models.CheckConstraint(
                condition=models.Q(rating__isnull=True) | models.Q(rating__gte=1, rating__lte=5),
                name="feedback_rating_1_5",
            ),
            models.CheckConstraint(
                condition=~models.Q(feedback_type="detailed") | models.Q(rating__isnull=False),
                name="feedback_detailed_has_rating",
            ),
            models.CheckConstraint(
                condition=~models.Q(feedback_type="quick") | ~models.Q(quick_reaction=""),
                name="feedback_quick_has_reaction",
            ),
            models.CheckConstraint(
                condition=models.Q(feedback_type__in=["detailed", "quick"]),
                name="feedback_type_valid",
            ),
        ]
        indexes = [
            # The tutor's rating aggregate and the ML team's queue.
            models.Index(fields=["tutor", "feedback_type"], name="feedback_tutor_type_idx"),
            models.Index(fields=["processed", "created_at"], name="feedback_queue_idx"),
            models.Index(fields=["user", "-created_at"], name="feedback_user_recent_idx"),
        ]

    def __str__(self) -> str:
        return gettext("%(type)s feedback %(id)s") % {"type": self.get_feedback_type_display(), "id": self.pk}


class ConsentRevocation(models.Model):
    """Feedback the ML team had processed and may no longer use: its consent
    was withdrawn (`revoked`) or its author erased (`erased`). The ML team
    reads this log to purge the item from their data; the feedback itself
    may be gone, so its id is kept as a plain number."""

    class Reason(models.TextChoices):
        REVOKED = "revoked", _("Consent revoked")
        ERASED = "erased", _("Author erased")

    feedback_id = models.BigIntegerField()
    revoked_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=16, choices=Reason.choices)

    class Meta:
        ordering = ["revoked_at", "id"]
        indexes = [models.Index(fields=["revoked_at", "id"], name="consent_revocation_since_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(reason__in=["revoked", "erased"]), name="consent_revocation_reason_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"Feedback {self.feedback_id} {self.reason}"
