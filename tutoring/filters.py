import django_filters

from tutor_platform.filters import NumberFilter

from .models import Tutor


class TutorFilter(django_filters.FilterSet):
    course = NumberFilter(field_name="course_id", help_text="Only tutors of this course.")

    class Meta:
        model = Tutor
        fields = ["course"]
