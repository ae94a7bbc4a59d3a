from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from chats.serializers import MAX_DB_ID
from tutor_platform.fields import StrictBooleanField, StrictCharField, StrictIntegerField
from tutor_platform.pseudonyms import student_key
from tutor_platform.serializers import ModelSerializer
from tutoring.models import Experiment, ExperimentEvent

from .models import ConsentRevocation, Feedback

TEXT_MAX_CHARS = 5000


class FeedbackSerializer(ModelSerializer):
    # Declared by hand: DRF drops allow_blank from read-only model fields, and
    # detailed feedback has an empty reaction.
    quick_reaction = serializers.ChoiceField(
        choices=Feedback.QuickReaction.choices, allow_blank=True, read_only=True
    )

    class Meta:
        model = Feedback
        fields = [
            "id",
            "chat",
            "message",
            "tutor",
            "feedback_type",
            "rating",
            "positive_text",
            "improvement_text",
            "quick_reaction",
            "allow_training",
            "processed",
            "created_at",
        ]
        read_only_fields = fields


class FeedbackSubmitSerializer(serializers.Serializer):
    """A new feedback, or an update of the one already given for this (message, type).

    An update changes only the fields sent: omitted texts and `allow_training`
    keep their values (on creation they default to empty and false).
    """

    message = StrictIntegerField(
        min_value=1, max_value=MAX_DB_ID, help_text="Id of an assistant message in one of your chats."
    )
    feedback_type = serializers.ChoiceField(choices=Feedback.FeedbackType.choices)
    rating = StrictIntegerField(
        min_value=1,
        max_value=5,
        required=False,
        allow_null=True,
        help_text="Required for detailed feedback; quick feedback has none.",
    )
    positive_text = StrictCharField(
        max_length=TEXT_MAX_CHARS, required=False, allow_blank=True, help_text="Omitted: unchanged."
    )
    improvement_text = StrictCharField(
        max_length=TEXT_MAX_CHARS, required=False, allow_blank=True, help_text="Omitted: unchanged."
    )
    quick_reaction = serializers.ChoiceField(
        choices=Feedback.QuickReaction.choices,
        required=False,
        allow_blank=True,
        help_text="Required for quick feedback; detailed feedback has none.",
    )
    allow_training = StrictBooleanField(
        required=False, help_text="Omitted: unchanged (false for a new feedback)."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        rating, reaction = attrs.get("rating"), attrs.get("quick_reaction")
        if attrs["feedback_type"] == Feedback.FeedbackType.DETAILED:
            if rating is None:
                raise serializers.ValidationError({"rating": ["A rating is required for detailed feedback."]})
            if reaction:
                raise serializers.ValidationError(
                    {
                        "quick_reaction": [
                            "Detailed feedback has no quick reaction; send it as quick feedback."
                        ]
                    }
                )
            attrs.pop("quick_reaction", None)
        else:
            if not reaction:
                raise serializers.ValidationError(
                    {"quick_reaction": ["A reaction is required for quick feedback."]}
                )
            if rating is not None:
                raise serializers.ValidationError(
                    {"rating": ["Quick feedback has no rating; send it as detailed feedback."]}
                )
            attrs.pop("rating", None)
        return attrs


class TutorTrainingSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    model_id = serializers.CharField(
        help_text="The tutor's current model (the reply's own is in its metadata)."
    )


class ReplySerializer(serializers.Serializer):
    content = serializers.CharField(source="reply_content")
    metadata = serializers.DictField(source="reply_metadata")


class StudentKeyField(serializers.Field):
    """The pseudonymous key of the feedback's author (null once erased)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "help_text", "A stable, opaque key of the student; null once the student was erased."
        )
        super().__init__(source="user_id", read_only=True, allow_null=True, **kwargs)

    def to_representation(self, value: int | None) -> str | None:
        return student_key(value)


extend_schema_field({"type": "string", "nullable": True, "example": "s_3f9a0c2d7b1e4a5f6c8d9e0a"})(
    StudentKeyField
)


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "description": (
            "The learner context AI-Core got with the rated reply (profile, teaching_mode, intent, "
            "progress_minutes, struggle); null for replies from before it existed."
        ),
    }
)
class LearnerBlockField(serializers.Field):
    """The `learner` block a reply's metadata keeps."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="reply_metadata", read_only=True, **kwargs)

    def to_representation(self, metadata: Any) -> dict[str, Any] | None:
        learner = metadata.get("learner") if isinstance(metadata, dict) else None
        return learner if isinstance(learner, dict) else None


class ExperimentArmLabelSerializer(serializers.Serializer):
    """Which experiment arm wrote a reply."""

    experiment = serializers.IntegerField(help_text="The experiment's id (`/api/v1/ml/experiments/{id}/`).")
    arm = serializers.ChoiceField(choices=["A", "B", "C", "D"], help_text="The arm; A is the first.")


class MLFeedbackSerializer(FeedbackSerializer):
    """A feedback item with its training context: tutor, reply and prompt."""

    student = StudentKeyField()
    tutor = TutorTrainingSerializer()
    tutor_version = serializers.IntegerField(
        source="tutor_version.number",
        read_only=True,
        allow_null=True,
        help_text="The tutor version that wrote the rated reply (null for replies older than versions).",
    )
    experiment_arm = ExperimentArmLabelSerializer(
        source="experiment_arm.label",
        read_only=True,
        allow_null=True,
        help_text="The experiment arm that wrote the rated reply; null outside experiments.",
    )
    reply = ReplySerializer(source="*")
    learner = LearnerBlockField()
    prompt = serializers.CharField(
        source="prompt_content", help_text="The user message that preceded the reply."
    )

    class Meta(FeedbackSerializer.Meta):
        fields = [
            *FeedbackSerializer.Meta.fields,
            "student",
            "tutor_version",
            "experiment_arm",
            "processed_at",
            "reply",
            "learner",
            "prompt",
        ]
        read_only_fields = fields


class MarkProcessedSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=MAX_DB_ID),
        allow_empty=False,
        max_length=1000,
    )


