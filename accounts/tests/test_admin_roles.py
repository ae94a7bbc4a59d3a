"""Issue 11: a superuser adds a staff member by choosing a role, and a group
member who cannot get in is told why."""

import pytest

from accounts.models import User
from accounts.roles import CONTENT_EDITORS, ML_TEAM
from conftest import PASSWORD

pytestmark = pytest.mark.django_db

ADD = "/admin/accounts/user/add/"


def add_user(client, role: str, email: str) -> User:
    form = {
        "email": email,
        "username": email.split("@")[0],
        "full_name": "Ольга Смирнова",
        "role": role,
        "password1": PASSWORD,
        "password2": PASSWORD,
        "usable_password": "true",
        "_save": "Save",
    }
    response = client.post(ADD, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    return User.objects.get(email=email)


@pytest.mark.parametrize(
    ("role", "staff", "superuser", "groups"),
    [
        ("student", False, False, []),
        ("content_editor", True, False, [CONTENT_EDITORS]),
        ("ml_team", True, False, [ML_TEAM]),
        ("superuser", True, True, []),
    ],
)
def test_the_add_form_sets_flags_and_group_from_the_role(client, admin_user, role, staff, superuser, groups):
    client.force_login(admin_user)
    page = client.get(ADD).content.decode()
    assert 'name="role"' in page and "Редактор контента: курсы, репетиторы и промпты" in page
    user = add_user(client, role, f"{role}@example.com")
    assert (user.is_staff, user.is_superuser) == (staff, superuser)
    assert list(user.groups.values_list("name", flat=True)) == groups


def test_a_content_editor_added_this_way_can_edit_tutors(client, admin_user):
    client.force_login(admin_user)
    editor = add_user(client, "content_editor", "editor@example.com")
    client.force_login(editor)
    assert client.get("/admin/tutoring/tutor/").status_code == 200
    assert client.get("/admin/accounts/user/").status_code == 403


def test_a_group_member_without_staff_status_is_told_why(client, make_user):
    from django.contrib.auth.models import Group

    member = make_user()
    member.groups.add(Group.objects.get(name=ML_TEAM))
    response = client.post(
        "/admin/login/", {"username": member.email, "password": PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 200
    assert "не отмечена как сотрудник" in response.content.decode()
    # A wrong password still gets the generic answer: nothing is revealed to a guesser.
    wrong = client.post("/admin/login/", {"username": member.email, "password": "nope", "next": "/admin/"})
    assert "not marked as staff" not in wrong.content.decode()


def test_the_staff_flag_explains_the_groups(client, admin_user, user):
    client.force_login(admin_user)
    page = client.get(f"/admin/accounts/user/{user.pk}/change/").content.decode()
    assert "Сотрудник без группы не видит ничего" in page


def change_form(user: User, **changes) -> dict:
    form = {
        "email": user.email,
        "username": user.username,
        "full_name": user.full_name,
        "is_active": "on",
        "daily_messages_limit": "",
        "daily_tokens_limit": "",
        "_save": "Save",
        **changes,
    }
    return {key: value for key, value in form.items() if value is not None}


def test_the_change_page_shows_and_changes_the_role(client, admin_user, make_user):
    """Issue 26, item 10: the role was on the add page only."""
    client.force_login(admin_user)
    student = make_user()
    page = client.get(f"/admin/accounts/user/{student.pk}/change/").content.decode()
    assert '<option value="student" selected>' in page
    response = client.post(f"/admin/accounts/user/{student.pk}/change/", change_form(student, role="ml_team"))
    assert response.status_code == 302, response.content.decode()[:3000]
    student.refresh_from_db()
    assert (student.is_staff, student.is_superuser) == (True, False)
    assert list(student.groups.values_list("name", flat=True)) == [ML_TEAM]
    page = client.get(f"/admin/accounts/user/{student.pk}/change/").content.decode()
    assert '<option value="ml_team" selected>' in page


def test_saving_a_staff_member_without_a_role_keeps_their_flags(client, admin_user, make_user):
    client.force_login(admin_user)
    odd = make_user(is_staff=True)  # staff, in no role's group
    page = client.get(f"/admin/accounts/user/{odd.pk}/change/").content.decode()
    assert '<option value="" selected>' in page
    form = change_form(odd, role="", is_staff="on")
    assert client.post(f"/admin/accounts/user/{odd.pk}/change/", form).status_code == 302
    odd.refresh_from_db()
    assert odd.is_staff is True and not odd.groups.exists()


def test_the_list_has_a_role_column_and_the_page_shows_consent(client, admin_user, make_user):
    client.force_login(admin_user)
    consenting = make_user(allow_training=True)
    listing = client.get("/admin/accounts/user/").content.decode()
    assert "column-role" in listing and ">Ученик<" in listing and ">Суперпользователь<" in listing
    page = client.get(f"/admin/accounts/user/{consenting.pk}/change/").content.decode()
    assert "field-allow_training" in page and 'name="allow_training"' not in page  # shown, not editable
