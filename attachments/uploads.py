"""Receiving an upload without holding it in memory, and refusing one that
is too large before (Content-Length) or while (the bytes counted) it is read.

The file goes to a temporary file chunk by chunk (Django's upload handler
API); past ATTACHMENT_MAX_BYTES the upload stops with 413 `file_too_large`.
"""

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework.exceptions import ParseError
from rest_framework.parsers import DataAndFiles, MultiPartParser

from tutor_platform.parsers import declared_length

from .exceptions import FileTooLarge

# The multipart envelope around the file: boundaries, part headers, a long
# (UTF-8) file name. More than this beyond the file's limit is refused unread.
ENVELOPE_BYTES = 16 * 1024
DRAIN_CHUNK = 64 * 1024


def too_large() -> FileTooLarge:
    limit = settings.ATTACHMENT_MAX_BYTES
    return FileTooLarge(f"The file is larger than {limit} bytes ({limit / 1024 / 1024:.0f} MiB).")


def declared_over_the_limit(meta: dict[str, Any]) -> bool:
    return declared_length(meta) > settings.ATTACHMENT_MAX_BYTES + ENVELOPE_BYTES


def drain(request: HttpRequest) -> None:
    """Reads and drops what is left of an upload answered before it was read
    (401, 429, 415; or stopped at the limit). gunicorn drains only 64 KiB of
    an unread body and then closes the connection, with the rest unread: the
    proxy in front gets a reset while it still sends, and the client a 502
    instead of this answer. A body whose Content-Length is over the limit is
    never read: it was refused for that."""
    if declared_over_the_limit(request.META):
        return
    try:
        while request.read(DRAIN_CHUNK):
            pass
    except OSError:  # the client went away
        pass


class BoundedUploadHandler(TemporaryFileUploadHandler):
    """Django's temporary-file handler, counting every byte it is given."""

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > settings.ATTACHMENT_MAX_BYTES:
            self.upload_interrupted()  # the partial temporary file goes at once
            raise too_large()
        return super().receive_data_chunk(raw_data, start)


class UploadParser(MultiPartParser):
    """`multipart/form-data`, bounded as above."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> DataAndFiles:
        request = (parser_context or {})["request"]
        if declared_over_the_limit(request.META):
            raise too_large()
        meta = {**request.META, "CONTENT_TYPE": media_type}
        handlers = [BoundedUploadHandler(request._request)]
        try:
            data, files = DjangoMultiPartParser(meta, stream, handlers, request._request.encoding).parse()
        except MultiPartParserError as exc:
            raise ParseError(f"Multipart form parse error - {exc}") from exc
        return DataAndFiles(data, files)
