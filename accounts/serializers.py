from typing import Any

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from tutor_platform.fields import StrictCharField, StrictIntegerField, StrictModelSerializer
from tutor_platform.serializers import datetimes
from tutor_platform.validators import validate_json_limits

from .models import USERNAME_VALIDATOR, LearnerLanguage, LearnerLevel, User, normalize_email

PREFERENCES_MAX_BYTES = 16 * 1024
PREFERENCES_MAX_DEPTH = 8


def validate_preferences(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise serializers.ValidationError("Preferences must be a JSON object.")
    validate_json_limits(
        value, what="Preferences", max_depth=PREFERENCES_MAX_DEPTH, max_bytes=PREFERENCES_MAX_BYTES
    )
    return value


def _check_password(password: str, user: User, field: str) -> None:
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise serializers.ValidationError({field: list(exc.messages)}) from exc


def validate_username_characters(value: str) -> None:
    # A plain function, so the schema shows no `pattern`: Python's `\w` takes
    # letters of every script, ECMAScript's (what clients would check) ASCII only.
    USERNAME_VALIDATOR(value)


class LearnerSerializer(serializers.Serializer):
    """What the tutor may know of how to talk to the student (sent to AI-Core
    with every question as `learner.profile`). Each field may be null (or
    empty goals): not said."""

    grade = StrictIntegerField(
        source="learner_grade", min_value=1, max_value=11, allow_null=True, required=False,
        help_text="School grade, 1 to 11.",
    )  # fmt: skip
    level = serializers.ChoiceField(
        source="learner_level", choices=LearnerLevel.choices, allow_null=True, required=False
    )
    language = serializers.ChoiceField(
        source="learner_language", choices=LearnerLanguage.choices, allow_null=True, required=False,
        help_text="The language the student wants to be taught in.",
    )  # fmt: skip
    goals = StrictCharField(
        source="learner_goals", max_length=500, allow_blank=True, required=False,
        help_text="What the student wants to reach, in their words (at most 500 characters).",
    )  # fmt: skip

    def to_representation(self, user: User) -> dict[str, Any]:
        return user.learner

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        if unknown:
            raise serializers.ValidationError({key: ["Unknown field."] for key in unknown})
        values = super().to_internal_value(data)
        # Null means "not said": stored as empty text where the column is text.
        text = {"learner_level", "learner_language", "learner_goals"}
        return {key: "" if value is None and key in text else value for key, value in values.items()}


class ProfileSerializer(StrictModelSerializer):
    """The user's profile. `full_name` and `username` can be changed."""

    learner = LearnerSerializer(
        source="*", required=False, help_text="How the tutor should teach you: sent with each question."
    )

    username = StrictCharField(
        max_length=150,
        validators=[validate_username_characters],
        help_text="Letters of any script, digits and `.`, `+`, `-`, `_`; unique regardless of case.",
    )

    class Meta:
        model = User
        fields = [
            "id",
            "email",
            "username",
            "full_name",
            "is_active",
            "preferences",
            "allow_training",
            "learner",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "email", "is_active", "preferences", "created_at", "updated_at"]
        extra_kwargs = {
            "allow_training": {
                "help_text": (
                    "Your standing consent to use your conversations for training. "
                    "POST /api/v1/feedback/revoke-consent/ also withdraws it from all your feedback."
                )
            }
        }

    def to_representation(self, user: User) -> dict[str, Any]:
        """The fields above, read straight off the user, as ChatSerializer
        does (GET /auth/me/ answers it on every screen); test_profile
        checks it gives DRF's JSON."""
        dates = datetimes(self)
        return {
            "id": user.pk,
            "email": user.email,
            "username": user.username,
            "full_name": user.full_name,
            "is_active": user.is_active,
            "preferences": user.preferences,
            "allow_training": user.allow_training,
            "learner": user.learner,
            "created_at": dates.to_representation(user.created_at),
            "updated_at": dates.to_representation(user.updated_at),
        }

    def validate_username(self, value: str) -> str:
        taken = User.objects.filter(username__iexact=value)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError("A user with that username already exists.")
        return value


class RegisterSerializer(ProfileSerializer):
    """A new student account. The password goes through the password validators."""

    password = StrictCharField(write_only=True, max_length=128, style={"input_type": "password"})

    learner = None  # set after registering, with PATCH /auth/me/
    to_representation = StrictModelSerializer.to_representation  # its own fields (the view answers a profile)

    class Meta(ProfileSerializer.Meta):
        fields = [*(name for name in ProfileSerializer.Meta.fields if name != "learner"), "password"]
        read_only_fields = ["id", "is_active", "preferences", "created_at", "updated_at"]
        # Uniqueness is checked case-insensitively in validate_email.
        extra_kwargs = {**ProfileSerializer.Meta.extra_kwargs, "email": {"validators": []}}

    def validate_email(self, value: str) -> str:
        value = normalize_email(value)
        if User.objects.filter(email__iexact=value).exists():
            raise serializers.ValidationError("A user with that email already exists.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        candidate = User(
            email=attrs["email"], username=attrs["username"], full_name=attrs.get("full_name", "")
        )
        _check_password(attrs["password"], candidate, "password")
        return attrs


class LoginSerializer(serializers.Serializer):
    email = StrictCharField(required=False, max_length=254)
    username = StrictCharField(required=False, max_length=254)
    password = StrictCharField(write_only=True, max_length=128, style={"input_type": "password"})

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("email") and not attrs.get("username"):
            raise serializers.ValidationError({"email": ["Provide an email or a username."]})
        return attrs


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class RefreshTokenSerializer(serializers.Serializer):
    refresh = StrictCharField()


class EraseAccountSerializer(serializers.Serializer):
    password = StrictCharField(write_only=True, max_length=128, help_text="Your current password.")

    def validate_password(self, value: str) -> str:
        if not self.context["user"].check_password(value):
            raise serializers.ValidationError("The password is wrong.")
        return value


class ChangePasswordSerializer(serializers.Serializer):
    old_password = StrictCharField(write_only=True, max_length=128)
    new_password = StrictCharField(write_only=True, max_length=128)

    def validate_old_password(self, value: str) -> str:
        if not self.context["user"].check_password(value):
            raise serializers.ValidationError("The old password is wrong.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        _check_password(attrs["new_password"], self.context["user"], "new_password")
        return attrs
