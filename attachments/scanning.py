"""Virus scanning with clamd (ATTACHMENT_SCAN_URL), over its INSTREAM command.

The file is sent in chunks, each prefixed with its length as a 4-byte
big-endian integer, ended by a zero length; clamd answers
`stream: OK` or `stream: <signature> FOUND`. Anything else (no answer in
ATTACHMENT_SCAN_TIMEOUT, a refused connection, an error line) means the
file was not scanned: the upload is refused with 503, never let through.
"""

import logging
import socket
import struct
from typing import IO
from urllib.parse import urlsplit

from django.conf import settings

from .exceptions import Infected, ScannerUnavailable

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
MAX_REPLY = 4096


def scan(upload: IO[bytes]) -> None:
    """Raises Infected or ScannerUnavailable; returns when clamd found nothing (or no scanner is set)."""
    if not settings.ATTACHMENT_SCAN_URL:
        return
    try:
        reply = _instream(upload)
    except OSError as exc:
        logger.warning("Virus scanner unavailable: %s", exc)
        raise ScannerUnavailable() from exc
    finally:
        upload.seek(0)
    if reply.endswith(" FOUND"):
        logger.warning(
            "Upload refused: clamd found %s", reply.removeprefix("stream: ").removesuffix(" FOUND")
        )
        raise Infected()
    if reply != "stream: OK":
        logger.warning("Virus scanner answered %r", reply[:200])
        raise ScannerUnavailable()


def _connect() -> socket.socket:
    address = urlsplit(settings.ATTACHMENT_SCAN_URL)
    timeout = settings.ATTACHMENT_SCAN_TIMEOUT
    if address.scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address.path)
        except OSError:
            sock.close()
            raise
        return sock
    return socket.create_connection((address.hostname, address.port or 3310), timeout=timeout)


def _instream(upload: IO[bytes]) -> str:
    upload.seek(0)
    with _connect() as sock:
        sock.sendall(b"zINSTREAM\0")
        while chunk := upload.read(CHUNK):
            sock.sendall(struct.pack(">I", len(chunk)) + chunk)
        sock.sendall(struct.pack(">I", 0))
        reply = b""
        while not reply.endswith(b"\0") and len(reply) < MAX_REPLY:
            received = sock.recv(MAX_REPLY)
            if not received:
                break
            reply += received
    return reply.rstrip(b"\0").decode("utf-8", "replace").strip()
