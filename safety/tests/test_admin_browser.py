"""The review queue and the alert email, as a Safety reviewer sees them in
headless Chromium."""

import pytest
from django.contrib.auth.models import Group, Permission

from accounts.roles import SAFETY_REVIEWERS, sync_roles
from chats.models import Message
from safety.models import Flag
from tutor_platform.tests.test_admin_browser import browser, log_in, screenshot, staff_member  # noqa: F401
from tutor_platform.tests.test_admin_browser import page as page

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _roles(starter_lists):
    sync_roles(Group, Permission)


def test_a_reviewer_is_alerted_and_works_the_queue(
    page, live_server, settings, mailoutbox, client_for, user, chat
):
    settings.SAFETY_ALERT_EMAILS = ["safeguarding@school.example"]
    student = client_for(user)
    for content in ("блин, опять эти дроби, блять", "Я не хочу жить, всё бесполезно"):
        response = student.post(f"/api/v1/chats/{chat.id}/messages/", {"content": content}, format="json")
        assert response.status_code == 201
    (alert,) = mailoutbox
    assert alert.subject == "[Safety] Self-harm: respond with the safe text (student message)"
    assert user.email not in alert.subject and user.email not in alert.body
    urgent = Flag.objects.get(category="self_harm")
    assert f"/admin/safety/flag/{urgent.pk}/change/" in alert.body

    reviewer = staff_member(SAFETY_REVIEWERS)
    log_in(page, live_server, reviewer)
    page.goto(f"{live_server.url}/admin/safety/flag/")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() >= 2
    assert "Я не хочу жить" in rows.nth(0).inner_text()  # self_harm before profanity (and before the echo)
    screenshot(page, "admin-safety-queue.png")

    page.goto(f"{live_server.url}{alert.body.split('admin: ')[1].strip()}")
    conversation = page.locator(".field-conversation").inner_text()
    assert "Я не хочу жить, всё бесполезно" in conversation
    assert "8-800-2000-122" in conversation  # the safe reply the student got
    page.select_option("#id_review", "confirmed")
    page.fill("#id_review_note", "Сообщили школьному психологу.")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    urgent.refresh_from_db()
    assert (urgent.review, urgent.review_note, urgent.reviewed_by) == (
        "confirmed",
        "Сообщили школьному психологу.",
        reviewer,
    )
    assert urgent.reviewed_at is not None
    assert Message.objects.filter(chat=chat, moderation="safe_reply").count() == 1
