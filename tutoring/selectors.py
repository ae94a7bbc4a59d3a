from django.db.models import Count, Q, QuerySet

from .models import Course, Tutor


def course_list() -> QuerySet[Course]:
    return (
        Course.objects.filter(is_active=True)
        .annotate(tutors_count=Count("tutors", filter=Q(tutors__is_active=True)))
        .order_by("name", "id")
    )


def tutor_list() -> QuerySet[Tutor]:
    """Active tutors of active courses, with their course (and, for staff,
    the current version) in the same query."""
    return Tutor.objects.filter(is_active=True, course__is_active=True).select_related(
        "course", "current_version"
    )
