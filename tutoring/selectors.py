from django.db.models import Count, Q, QuerySet

from .models import Course, Tutor


def course_list() -> QuerySet[Course]:
    return (
        Course.objects.filter(is_active=True)
        .annotate(tutors_count=Count("tutors", filter=Q(tutors__is_active=True)))
        .order_by("name", "id")
    )


def tutor_list(*, with_content: bool = False) -> QuerySet[Tutor]:
    """Active tutors of active courses, with their course in the same query;
    `with_content` joins the current version too (prompt, model: for staff)."""
    tutors = Tutor.objects.filter(is_active=True, course__is_active=True)
    return (
        tutors.select_related("course", "current_version")
        if with_content
        else tutors.select_related("course")
    )
