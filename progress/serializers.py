from rest_framework import serializers

from tutor_platform.fields import StrictIntegerField
from tutor_platform.serializers import ModelSerializer
from tutoring.serializers import TutorBriefSerializer

from .models import Progress
from .services import MAX_MINUTES

MAX_ADD_MINUTES = 1440


class ProgressSerializer(ModelSerializer):
    tutor = TutorBriefSerializer(read_only=True)

    class Meta:
        model = Progress
        fields = ["tutor", "total_minutes", "updated_at"]
        read_only_fields = fields


class ProgressSetSerializer(serializers.Serializer):
    total_minutes = StrictIntegerField(min_value=0, max_value=MAX_MINUTES)


class ProgressAddSerializer(serializers.Serializer):
    minutes = StrictIntegerField(
        min_value=-MAX_ADD_MINUTES,
        max_value=MAX_ADD_MINUTES,
        help_text="Non-zero; negative subtracts (the total never goes below 0).",
    )

    def validate_minutes(self, value: int) -> int:
        if value == 0:
            raise serializers.ValidationError("Must not be zero.")
        return value
