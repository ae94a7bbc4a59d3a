"""Uploads: the type from the bytes, sizes and pixels bounded, images
re-encoded without their metadata, files only in storage (issue 28)."""

import hashlib
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from attachments.models import Attachment
from attachments.services import attachment_upload
from attachments.tests.files import (
    RUSSIAN_TEXT,
    image_bytes,
    jpeg_with_gps_and_rotation,
    pdf_bytes,
    png_claiming,
    upload,
)
from conftest import bearer_client, requires_postgresql, run_in_threads

pytestmark = pytest.mark.django_db

URL = "/api/v1/attachments/"


def stored_files(media_root) -> list:
    return [path for path in media_root.rglob("*") if path.is_file()] if media_root.exists() else []


def stored_bytes(attachment: Attachment) -> bytes:
    with attachment.file.open("rb") as handle:
        return handle.read()


class TestAcceptedFiles:
    def test_a_png_is_stored_and_described(self, auth_client, user, media_root):
        response = upload(auth_client, image_bytes((64, 48)), name="Задача №3.png")
        assert response.status_code == 201, response.content
        body = response.json()
        attachment = Attachment.objects.get()
        assert attachment.user == user
        assert set(body) == {
            "id",
            "kind",
            "content_type",
            "name",
            "size",
            "width",
            "height",
            "sha256",
            "created_at",
        }
        assert (body["kind"], body["content_type"], body["name"]) == ("image", "image/png", "Задача №3.png")
        assert (body["width"], body["height"]) == (64, 48)
        data = stored_bytes(attachment)
        assert body["size"] == len(data) and body["sha256"] == hashlib.sha256(data).hexdigest()
        # The file is in storage under a random name, nothing of the user's in it.
        [path] = stored_files(media_root)
        assert path.read_bytes() == data
        assert re.fullmatch(r"attachments/[0-9a-f]{2}/[0-9a-f]{32}\.png", attachment.file.name)

    def test_a_jpeg_loses_gps_and_exif_and_is_turned_upright(self, auth_client):
        original = jpeg_with_gps_and_rotation((80, 40))
        assert b"PhoneCo" in original  # the EXIF is really there before
        response = upload(auth_client, original, name="photo.jpg", content_type="image/jpeg")
        assert response.status_code == 201, response.content
        assert (response.json()["width"], response.json()["height"]) == (40, 80)  # rotated
        data = stored_bytes(Attachment.objects.get())
        assert b"PhoneCo" not in data and b"Exif" not in data
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG" and image.size == (40, 80)
            assert not image.getexif() and "icc_profile" not in image.info
            # The blue half (the bottom, before) is now on the left.
            left, right = image.convert("RGB").getpixel((5, 40)), image.convert("RGB").getpixel((35, 40))
            assert left[2] > 200 > left[0] and right[0] > 200 > right[2]

    def test_a_big_image_is_scaled_to_the_long_edge(self, auth_client, settings):
        settings.ATTACHMENT_MAX_EDGE = 100
        response = upload(
            auth_client, image_bytes((400, 300), "JPEG"), name="p.jpg", content_type="image/jpeg"
        )
        assert response.status_code == 201
        assert (response.json()["width"], response.json()["height"]) == (100, 75)

    def test_a_big_rotated_photo_is_scaled_then_turned_upright(self, auth_client, settings):
        settings.ATTACHMENT_MAX_EDGE = 100
        response = upload(
            auth_client, jpeg_with_gps_and_rotation((400, 200)), name="p.jpg", content_type="image/jpeg"
        )
        assert (response.json()["width"], response.json()["height"]) == (50, 100)
        with Image.open(io.BytesIO(stored_bytes(Attachment.objects.get()))) as image:
            left, right = image.convert("RGB").getpixel((5, 50)), image.convert("RGB").getpixel((45, 50))
            assert left[2] > 200 > left[0] and right[0] > 200 > right[2]

    def test_a_webp_stays_webp(self, auth_client):
        response = upload(
            auth_client, image_bytes((30, 20), "WEBP"), name="screen.webp", content_type="image/webp"
        )
        assert response.status_code == 201
        assert response.json()["content_type"] == "image/webp"
        with Image.open(io.BytesIO(stored_bytes(Attachment.objects.get()))) as image:
            assert image.format == "WEBP" and not image.getexif()

    def test_a_pdf_is_a_document_stored_as_it_came(self, auth_client):
        original = pdf_bytes()
        response = upload(auth_client, original, name="worksheet.pdf", content_type="application/pdf")
        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["kind"], body["content_type"], body["width"], body["height"]) == (
            "document", "application/pdf", None, None
        )  # fmt: skip
        assert stored_bytes(Attachment.objects.get()) == original
        assert body["sha256"] == hashlib.sha256(original).hexdigest()

    def test_russian_text_is_a_text_document(self, auth_client):
        response = upload(auth_client, RUSSIAN_TEXT, name="условие.txt", content_type="text/plain")
        assert response.status_code == 201, response.content
        assert response.json()["content_type"] == "text/plain"

    def test_the_declared_type_and_name_are_not_believed(self, auth_client):
        response = upload(auth_client, image_bytes(), name="notes.txt", content_type="text/plain")
        assert response.status_code == 201
        assert response.json()["content_type"] == "image/png"

    def test_a_name_with_folders_and_control_characters_is_cleaned(self, auth_client):
        response = upload(auth_client, image_bytes(), name="../../etc/\x07пароль.png")
        assert response.json()["name"] == "пароль.png"


