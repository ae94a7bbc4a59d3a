"""The attachment errors the API answers (each with its stable `code`)."""

from rest_framework import status
from rest_framework.exceptions import APIException


class FileTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The file is larger than the limit."
    default_code = "file_too_large"


class UnsupportedType(APIException):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    default_detail = "Only JPEG, PNG and WebP images, PDF documents and UTF-8 text files can be attached."
    default_code = "unsupported_type"


class BadImage(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "The image cannot be read."
    default_code = "bad_image"


class StorageQuotaExceeded(APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = "Your attachments use all the storage you have: delete some first."
    default_code = "storage_quota_exceeded"


class Infected(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The virus scanner found malware in this file: nothing was stored."
    default_code = "infected"


class ScannerUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The virus scanner cannot be reached: please try again shortly."
    default_code = "scanner_unavailable"
    retry_after = 30


class AttachmentInUse(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "A message shows this attachment: it cannot be deleted."
    default_code = "attachment_in_use"
