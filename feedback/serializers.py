from typing import Any

from rest_framework import serializers

from chats.serializers import MAX_DB_ID
from tutor_platform.fields import StrictBooleanField, StrictCharField, StrictIntegerField

from .models import Feedback

TEXT_MAX_CHARS = 5000


class FeedbackSerializer(serializers.ModelSerializer):
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
    model_id = serializers.CharField()


class ReplySerializer(serializers.Serializer):
    content = serializers.CharField(source="reply_content")
    metadata = serializers.DictField(source="reply_metadata")


class MLFeedbackSerializer(FeedbackSerializer):
    """A feedback item with its training context: tutor, reply and prompt."""

    tutor = TutorTrainingSerializer()
    reply = ReplySerializer(source="*")
    prompt = serializers.CharField(
        source="prompt_content", help_text="The user message that preceded the reply."
    )

    class Meta(FeedbackSerializer.Meta):
        fields = [*FeedbackSerializer.Meta.fields, "processed_at", "reply", "prompt"]
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