class TestRefusedFiles:
    @pytest.mark.parametrize(
        "content, name, code, status",
        [
            (b"<!DOCTYPE html><html><script>alert(1)</script></html>", "task.png", "unsupported_type", 415),
            (b"  <html><body onload=alert(1)>", "task.png", "unsupported_type", 415),
            (
                b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
                "drawing.svg", "unsupported_type", 415,
            ),
            (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "drawing.png", "unsupported_type", 415),
            (b"Answer: 42\n<script>fetch('/steal')</script>", "answer.txt", "unsupported_type", 415),
            (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "anim.gif", "unsupported_type", 415),
            (b"PK\x03\x04" + b"\x00" * 40, "homework.docx", "unsupported_type", 415),
            ("Задача".encode("cp1251") + b"\xff\xfe", "cp1251.txt", "unsupported_type", 415),
            (b"text with a \x00 NUL byte", "nul.txt", "unsupported_type", 415),
            (image_bytes()[:60], "truncated.png", "bad_image", 400),
            (b"\xff\xd8\xff\xe0" + b"\x00" * 100, "broken.jpg", "bad_image", 400),
            (png_claiming(30_000, 30_000), "bomb.png", "bad_image", 400),
            (png_claiming(8000, 6000), "big.png", "bad_image", 400),  # 48 Mpx, over the 40 Mpx limit
        ],
    )  # fmt: skip
    def test_refused_with_its_code_and_nothing_stored(
        self, auth_client, media_root, content, name, code, status
    ):
        response = upload(auth_client, content, name=name)
        assert response.status_code == status, response.content
        assert response.json()["code"] == code
        assert not Attachment.objects.exists()
        assert stored_files(media_root) == []

    def test_a_pdf_with_javascript_is_refused(self, auth_client):
        scripted = pdf_bytes().replace(
            b"/Type /Catalog", b"/Type /Catalog /OpenAction << /S /JavaScript /JS (app.alert(1)) >>"
        )
        assert b"/JavaScript" in scripted
        assert upload(auth_client, scripted, name="w.pdf").status_code == 415
        hidden = pdf_bytes().replace(b"/Type /Catalog", b"/Type /Catalog /OpenAction << /S /J#61vaScript >>")
        assert upload(auth_client, hidden, name="w.pdf").status_code == 415
        assert not Attachment.objects.exists()

    def test_an_11_mib_file_is_413_and_nothing_stays(self, auth_client, media_root):
        response = upload(auth_client, b"a" * (11 * 1024 * 1024), name="big.txt", content_type="text/plain")
        assert response.status_code == 413
        assert response.json()["code"] == "file_too_large"
        assert not Attachment.objects.exists() and stored_files(media_root) == []

    def test_a_body_over_the_limit_is_refused_before_it_is_read(self, auth_client, settings):
        settings.ATTACHMENT_MAX_BYTES = 1000
        unread = io.BytesIO(b"x" * 100_000)
        response = auth_client.generic(
            "POST", URL, data=b"", content_type="multipart/form-data; boundary=B",
            CONTENT_LENGTH=str(100_000), **{"wsgi.input": unread},
        )  # fmt: skip
        assert response.status_code == 413 and response.json()["code"] == "file_too_large"
        assert unread.tell() == 0  # not a byte read

    def test_a_file_over_the_limit_under_a_small_envelope_is_cut_off_while_read(self, auth_client, settings):
        settings.ATTACHMENT_MAX_BYTES = 1000
        response = upload(auth_client, b"b" * 1001, name="x.txt", content_type="text/plain")
        assert response.status_code == 413
        assert upload(auth_client, b"b" * 1000, name="x.txt", content_type="text/plain").status_code == 201

    @pytest.mark.parametrize("body", [{}, {"file": "not a file"}])
    def test_no_file_is_400(self, auth_client, body):
        assert auth_client.post(URL, body, format="multipart").status_code == 400

    def test_json_is_415_unsupported_media_type(self, auth_client):
        response = auth_client.post(URL, {"file": "x"}, format="json")
        assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"

    def test_an_empty_file_is_400(self, auth_client):
        assert upload(auth_client, b"", name="empty.txt").status_code == 400

    def test_without_a_token_is_401(self, api_client):
        assert upload(api_client, image_bytes()).status_code == 401
        assert not Attachment.objects.exists()