class MarkProcessedResultSerializer(serializers.Serializer):
    updated = serializers.IntegerField(help_text="Items that this call marked processed.")
    not_found = serializers.ListField(child=serializers.IntegerField(), help_text="Ids with no feedback.")


class RevokeConsentResultSerializer(serializers.Serializer):
    updated = serializers.IntegerField(
        help_text="Feedback items whose `allow_training` this call turned off."
    )


class ConsentRevocationSerializer(ModelSerializer):
    class Meta:
        model = ConsentRevocation
        fields = ["feedback_id", "revoked_at", "reason"]
        read_only_fields = fields


class ConsentRevocationListSerializer(serializers.Serializer):
    results = ConsentRevocationSerializer(many=True)


class ReactionCountsSerializer(serializers.Serializer):
    understood = serializers.IntegerField()
    too_hard = serializers.IntegerField()
    need_more_examples = serializers.IntegerField()
    too_easy = serializers.IntegerField()
    incorrect = serializers.IntegerField()


class ReactionSharesSerializer(serializers.Serializer):
    understood = serializers.FloatField()
    too_hard = serializers.FloatField()
    need_more_examples = serializers.FloatField()
    too_easy = serializers.FloatField()
    incorrect = serializers.FloatField()


class StruggleSharesSerializer(serializers.Serializer):
    none = serializers.FloatField()
    some = serializers.FloatField()
    high = serializers.FloatField()


class TutorVersionStatsSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    system_prompt = serializers.CharField()
    model_id = serializers.CharField()
    knowledge_base_id = serializers.CharField(allow_blank=True)
    note = serializers.CharField(allow_blank=True, help_text="The editor's comment: what changed and why.")
    created_by = serializers.CharField(
        source="created_by.username", allow_null=True, help_text="The editor's username (null if unknown)."
    )
    created_at = serializers.DateTimeField()
    replies = serializers.IntegerField(source="stats.replies", help_text="Assistant messages it produced.")
    detailed_count = serializers.IntegerField(source="stats.detailed_count")
    rating_avg = serializers.DecimalField(
        source="stats.rating_avg",
        max_digits=3,
        decimal_places=2,
        allow_null=True,
        help_text="Mean detailed rating of its replies, two places; null without ratings.",
    )
    reactions = ReactionCountsSerializer(
        source="stats.reactions", help_text="Quick reactions to its replies."
    )
    struggle = StruggleSharesSerializer(
        source="stats.struggle",
        help_text=(
            "The share of its replies given at each struggle level of the learner context (0..1); "
            "replies from before learner context existed count in none."
        ),
    )


class ChatTurnSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["user", "assistant"])
    content = serializers.CharField()


