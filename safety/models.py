"""What is checked (term lists), what each category does (policies), and
what was found (flags, with their review)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class Category(models.TextChoices):
    SELF_HARM = "self_harm", "Self-harm"
    SEXUAL = "sexual", "Sexual"
    VIOLENCE = "violence", "Violence"
    HATE = "hate", "Hate"
    HARASSMENT = "harassment", "Harassment"
    ILLICIT = "illicit", "Illicit (drugs, weapons, crime)"
    PROFANITY = "profanity", "Profanity"


class Action(models.TextChoices):
    """Strictest first: when several categories are found, the strictest action wins."""

    BLOCK = "block", "Block"
    RESPOND = "respond", "Respond with the safe text"
    FLAG = "flag", "Flag for review"
    ALLOW = "allow", "Allow"


class Stage(models.TextChoices):
    INPUT = "input", "Student message"
    OUTPUT = "output", "Tutor reply"


class Term(models.Model):
    """One entry of a category's list, matched against the folded text
    (safety.rules): lowercase, `ё` as `е`, zero-width characters and
    separators inside words removed, look-alike letters in Cyrillic words
    made Cyrillic."""

    class Kind(models.TextChoices):
        STEM = "stem", "Stem: words that start with it (any ending)"
        WORD = "word", "Word or phrase: exactly these words"
        PATTERN = "pattern", "Pattern: a regular expression"

    category = models.CharField(max_length=16, choices=Category.choices)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.STEM)
    text = models.CharField(max_length=200)
    # An exception un-flags what it covers in its category ("убить время").
    exception = models.BooleanField(
        default=False, help_text="Ordinary text that contains a listed term and must not be flagged."
    )
    is_active = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category", "text"]
        constraints = [
            models.UniqueConstraint(fields=["category", "kind", "text"], name="safety_term_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.category}: {self.text}"

    def clean(self) -> None:
        from .rules import fold, pattern_error

        if self.kind == self.Kind.PATTERN:
            error = pattern_error(self.text)
            if error:
                raise ValidationError({"text": error})
        elif len(fold(self.text).strip()) < 2:
            raise ValidationError({"text": "A term needs at least two letters once folded."})


class Policy(models.Model):
    """What a category does, in both directions, and what the student sees instead."""

    category = models.CharField(max_length=16, choices=Category.choices, unique=True)
    action = models.CharField(max_length=8, choices=Action.choices)
    severity = models.PositiveSmallIntegerField(help_text="Higher first in the review queue.")
    safe_text_ru = models.TextField(help_text="What the student gets instead (Russian).")
    safe_text_en = models.TextField(help_text="What the student gets instead (English).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-severity"]
        verbose_name_plural = "policies"

    def __str__(self) -> str:
        return f"{self.get_category_display()}: {self.action}"


class Flag(models.Model):
    """One check that found something (or could not check). Never deleted."""

    class Review(models.TextChoices):
        PENDING = "pending", "Pending"
        CONFIRMED = "confirmed", "Confirmed"
        DISMISSED = "dismissed", "Dismissed"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    stage = models.CharField(max_length=8, choices=Stage.choices)
    categories = models.JSONField(default=list, blank=True)
    # The most severe of `categories` ("" when only unchecked).
    category = models.CharField(max_length=16, choices=Category.choices, blank=True)
    severity = models.PositiveSmallIntegerField(default=0)
    action = models.CharField(max_length=8, choices=Action.choices)
    providers = models.CharField(max_length=100, help_text="The checks that found it.")
    scores = models.JSONField(default=dict, blank=True)
    # A provider failed and MODERATION_ON_ERROR let the text through.
    unchecked = models.BooleanField(default=False)
    text = models.TextField()
    student = models.CharField(max_length=64, blank=True, help_text="The student's pseudonymous key.")
    tutor = models.ForeignKey(
        "tutoring.Tutor", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    chat = models.ForeignKey("chats.Chat", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    message = models.ForeignKey(
        "chats.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The user message of the exchange (kept when it is gone): what keeps the
    # exchange out of every training output (feedback.prompt_message_id).
    exchange = models.BigIntegerField(null=True, blank=True, db_index=True)
    review = models.CharField(max_length=16, choices=Review.choices, default=Review.PENDING)
    review_note = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-severity", "created_at", "id"]
        indexes = [models.Index(fields=["review", "-severity", "created_at"], name="safety_flag_queue_idx")]

    def __str__(self) -> str:
        return f"Flag {self.pk}: {self.category or 'unchecked'} ({self.stage})"
