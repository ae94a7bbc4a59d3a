"""Serving an upload: to its owner, or to a signed link; deleting one (issue 28)."""

import datetime as dt

import pytest
import time_machine
from rest_framework.test import APIClient

from attachments import links
from attachments.models import Attachment, Reference
from attachments.tests.files import RUSSIAN_TEXT, pdf_bytes

pytestmark = pytest.mark.django_db


def detail(attachment: Attachment) -> str:
    return f"/api/v1/attachments/{attachment.pk}/"


def content(attachment: Attachment) -> str:
    return f"/api/v1/attachments/{attachment.pk}/content/"


def body_of(response) -> bytes:
    return b"".join(response.streaming_content)


class TestOwner:
    def test_metadata_is_the_upload(self, auth_client, user, make_attachment):
        attachment = make_attachment(user)
        body = auth_client.get(detail(attachment)).json()
        assert body["id"] == attachment.pk and body["sha256"] == attachment.sha256

    def test_an_image_is_served_inline_sandboxed_and_unsniffable(self, auth_client, user, make_attachment):
        attachment = make_attachment(user, name="задача.png")
        response = auth_client.get(content(attachment))
        assert response.status_code == 200
        assert body_of(response) == attachment.file.open("rb").read()
        assert response["Content-Type"] == "image/png"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"] == "sandbox"
        assert response["Content-Disposition"].startswith("inline")
        assert "filename*=utf-8''%D0%B7%D0%B0%D0%B4%D0%B0%D1%87%D0%B0.png" in response["Content-Disposition"]

    @pytest.mark.parametrize(
        "data, content_type", [(pdf_bytes(), "application/pdf"), (RUSSIAN_TEXT, "text/plain; charset=utf-8")]
    )
    def test_documents_are_downloads(self, auth_client, user, make_attachment, data, content_type):
        attachment = make_attachment(user, content=data, name="лист.bin")
        response = auth_client.get(content(attachment))
        assert response["Content-Type"] == content_type
        assert response["Content-Disposition"].startswith("attachment")
        assert response["Content-Security-Policy"] == "sandbox"
        assert body_of(response) == data

    def test_an_image_asked_for_as_an_image_is_served(self, auth_client, user, make_attachment):
        attachment = make_attachment(user)
        assert (
            auth_client.get(content(attachment), HTTP_ACCEPT="image/avif,image/webp,*/*").status_code == 200
        )
        assert auth_client.get(content(attachment), HTTP_ACCEPT="image/png").status_code == 200


class TestSomeoneElse:
    @pytest.mark.parametrize("where", [detail, content])
    def test_another_users_upload_is_404(self, auth_client, other_user, make_attachment, where):
        response = auth_client.get(where(make_attachment(other_user)))
        assert response.status_code == 404 and response.json()["code"] == "not_found"

    @pytest.mark.parametrize("where", [detail, content])
    def test_without_a_token_is_401(self, api_client, user, make_attachment, where):
        assert api_client.get(where(make_attachment(user))).status_code == 401

    def test_another_users_upload_cannot_be_deleted(self, auth_client, other_user, make_attachment):
        attachment = make_attachment(other_user)
        assert auth_client.delete(detail(attachment)).status_code == 404
        assert attachment.file.storage.exists(attachment.file.name)


class TestSignedLinks:
    def test_a_signed_link_works_without_a_token(self, user, make_attachment):
        attachment = make_attachment(user)
        response = APIClient().get(links.signed_path(attachment.pk))
        assert response.status_code == 200
        assert body_of(response) == attachment.file.open("rb").read()

    def test_a_token_sent_along_does_not_matter(self, user, make_attachment):
        attachment = make_attachment(user)
        response = APIClient().get(links.signed_path(attachment.pk), HTTP_AUTHORIZATION="Bearer rubbish")
        assert response.status_code == 200

    def test_a_tampered_signature_is_403(self, user, make_attachment):
        path = links.signed_path(make_attachment(user).pk)
        tampered = path[:-1] + ("A" if path[-1] != "A" else "B")
        response = APIClient().get(tampered)
        assert response.status_code == 403 and response.json()["code"] == "invalid_signature"

    def test_a_signature_for_another_upload_is_403(self, user, make_attachment):
        mine, other = make_attachment(user), make_attachment(user)
        signature = links.signed_path(mine.pk).split("signature=")[1]
        assert APIClient().get(f"{content(other)}?signature={signature}").status_code == 403

    def test_an_expired_link_is_403(self, user, make_attachment, settings):
        settings.ATTACHMENT_URL_SECONDS = 600
        attachment = make_attachment(user)
        path = links.signed_path(attachment.pk)
        with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=599), tick=False):
            assert APIClient().get(path).status_code == 200
        with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=602), tick=False):
            assert APIClient().get(path).status_code == 403

    def test_a_link_to_a_deleted_upload_is_404(self, user, make_attachment):
        attachment = make_attachment(user)
        path = links.signed_path(attachment.pk)
        attachment.delete()
        assert APIClient().get(path).status_code == 404

    def test_signed_links_are_absolute_with_backend_url(self, settings, user, make_attachment):
        settings.BACKEND_URL = "https://tutor.example.com"
        attachment = make_attachment(user)
        assert links.signed_url(attachment.pk).startswith(
            f"https://tutor.example.com{content(attachment)}?signature="
        )

    def test_only_the_content_takes_a_signature(self, user, make_attachment):
        attachment = make_attachment(user)
        signature = links.signed_path(attachment.pk).split("signature=")[1]
        assert APIClient().get(f"{detail(attachment)}?signature={signature}").status_code == 401
        assert APIClient().delete(f"{detail(attachment)}?signature={signature}").status_code == 401
        assert Attachment.objects.filter(pk=attachment.pk).exists()


class TestDelete:
    def test_an_unused_upload_goes_with_its_file(
        self, auth_client, user, make_attachment, django_capture_on_commit_callbacks
    ):
        attachment = make_attachment(user)
        storage, name = attachment.file.storage, attachment.file.name
        with django_capture_on_commit_callbacks(execute=True):
            assert auth_client.delete(detail(attachment)).status_code == 204
        assert not Attachment.objects.exists()
        assert not storage.exists(name)

    def test_one_a_message_shows_is_409_and_stays(
        self, auth_client, user, chat, make_attachment, make_exchange
    ):
        attachment = make_attachment(user)
        question, _ = make_exchange(chat)
        Reference.objects.create(message=question, attachment=attachment)
        response = auth_client.delete(detail(attachment))
        assert response.status_code == 409 and response.json()["code"] == "attachment_in_use"
        assert attachment.file.storage.exists(attachment.file.name)
        assert auth_client.get(content(attachment)).status_code == 200
