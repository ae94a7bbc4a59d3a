from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class Chat(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chats", verbose_name=_("user")
    )
    tutor = models.ForeignKey(
        "tutoring.Tutor", on_delete=models.PROTECT, related_name="chats", verbose_name=_("tutor")
    )
    title = models.CharField(_("title"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_message_at = models.DateTimeField(_("last message at"), null=True, blank=True)
    # Set by the first regeneration in the chat (with the chat's touch, no
    # statement more): until then every reply is the only one to its
    # message, and a page of messages needs no query for variants.
    has_variants = models.BooleanField(_("has variants"), default=False, db_default=False, editable=False)

    class Meta:
        verbose_name = _("chat")
        verbose_name_plural = _("chats")
        ordering = [Coalesce("last_message_at", "created_at").desc(), "-id"]
        indexes = [
            # "My chats, most recently active first".
            models.Index(
                "user",
                Coalesce("last_message_at", "created_at").desc(),
                models.F("id").desc(),
                name="chat_user_activity_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.title or gettext("Chat %(id)s") % {"id": self.pk}


class ReplyStatus(models.TextChoices):
    """Where a user message stands (not stored: chats.selectors.annotate_messages
    derives it from its replies, `reply_error` and the reply being generated)."""

    ANSWERED = "answered"
    PENDING = "pending"
    FAILED = "failed"


class Intent(models.TextChoices):
    """What a student asks of the tutor with a message."""

    QUESTION = "question", _("Question")
    HINT = "hint", _("Hint")
    NEXT_STEP = "next_step", _("Next step")
    CHECK_ANSWER = "check_answer", _("Check my answer")
    SHOW_SOLUTION = "show_solution", _("Show the solution")


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", _("User")
        ASSISTANT = "assistant", _("Assistant")

    class Moderation(models.TextChoices):
        """Why a reply is not what AI-Core wrote (safety); empty when it is."""

        SAFE_REPLY = "safe_reply", _("Safe reply (AI-Core not asked)")
        WITHHELD = "withheld", _("Withheld (the generated reply was replaced)")

    # The (chat, id) index below serves every message query, so the FK's own
    # single-column index would be redundant.
    chat = models.ForeignKey(
        Chat, on_delete=models.CASCADE, related_name="messages", db_index=False, verbose_name=_("chat")
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    content = models.TextField(_("content"))
    attachments = models.JSONField(_("attachments"), default=list, blank=True)
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    # The user message an assistant message answers. Several replies to one
    # message are its variants (regenerate); exactly one of them is current
    # (`is_current`, a partial unique constraint). User messages are always
    # current. Only current messages are shown and sent to AI-Core as history.
    reply_to = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="replies",
        verbose_name=_("reply to"),
    )
    # Database defaults too: rows inserted by SQL (bulk loads, the benchmark) get them.
    is_current = models.BooleanField(_("is current"), default=True, db_default=True)
    # On a user message: the error code of the last failed attempt to answer
    # it (empty once answered, or before any failure). See reply_status().
    reply_error = models.CharField(_("reply error"), max_length=64, blank=True, default="", db_default="")
    # The tutor version that produced an assistant message (null on user
    # messages, and on replies saved before versions were kept).
    tutor_version = models.ForeignKey(
        "tutoring.TutorVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="replies",
        verbose_name=_("tutor version"),
    )
    # The experiment arm whose version produced an assistant message (null
    # outside experiments, and on user messages).
    experiment_arm = models.ForeignKey(
        "tutoring.ExperimentArm",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="replies",
        verbose_name=_("experiment arm"),
    )
    # On assistant messages: what AI-Core reported using (null when it did
    # not say) and how long the backend waited for it. Null on user messages.
    tokens_used = models.PositiveIntegerField(_("tokens used"), null=True, blank=True)
    latency_ms = models.PositiveIntegerField(_("latency ms"), null=True, blank=True)
    moderation = models.CharField(
        _("moderation"), max_length=16, choices=Moderation.choices, blank=True, default="", db_default=""
    )
    # On user messages: what the student asked the tutor to do (the
    # contract's `intent`); empty on assistant messages.
    intent = models.CharField(
        _("intent"), max_length=16, choices=Intent.choices, blank=True, default="", db_default=""
    )
    # Set by the send flow to the moment the chat's last_message_at records.
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["id"]
        indexes = [models.Index(fields=["chat", "id"], name="message_chat_id_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role__in=["user", "assistant"]), name="message_role_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(role="assistant") | models.Q(reply_to__isnull=True),
                name="message_only_assistant_replies",
            ),
            models.CheckConstraint(
                condition=models.Q(role="assistant") | models.Q(is_current=True),
                name="message_user_always_current",
            ),
            models.UniqueConstraint(
                fields=["reply_to"], condition=models.Q(is_current=True), name="message_one_current_reply"
            ),
        ]

    # Not columns: set by the selectors (annotate_messages) and the reply flow.
    reply_status: str  # a user message's: answered, pending or failed
    variant: dict[str, int] | None  # a reply's place among its siblings

    def __str__(self) -> str:
        return gettext("%(role)s message %(id)s") % {"role": self.get_role_display(), "id": self.pk}


class IdempotencyKey(models.Model):
    """A client's `Idempotency-Key` on a send, and the response it got."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress"
        DONE = "done"
        # The user message was saved but got no reply: a retry answers it.
        FAILED = "failed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # Bound once the send has saved its user message, so a retry after any
    # failure answers that message instead of saving a second copy. Gone
    # with the message when the chat is cleared.
    user_message = models.ForeignKey(
        Message, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text=_("SHA-256 of the chat and the body."))
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.key} ({self.state})"
