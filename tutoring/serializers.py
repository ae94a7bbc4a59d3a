from rest_framework import serializers

from .models import Course, Tutor


class CourseSerializer(serializers.ModelSerializer):
    tutors_count = serializers.IntegerField(read_only=True, help_text="Active tutors in the course.")

    class Meta:
        model = Course
        fields = ["id", "name", "slug", "description", "tutors_count"]


class CourseBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Course
        fields = ["id", "name", "slug"]


class TutorSerializer(serializers.ModelSerializer):
    course = CourseBriefSerializer(read_only=True)

    class Meta:
        model = Tutor
        fields = ["id", "course", "name", "description", "rating", "total_feedbacks"]
        read_only_fields = fields


class StaffTutorSerializer(TutorSerializer):
    """Adds the internal fields, for staff only."""

    class Meta(TutorSerializer.Meta):
        fields = [*TutorSerializer.Meta.fields, "system_prompt", "model_id", "knowledge_base_id"]
        read_only_fields = fields


class TutorBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tutor
        fields = ["id", "name"]
