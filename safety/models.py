"""What is checked (term lists), what each category does (policies), and
what was found (flags, with their review)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class Category(models.TextChoices):
    SELF_HARM = "self_harm", _("Self-harm")
    SEXUAL = "sexual", _("Sexual")
    VIOLENCE = "violence", _("Violence")
    HATE = "hate", _("Hate")
    HARASSMENT = "harassment", _("Harassment")
    ILLICIT = "illicit", _("Illicit (drugs, weapons, crime)")
    PROFANITY = "profanity", _("Profanity")


class Action(models.TextChoices):
    """Strictest first: when several categories are found, the strictest action wins."""

    BLOCK = "block", _("Block")
    RESPOND = "respond", _("Respond with the safe text")
    FLAG = "flag", _("Flag for review")
    ALLOW = "allow", _("Allow")


class Stage(models.TextChoices):
    INPUT = "input", _("Student message")
    OUTPUT = "output", _("Tutor reply")


class Term(models.Model):
    """One entry of a category's list, matched against the folded text
    (safety.rules): lowercase, `ё` as `е`, zero-width characters and
    separators inside words removed, look-alike letters in Cyrillic words
    made Cyrillic."""

    class Kind(models.TextChoices):
        STEM = "stem", _("Stem: words that start with it (any ending)")
        WORD = "word", _("Word or phrase: exactly these words")
        PATTERN = "pattern", _("Pattern: a regular expression")

    category = models.CharField(_("category"), max_length=16, choices=Category.choices)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.STEM)
    text = models.CharField(_("text"), max_length=200)
    # An exception un-flags what it covers in its category ("убить время").
    exception = models.BooleanField(
        _("exception"),
        default=False,
        help_text=_("Ordinary text that contains a listed term and must not be flagged."),
    )
    is_active = models.BooleanField(_("is active"), default=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("term")
        verbose_name_plural = _("terms")
        ordering = ["category", "text"]
        constraints = [
            models.UniqueConstraint(fields=["category", "kind", "text"], name="safety_term_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_category_display()}: {self.text}"

    def clean(self) -> None:
        from .rules import fold, pattern_error

        if self.kind == self.Kind.PATTERN:
            error = pattern_error(self.text)
            if error:
                raise ValidationError({"text": error})
        elif len(fold(self.text).strip()) < 2:
            raise ValidationError({"text": gettext("A term needs at least two letters once folded.")})


class Policy(models.Model):
    """What a category does, in both directions, and what the student sees instead."""

    category = models.CharField(_("category"), max_length=16, choices=Category.choices, unique=True)
    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    severity = models.PositiveSmallIntegerField(
        _("severity"), help_text=_("Higher first in the review queue.")
    )
    safe_text_ru = models.TextField(
        _("safe text ru"), help_text=_("What the student gets instead (Russian).")
    )
    safe_text_en = models.TextField(
        _("safe text en"), help_text=_("What the student gets instead (English).")
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("policy")
        verbose_name_plural = _("policies")
        ordering = ["-severity"]

    def __str__(self) -> str:
        return f"{self.get_category_display()}: {self.get_action_display()}"


class Flag(models.Model):
    """One check that found something (or could not check). Never deleted."""

    class Review(models.TextChoices):
        PENDING = "pending", _("Pending")
        CONFIRMED = "confirmed", _("Confirmed")
        DISMISSED = "dismissed", _("Dismissed")

    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    stage = models.CharField(_("stage"), max_length=8, choices=Stage.choices)
    categories = models.JSONField(_("categories"), default=list, blank=True)
    # The most severe of `categories` ("" when only unchecked).
    category = models.CharField(_("category"), max_length=16, choices=Category.choices, blank=True)
    severity = models.PositiveSmallIntegerField(_("severity"), default=0)
    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    providers = models.CharField(_("providers"), max_length=100, help_text=_("The checks that found it."))
    scores = models.JSONField(_("scores"), default=dict, blank=True)
    # A provider failed and MODERATION_ON_ERROR let the text through.
    unchecked = models.BooleanField(_("unchecked"), default=False)
    text = models.TextField(_("text"))
    student = models.CharField(
        _("student"), max_length=64, blank=True, help_text=_("The student's pseudonymous key.")
    )
    tutor = models.ForeignKey(
        "tutoring.Tutor",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("tutor"),
    )
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
        related_name="+",
        verbose_name=_("message"),
    )
    # The user message of the exchange (kept when it is gone): what keeps the
    # exchange out of every training output (feedback.prompt_message_id).
    exchange = models.BigIntegerField(_("exchange"), null=True, blank=True, db_index=True)
    review = models.CharField(_("review"), max_length=16, choices=Review.choices, default=Review.PENDING)
    review_note = models.TextField(_("review note"), blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("flag")
        verbose_name_plural = _("flags")
        ordering = ["-severity", "created_at", "id"]
        indexes = [models.Index(fields=["review", "-severity", "created_at"], name="safety_flag_queue_idx")]

    def __str__(self) -> str:
        return gettext("Flag %(id)s: %(category)s (%(stage)s)") % {
            "id": self.pk,
            "category": self.get_category_display() if self.category else gettext("unchecked"),
            "stage": self.get_stage_display(),
        }