class TestLimits:
    def test_storage_quota_is_429_and_nothing_stored(self, auth_client, settings, media_root):
        first = upload(auth_client, image_bytes())
        settings.ATTACHMENT_STORAGE_PER_USER = first.json()["size"] + 10
        response = upload(auth_client, image_bytes((50, 50)))
        assert response.status_code == 429 and response.json()["code"] == "storage_quota_exceeded"
        assert Attachment.objects.count() == 1 and len(stored_files(media_root)) == 1

    def test_quota_is_per_user(self, auth_client, other_client, settings):
        first = upload(auth_client, image_bytes())
        settings.ATTACHMENT_STORAGE_PER_USER = first.json()["size"] + 10
        assert upload(other_client, image_bytes()).status_code == 201

    def test_uploads_are_throttled(self, auth_client, rates):
        rates(upload="2/hour")
        assert [upload(auth_client, image_bytes()).status_code for _ in range(3)] == [201, 201, 429]
        assert Attachment.objects.count() == 2


@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_uploads_at_once_cannot_pass_the_storage_quota_together(user, settings, media_root):
    """Eight uploads at once with room for three: the lock on the user lets exactly three in."""
    size = attachment_upload(user=user, upload=SimpleUploadedFile("probe.png", image_bytes())).size
    Attachment.objects.all().delete()
    settings.ATTACHMENT_STORAGE_PER_USER = size * 3

    def one(index: int):
        return upload(bearer_client(user), image_bytes()).status_code

    results = run_in_threads(8, one)
    assert sorted(results) == [201] * 3 + [429] * 5, results
    assert Attachment.objects.count() == 3
    stored = [path for path in media_root.rglob("*") if path.is_file()]
    assert len(stored) == 4  # the three, and the probe's file (its row was deleted by hand)
