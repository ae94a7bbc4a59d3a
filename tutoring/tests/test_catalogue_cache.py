"""Issue 17: the catalogue is served from the cache, and every write path
that changes what it shows starts a new generation (no stale list)."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from conftest import bearer_client, tutor_admin_form
from tutoring.models import Course, Tutor

TUTORS = "/api/v1/tutors/"
COURSES = "/api/v1/courses/"

# Writes commit before the cache is told: these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)


def names(path: str = TUTORS) -> list[str]:
    return [item["name"] for item in APIClient().get(path).json()["results"]]


def course_form(course: Course, tutor: Tutor, **changes) -> dict:
    """The admin's course page as posted, with its one tutor inline."""
    return {
        "name": course.name,
        "slug": course.slug,
        "description": course.description,
        "is_active": "on",
        "tutors-TOTAL_FORMS": "1",
        "tutors-INITIAL_FORMS": "1",
        "tutors-MIN_NUM_FORMS": "0",
        "tutors-MAX_NUM_FORMS": "1000",
        "tutors-0-id": str(tutor.id),
        "tutors-0-course": str(course.id),
        "tutors-0-name": tutor.name,
        "tutors-0-model_id": tutor.model_id,
        "tutors-0-is_active": "on",
        **changes,
    }


def test_a_repeated_read_runs_no_query(tutor, django_assert_num_queries):
    first = APIClient().get(TUTORS)
    with django_assert_num_queries(0):
        second = APIClient().get(TUTORS)
    assert second.status_code == 200
    assert second.content == first.content  # the stored rendering, byte for byte
    assert second["Content-Type"] == first["Content-Type"] == "application/json"
    APIClient().get(f"{TUTORS}{tutor.id}/")
    with django_assert_num_queries(0):
        assert APIClient().get(f"{TUTORS}{tutor.id}/").json()["name"] == "Анна"


def test_pagination_links_and_filters_are_cached_apart(make_tutor):
    for _ in range(3):
        make_tutor()
    page = APIClient().get(TUTORS, {"page_size": 1}).json()
    assert len(page["results"]) == 1 and page["next"]
    assert len(APIClient().get(TUTORS).json()["results"]) == 3


def test_an_admin_edit_of_a_tutor_shows_at_once(client, admin_user, tutor):
    assert names() == ["Анна"]
    client.force_login(admin_user)
    response = client.post(
        f"/admin/tutoring/tutor/{tutor.id}/change/", tutor_admin_form(tutor, name="Анна Петровна")
    )
    assert response.status_code == 302
    assert names() == ["Анна Петровна"]


def test_deactivating_a_course_in_the_admin_empties_its_lists(client, admin_user, course, tutor):
    assert names(COURSES) == ["Математика"] and names() == ["Анна"]
    client.force_login(admin_user)
    form = course_form(course, tutor, is_active="")
    assert client.post(f"/admin/tutoring/course/{course.id}/change/", form).status_code == 302
    assert names(COURSES) == [] and names() == []


def test_a_course_rename_shows_at_once_and_its_inline_only_links_tutors(client, admin_user, course, tutor):
    assert names(COURSES) == ["Математика"]
    client.force_login(admin_user)
    page = client.get(f"/admin/tutoring/course/{course.id}/change/").content.decode()
    assert f"/admin/tutoring/tutor/{tutor.id}/change/" in page  # a link to the tutor's own page
    form = course_form(course, tutor, name="Алгебра", **{"tutors-0-name": "Анна (алгебра)"})
    assert client.post(f"/admin/tutoring/course/{course.id}/change/", form).status_code == 302
    assert names(COURSES) == ["Алгебра"]
    assert names() == ["Анна"]  # tutors are not edited from the course page


def test_deleting_tutors_in_the_admin_shows_at_once(client, admin_user, make_tutor):
    first, second = make_tutor(name="Первый"), make_tutor(name="Второй")
    assert sorted(names()) == ["Второй", "Первый"]
    client.force_login(admin_user)
    assert client.post(f"/admin/tutoring/tutor/{first.id}/delete/", {"post": "yes"}).status_code == 302
    assert names() == ["Второй"]
    action = {"action": "delete_selected", "_selected_action": [second.id], "post": "yes"}
    assert client.post("/admin/tutoring/tutor/", action).status_code == 302
    assert names() == []


def test_a_rating_shows_at_once(user, chat, make_exchange):
    _, reply = make_exchange(chat)
    assert APIClient().get(TUTORS).json()["results"][0]["rating"] == "0.00"
    body = {"message": reply.id, "feedback_type": "detailed", "rating": 4}
    assert bearer_client(user).post("/api/v1/feedback/", body, format="json").status_code == 201
    rated = APIClient().get(TUTORS).json()["results"][0]
    assert (rated["rating"], rated["total_feedbacks"]) == ("4.00", 1)


def test_seed_demo_shows_at_once(course):
    assert names() == []
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert len(names()) == Tutor.objects.filter(is_active=True, course__is_active=True).count() > 0
    assert len(names(COURSES)) == Course.objects.filter(is_active=True).count()


def test_staff_are_never_served_the_cached_public_list(admin_user, tutor):
    assert "system_prompt" not in APIClient().get(TUTORS).json()["results"][0]
    staff = bearer_client(admin_user).get(TUTORS).json()["results"][0]
    assert staff["system_prompt"] == tutor.system_prompt
