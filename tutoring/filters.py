import django_filters

from .models import Tutor


class TutorFilter(django_filters.FilterSet):
    course = django_filters.NumberFilter(field_name="course_id", help_text="Only tutors of this course.")

    class Meta:
        model = Tutor
        fields = ["course"]
