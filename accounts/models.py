from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, username: str, password: str | None, **extra) -> "User":
        if not email:
            raise ValueError("Users must have an email address.")
        if not username:
            raise ValueError("Users must have a username.")
        user = self.model(email=normalize_email(email), username=username, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, username: str, password: str | None = None, **extra) -> "User":
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, username, password, **extra)

    def create_superuser(self, email: str, username: str, password: str | None = None, **extra) -> "User":
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, username, password, **extra)

    def get_by_natural_key(self, email: str) -> "User":
        return self.get(email__iexact=email)


# Letters of any script (Russian names), digits and ./+/-/_. No "@": a login
# identifier with "@" is looked up as an email.
USERNAME_VALIDATOR = RegexValidator(
    r"^[\w.+-]+\Z",
    _("Enter a valid username: letters, digits and ./+/-/_ only."),
    code="invalid",
)


def normalize_email(email: str) -> str:
    return email.strip().lower()


class LearnerLevel(models.TextChoices):
    SCHOOL = "school", _("School")
    UNIVERSITY = "university", _("University")
    ADULT = "adult", _("Adult")


class LearnerLanguage(models.TextChoices):
    RU = "ru", _("Russian")
    EN = "en", _("English")


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(_("email"), max_length=254, unique=True)
    username = models.CharField(
        _("username"),
        max_length=150,
        validators=[USERNAME_VALIDATOR],
        help_text=_("Letters, digits and ./+/-/_ only. Unique regardless of case."),
    )
    full_name = models.CharField(_("full name"), max_length=255, blank=True)
    is_active = models.BooleanField(_("is active"), default=True)
    is_staff = models.BooleanField(_("is staff"), default=False, help_text=_("Can log in to the admin site."))
    preferences = models.JSONField(_("preferences"), default=dict, blank=True)
    allow_training = models.BooleanField(
        _("allow training"),
        default=False,
        help_text=_("The student's standing consent to use their conversations for training."),
    )
    # When the student last withdrew their consent (feedback.services): from
    # then on they are left out of experiment statistics. Cleared when they
    # give it again.
    consent_revoked_at = models.DateTimeField(_("consent revoked at"), null=True, blank=True, editable=False)
    # Staff's per-student quota override: null follows AI_DAILY_MESSAGES_PER_USER /
    # AI_DAILY_TOKENS_PER_USER, 0 is no limit.
    daily_messages_limit = models.PositiveIntegerField(
        _("daily messages limit"),
        null=True,
        blank=True,
        help_text=_("Replies per UTC day for this student. Empty: the platform's default; 0: no limit."),
    )
    daily_tokens_limit = models.PositiveBigIntegerField(
        _("daily tokens limit"),
        null=True,
        blank=True,
        help_text=_("Tokens per UTC day for this student. Empty: the platform's default; 0: no limit."),
    )
    # Learner context (the contract's `learner`): what the tutor may know of
    # how to talk to this student. Sent to AI-Core with every question.
    learner_grade = models.PositiveSmallIntegerField(
        _("grade"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(11)]
    )
    learner_level = models.CharField(
        _("level"), max_length=16, choices=LearnerLevel.choices, blank=True, default="", db_default=""
    )
    learner_language = models.CharField(
        _("language"), max_length=8, choices=LearnerLanguage.choices, blank=True, default="", db_default=""
    )
    learner_goals = models.CharField(_("goals"), max_length=500, blank=True, default="", db_default="")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    @property
    def learner(self) -> dict[str, object]:
        """The learner profile as the API shows it and AI-Core gets it: what
        was not said is null (goals: empty)."""
        return {
            "grade": self.learner_grade,
            "level": self.learner_level or None,
            "language": self.learner_language or None,
            "goals": self.learner_goals,
        }

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["username"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
            models.UniqueConstraint(Lower("username"), name="user_username_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = normalize_email(self.email)
