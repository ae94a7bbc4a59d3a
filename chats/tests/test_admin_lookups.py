"""Issue 24, item 12: the ML team cannot map user ids (or emails) to the
pseudonymous student keys through the admin's URL filters."""

import pytest

from accounts.roles import ML_TEAM

pytestmark = pytest.mark.django_db

THROUGH_THE_STUDENT = [
    "/admin/chats/chat/?user__id__exact={user}",
    "/admin/chats/chat/?user={user}",
    "/admin/chats/chat/?user__email={email}",
    "/admin/chats/message/?chat__user__id__exact={user}",
    "/admin/feedback/feedback/?user__id__exact={user}",
]


@pytest.mark.parametrize("url", THROUGH_THE_STUDENT)
def test_the_ml_team_cannot_filter_by_the_student(client, staff_in, user, chat, url):
    staff_in(ML_TEAM)
    response = client.get(url.format(user=user.pk, email=user.email))
    assert response.status_code == 400  # Django's DisallowedModelAdminLookup


def test_the_ml_team_still_filters_by_tutor_and_superusers_by_user(
    client, admin_client, staff_in, user, chat
):
    staff_in(ML_TEAM)
    by_tutor = client.get(f"/admin/chats/chat/?tutor__id__exact={chat.tutor_id}")
    assert by_tutor.status_code == 200 and by_tutor.context["cl"].result_count == 1
    by_user = admin_client.get(f"/admin/chats/chat/?user__id__exact={user.pk}")
    assert by_user.status_code == 200 and by_user.context["cl"].result_count == 1
