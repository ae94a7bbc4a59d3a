"""Virus scanning against a real clamd (Debian's clamav-daemon), started
here with a signature database of its own: the EICAR test file's hash, so
no download of ClamAV's databases is needed (issue 28)."""

import hashlib
import shutil
import socket
import subprocess
import time

import pytest

from attachments.models import Attachment
from attachments.tests.files import RUSSIAN_TEXT, image_bytes, upload
from conftest import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.system]

CLAMD = shutil.which("clamd") or "/usr/sbin/clamd"
# The industry's harmless test "virus": every scanner reports it.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@pytest.fixture(scope="module")
def clamd(tmp_path_factory):
    if not shutil.which(CLAMD):
        pytest.skip("clamd is not installed (Debian's clamav-daemon; `make system-deps` installs it)")
    folder = tmp_path_factory.mktemp("clamd")
    (folder / "db").mkdir()
    # clamd's hash signatures are MD5 (`.hdb`: md5:size:name).
    signature = f"{hashlib.md5(EICAR).hexdigest()}:{len(EICAR)}:Eicar-Test-Signature\n"  # noqa: S324
    (folder / "db" / "test.hdb").write_text(signature)
    port = free_port()
    config = folder / "clamd.conf"
    config.write_text(
        f"Foreground yes\nTCPSocket {port}\nTCPAddr 127.0.0.1\nDatabaseDirectory {folder / 'db'}\n"
        f"LogFile {folder / 'clamd.log'}\nPidFile {folder / 'clamd.pid'}\nStreamMaxLength 20M\n"
    )
    process = subprocess.Popen(
        [CLAMD, "--config-file", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"zPING\0")
                if sock.recv(16).startswith(b"PONG"):
                    break
        except OSError:
            time.sleep(0.1)
    else:
        process.terminate()
        pytest.fail(f"clamd did not start: {(folder / 'clamd.log').read_text(errors='replace')[-2000:]}")
    yield f"tcp://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def test_a_clean_file_is_scanned_and_stored(auth_client, settings, clamd):
    settings.ATTACHMENT_SCAN_URL = clamd
    assert upload(auth_client, image_bytes(), "задача.png").status_code == 201
    assert upload(auth_client, RUSSIAN_TEXT, "условие.txt").status_code == 201


def test_an_infected_file_is_422_and_nothing_is_stored(auth_client, settings, clamd, media_root):
    settings.ATTACHMENT_SCAN_URL = clamd
    response = upload(auth_client, EICAR, "homework.txt")
    assert response.status_code == 422
    assert response.json()["code"] == "infected"
    assert not Attachment.objects.exists()
    assert not media_root.exists() or not any(path.is_file() for path in media_root.rglob("*"))


def test_an_unreachable_scanner_is_503_and_nothing_is_stored(auth_client, settings):
    settings.ATTACHMENT_SCAN_URL = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    response = upload(auth_client, image_bytes(), "задача.png")
    assert response.status_code == 503
    assert response.json()["code"] == "scanner_unavailable"
    assert response["Retry-After"] == "30"
    assert not Attachment.objects.exists()