class PairSideSerializer(serializers.Serializer):
    content = serializers.CharField()
    tutor_version = serializers.IntegerField(allow_null=True, help_text="The tutor version that wrote it.")
    experiment_arm = ExperimentArmLabelSerializer(
        allow_null=True, help_text="The experiment arm that wrote it; null outside experiments."
    )
    metadata = serializers.DictField(help_text="Everything AI-Core returned besides the text.")
    rating = serializers.IntegerField(allow_null=True, help_text="Its detailed rating (`rating` pairs).")


class PairTutorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class PreferencePairSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="`<source>:<chosen>:<rejected>`, stable.")
    source = serializers.ChoiceField(
        choices=["rating", "selection"],
        help_text=(
            "`rating`: two variants rated differently, both with consent; `selection`: the student kept "
            "an earlier variant over the newest one, with the profile's consent on."
        ),
    )
    student = serializers.CharField(allow_null=True, help_text="The student's pseudonymous key.")
    tutor = PairTutorSerializer()
    prompt = ChatTurnSerializer(
        many=True, help_text="The conversation as AI-Core got it, the student's message last."
    )
    chosen = PairSideSerializer()
    rejected = PairSideSerializer()
    created_at = serializers.DateTimeField()


class PreferencePairQuerySerializer(serializers.Serializer):
    def to_internal_value(self, data: Any) -> dict[str, Any]:
        # A present but empty parameter (`?created_since=`) is a mistake, not "no filter".
        blank = {name: ["This parameter may not be empty."] for name in self.fields if data.get(name) == ""}
        if blank:
            raise serializers.ValidationError(blank)
        return super().to_internal_value(data)

    # Query strings are text: plain IntegerFields ("12" is 12, "x" a 400).
    tutor = serializers.IntegerField(required=False, min_value=1, max_value=MAX_DB_ID)
    tutor_version = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**31 - 1,
        help_text="The chosen answer's version; use with `tutor`.",
    )
    created_since = serializers.DateTimeField(
        required=False, help_text="The chosen answer given at or after this."
    )


class ArmStatsSerializer(serializers.Serializer):
    """One arm of an experiment with its figures (feedback.experiments)."""

    arm = serializers.CharField(source="letter", help_text="A, B, C or D; A is the first arm.")
    version = serializers.IntegerField(help_text="The tutor version number the arm answers with.")
    weight = serializers.IntegerField(help_text="Percent of the students assigned to it.")
    halted_at = serializers.DateTimeField(
        allow_null=True, help_text="When the guardrail stopped sending it students; null while it gets them."
    )
    halt_figures = serializers.DictField(
        help_text="What the guardrail halted it on: `figure`, `value`, `first_arm`, `margin`; {} if never."
    )
    students = serializers.IntegerField()
    replies = serializers.IntegerField()
    rating_avg = serializers.DecimalField(max_digits=3, decimal_places=2, allow_null=True)
    rating_ci = serializers.ListField(
        child=serializers.DecimalField(max_digits=3, decimal_places=2),
        min_length=2,
        max_length=2,
        allow_null=True,
        help_text="95 % interval of `rating_avg` ([low, high], Student's t); null under 2 ratings.",
    )
    detailed_count = serializers.IntegerField()
    reaction_shares = ReactionSharesSerializer(help_text="Share of the replies that got each quick reaction.")
    regenerate_rate = serializers.FloatField(help_text="Share of the replies the student regenerated.")
    failure_rate = serializers.FloatField(
        help_text="(AI-Core failures + withheld replies) / (replies + AI-Core failures)."
    )
    latency_p50_ms = serializers.IntegerField(allow_null=True)
    latency_p95_ms = serializers.IntegerField(allow_null=True)
    struggle = StruggleSharesSerializer(help_text="Share of the replies given at each struggle level.")


class ExperimentEventSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=ExperimentEvent.Action.choices)
    by = serializers.CharField(
        source="by.username", allow_null=True, help_text="Who; null for the guardrail (or a deleted user)."
    )
    at = serializers.DateTimeField()
    details = serializers.DictField()


class ExperimentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    hypothesis = serializers.CharField()
    tutor = PairTutorSerializer()
    state = serializers.ChoiceField(choices=Experiment.State.choices)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    stopped_at = serializers.DateTimeField(allow_null=True)
    arms = ArmStatsSerializer(many=True, source="stats")
    events = ExperimentEventSerializer(many=True, source="events.all")
