from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from tutor_platform.schema import STAFF_ONLY
from tutor_platform.serializers import ModelSerializer

from .models import Course, Tutor


class CourseSerializer(ModelSerializer):
    tutors_count = serializers.IntegerField(read_only=True, help_text="Active tutors in the course.")

    class Meta:
        model = Course
        fields = ["id", "name", "slug", "description", "tutors_count"]


class CourseBriefSerializer(ModelSerializer):
    class Meta:
        model = Course
        fields = ["id", "name", "slug"]


class TutorSerializer(ModelSerializer):
    course = CourseBriefSerializer(read_only=True)
    rating = serializers.DecimalField(
        max_digits=3,
        decimal_places=2,
        read_only=True,
        help_text='Mean rating of detailed feedback, 0 to 5, as a decimal string with two places ("4.50").',
    )

    class Meta:
        model = Tutor
        fields = ["id", "course", "name", "description", "rating", "total_feedbacks"]
        read_only_fields = fields


@extend_schema_serializer(component_name="Tutor")
class StaffTutorSerializer(TutorSerializer):
    """Adds the internal fields, for staff only. The schema's `Tutor` is this
    one, with those fields optional (see tutor_platform.schema)."""

    system_prompt = serializers.CharField(
        read_only=True, help_text=f"{STAFF_ONLY} The instructions AI-Core gets with every message."
    )
    model_id = serializers.CharField(read_only=True, help_text=f"{STAFF_ONLY} The model AI-Core runs.")
    knowledge_base_id = serializers.CharField(
        read_only=True, help_text=f"{STAFF_ONLY} The knowledge base AI-Core searches."
    )
    version = serializers.IntegerField(
        source="current_version.number",
        read_only=True,
        allow_null=True,
        help_text=f"{STAFF_ONLY} The current version's number.",
    )

    class Meta(TutorSerializer.Meta):
        fields = [*TutorSerializer.Meta.fields, "system_prompt", "model_id", "knowledge_base_id", "version"]
        read_only_fields = fields


class TutorBriefSerializer(ModelSerializer):
    class Meta:
        model = Tutor
        fields = ["id", "name"]


class ChatTutorSerializer(TutorBriefSerializer):
    is_available = serializers.BooleanField(
        read_only=True,
        help_text="False once the tutor or its course is deactivated: the chat can be read, not continued.",
    )

    class Meta(TutorBriefSerializer.Meta):
        fields = [*TutorBriefSerializer.Meta.fields, "is_available"]
