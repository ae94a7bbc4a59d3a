"""Issue 24, item 5: two editors saving the same tutor at once never get a
500 and never silently undo each other; a save from a page opened before
another editor's save is refused with a message naming the newer version."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from accounts.roles import CONTENT_EDITORS, sync_roles
from conftest import requires_postgresql, run_in_threads, tutor_admin_form
from tutoring.models import Tutor, TutorVersion
from tutoring.services import TutorContent, tutor_version_save

URL = "/admin/tutoring/tutor/{}/change/"


def editor_client(make_user) -> Client:
    sync_roles(Group, Permission)  # transactional tests flush the roles the data migration made
    editor = make_user(is_staff=True)
    editor.groups.add(Group.objects.get(name=CONTENT_EDITORS))
    client = Client()
    client.force_login(editor)
    return client


@pytest.mark.django_db
def test_a_save_from_a_page_opened_before_another_save_is_refused(client, staff_in, tutor, admin_user):
    staff_in("Content editors")
    opened = tutor_admin_form(tutor)  # the page as it was: v1
    tutor_version_save(tutor=tutor, content=TutorContent("Новый промпт коллеги", "math-v2"), by=admin_user)

    response = client.post(URL.format(tutor.pk), {**opened, "description": "Только описание"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "Версию v2 сохранил(а) admin" in page and "после того, как вы открыли эту страницу (v1)" in page
    tutor.refresh_from_db()
    assert tutor.description != "Только описание"  # nothing of the stale page was saved
    assert tutor.system_prompt == "Новый промпт коллеги"  # the colleague's prompt is not reverted
    assert tutor.current_version.number == 2 and TutorVersion.objects.filter(tutor=tutor).count() == 2
    # Reloaded, the same change goes through.
    reloaded = client.post(URL.format(tutor.pk), tutor_admin_form(tutor, description="Только описание"))
    assert reloaded.status_code == 302
    tutor.refresh_from_db()
    assert tutor.description == "Только описание" and tutor.system_prompt == "Новый промпт коллеги"


@requires_postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("trial", range(3))
def test_four_editors_saving_at_once_make_one_version_and_are_told_the_rest(make_user, tutor, trial):
    clients = [editor_client(make_user) for _ in range(4)]
    opened = tutor_admin_form(tutor)
    base = tutor.current_version.number

    def save(index: int):
        body = {**opened, "system_prompt": f"Промпт редактора {index}", "description": f"Описание {index}"}
        return clients[index].post(URL.format(tutor.pk), body)

    responses = run_in_threads(4, save)

    statuses = sorted(r.status_code if not isinstance(r, Exception) else repr(r) for r in responses)
    assert statuses == [200, 200, 200, 302]
    winner = next(i for i, r in enumerate(responses) if r.status_code == 302)
    for response in responses:
        if response.status_code == 200:
            assert f"Версию v{base + 1} сохранил(а)" in response.content.decode()
    tutor = Tutor.objects.get(pk=tutor.pk)
    newest = TutorVersion.objects.filter(tutor=tutor).order_by("-number").first()
    assert tutor.current_version_id == newest.pk and newest.number == base + 1
    assert tutor.system_prompt == f"Промпт редактора {winner}"
    assert tutor.description == f"Описание {winner}"
    # The tutor stays editable: a page opened now saves, as the next version.
    after = clients[0].post(URL.format(tutor.pk), tutor_admin_form(tutor, system_prompt="Ещё правка"))
    assert after.status_code == 302
    assert Tutor.objects.get(pk=tutor.pk).current_version.number == base + 2
