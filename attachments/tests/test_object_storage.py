"""Attachments in S3-compatible object storage (FILE_STORAGE=s3, through
django-storages), against a real S3 server started here (moto's), on a
private bucket: the file is uploaded, served by the guarded view, and
gone from the bucket once deleted (issue 28)."""

import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from attachments.models import Attachment
from attachments.tests.files import image_bytes
from conftest import free_port, wait_until_serving

pytestmark = [pytest.mark.django_db, pytest.mark.system]

BUCKET = "tutor-attachments"
CREDENTIALS = {
    "aws_access_key_id": "test-key",
    "aws_secret_access_key": "test-secret",
    "region_name": "us-east-1",
}


@pytest.fixture(scope="module")
def s3_server():
    server = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    if not Path(server).exists():
        pytest.skip("moto_server is not installed (requirements-dev.txt: moto[server])")
    port = free_port()
    process = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{url}/moto-api/", timeout=30)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def bucket(s3_server, settings):
    s3 = boto3.resource("s3", endpoint_url=s3_server, **CREDENTIALS)
    created = s3.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_server,
                "access_key": CREDENTIALS["aws_access_key_id"],
                "secret_key": CREDENTIALS["aws_secret_access_key"],
                "region_name": "us-east-1",
                "default_acl": "private",
                "querystring_auth": True,
                "file_overwrite": False,
                "signature_version": "s3v4",
            },
        },
    }
    yield created
    created.objects.all().delete()
    created.delete()


def test_an_upload_lives_in_the_bucket_and_leaves_it(
    auth_client, bucket, media_root, django_capture_on_commit_callbacks
):
    response = auth_client.post(
        "/api/v1/attachments/", {"file": SimpleUploadedFile("задача.png", image_bytes())}, format="multipart"
    )
    assert response.status_code == 201, response.content
    attachment = Attachment.objects.get()
    [stored] = list(bucket.objects.all())
    assert stored.key == attachment.file.name
    assert stored.get()["Body"].read() == b"".join(
        auth_client.get(f"/api/v1/attachments/{attachment.pk}/content/").streaming_content
    )
    # Private: the object's ACL grants nobody but its owner.
    grants = stored.Acl().grants
    assert all(grant["Grantee"].get("URI") is None for grant in grants)
    assert not media_root.exists()  # nothing on this host's disk
    with django_capture_on_commit_callbacks(execute=True):
        assert auth_client.delete(f"/api/v1/attachments/{attachment.pk}/").status_code == 204
    assert list(bucket.objects.all()) == []


def test_file_storage_s3_from_the_environment_writes_to_the_bucket(s3_server, bucket, tmp_path):
    """The settings' own FILE_STORAGE=s3 path (README), in a fresh process."""
    base_dir = Path(__file__).resolve().parents[2]
    env = {
        "PATH": "/usr/bin:/bin",
        "ENV_FILE": "/dev/null",
        "DEBUG": "True",
        "FILE_STORAGE": "s3",
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_ENDPOINT_URL": s3_server,
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
    }
    script = (
        "from django.core.files.base import ContentFile; from django.core.files.storage import default_storage; "
        "name = default_storage.save('attachments/probe.txt', ContentFile(b'hello')); print(name)"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script], cwd=base_dir, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    [stored] = list(bucket.objects.all())
    assert stored.key == result.stdout.strip().splitlines()[-1] == "attachments/probe.txt"
    assert stored.get()["Body"].read() == b"hello"
