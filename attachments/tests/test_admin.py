"""The admin shows what the student attached: thumbnails on the message and
feedback pages, loaded through the guarded view (issue 28)."""

import re

import pytest
from rest_framework.test import APIClient

from attachments.models import Reference
from attachments.serializers import AttachmentSerializer
from attachments.tests.files import pdf_bytes
from chats.models import Message
from conftest import feedback_on
from tutor_platform.tests.test_admin_browser import _roles, browser, log_in, page, screenshot, staff_member

__all__ = ["_roles", "browser", "page"]  # fixtures used by name


def shown_on(chat, attachments) -> Message:
    question = Message.objects.create(
        chat=chat,
        role="user",
        content="Вот моё решение",
        attachments=[AttachmentSerializer(a).data for a in attachments],
    )
    Reference.objects.bulk_create(Reference(message=question, attachment=a) for a in attachments)
    reply = Message.objects.create(
        chat=chat, role="assistant", content="Проверим вторую строку.", reply_to=question
    )
    return reply


@pytest.mark.django_db
def test_the_message_page_shows_signed_thumbnails_that_load(client, admin_user, user, chat, make_attachment):
    image, sheet = (
        make_attachment(user, name="решение.png"),
        make_attachment(user, content=pdf_bytes(), name="лист.pdf"),
    )
    question = shown_on(chat, [image, sheet]).reply_to
    client.force_login(admin_user)
    html = client.get(f"/admin/chats/message/{question.pk}/change/").content.decode()
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) == 1 and f"/api/v1/attachments/{image.pk}/content/?signature=" in sources[0]
    assert "лист.pdf" in html and f"/api/v1/attachments/{sheet.pk}/content/?signature=" in html
    fetched = APIClient().get(sources[0].replace("&amp;", "&"))
    assert fetched.status_code == 200 and fetched["Content-Type"] == "image/png"


@pytest.mark.browser
@pytest.mark.system
@pytest.mark.django_db(transaction=True)
def test_the_ml_team_sees_what_the_student_showed(page, live_server, user, chat, make_attachment):
    image = make_attachment(user, name="решение.png")
    feedback = feedback_on(shown_on(chat, [image]), feedback_type="detailed", rating=2, allow_training=True)
    log_in(page, live_server, staff_member("ML team"))
    page.goto(f"{live_server.url}/admin/feedback/feedback/{feedback.pk}/change/")
    thumbnail = page.locator("a.attachment img")
    thumbnail.wait_for()
    page.wait_for_function("document.querySelector('a.attachment img').complete")
    assert thumbnail.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [64, 48]
    screenshot(page, "admin-feedback-attachment.png")
