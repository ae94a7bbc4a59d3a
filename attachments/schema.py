"""The OpenAPI declarations of attachments.views, kept next to them."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view

from tutor_platform.schema import NOT_FOUND, THROTTLED, UNAUTHORIZED, VALIDATION_ERROR, error

from .models import EXTENSIONS
from .serializers import AttachmentSerializer, UploadSerializer

_SIGNATURE = OpenApiParameter(
    "signature",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    description=(
        "From a signed link (what AI-Core, the data export and the admin are given): the file without "
        "a token, for ATTACHMENT_URL_SECONDS (600 s). Without it, the owner's access token is needed."
    ),
)
_FILE = OpenApiResponse(
    OpenApiTypes.BINARY,
    description=(
        "The stored bytes, with their `Content-Type` (`image/jpeg`, `image/png`, `image/webp`, "
        "`application/pdf`, `text/plain; charset=utf-8`), `X-Content-Type-Options: nosniff` and "
        "`Content-Security-Policy: sandbox`; documents as `Content-Disposition: attachment`. With "
        "`Accept: application/octet-stream` exactly, the same bytes as `application/octet-stream` "
        "(a download)."
    ),
)
# The bytes' media types; a generic client reads `application/octet-stream` as bytes.
CONTENT_TYPES = ["application/octet-stream", *EXTENSIONS]

ATTACHMENTS = extend_schema_view(
    create=extend_schema(
        request={"multipart/form-data": UploadSerializer},
        responses={
            201: AttachmentSerializer,
            400: OpenApiResponse(
                {"anyOf": [error("", "bad_image").response, {"type": "object"}]},
                description=(
                    "`bad_image`: an image that does not decode, or has more than ATTACHMENT_MAX_PIXELS "
                    "(40 000 000) pixels; or no `file` part (DRF's field errors)."
                ),
            ),
            401: UNAUTHORIZED,
            413: error(
                "The file is larger than ATTACHMENT_MAX_BYTES (10 MiB); refused before it is read whole.",
                "file_too_large",
            ),
            415: error(
                "`unsupported_type`: the content is not a JPEG, PNG or WebP image, a PDF without active "
                "content or UTF-8 text without markup (names and declared types are not looked at); "
                "`unsupported_media_type`: the body is not `multipart/form-data`.",
                "unsupported_type",
                "unsupported_media_type",
            ),
            422: error("The virus scanner found malware; nothing was stored.", "infected"),
            429: error(
                "Too many uploads (`throttled`, THROTTLE_UPLOAD_RATE), or your attachments already use "
                "ATTACHMENT_STORAGE_PER_USER (`storage_quota_exceeded`). See `Retry-After` when throttled.",
                "throttled",
                "storage_quota_exceeded",
            ),
            503: error(
                "The virus scanner (`scanner_unavailable`) or the database (`database_unavailable`) "
                "cannot be reached; see `Retry-After`.",
                "scanner_unavailable",
                "database_unavailable",
            ),
        },
    ),
    retrieve=extend_schema(
        responses={200: AttachmentSerializer, 400: VALIDATION_ERROR, 401: UNAUTHORIZED, 404: NOT_FOUND}
    ),
    destroy=extend_schema(
        responses={
            204: None,
            400: VALIDATION_ERROR,
            401: UNAUTHORIZED,
            404: NOT_FOUND,
            409: error("A message shows this attachment: it stays.", "attachment_in_use"),
        }
    ),
    content=extend_schema(
        parameters=[_SIGNATURE],
        auth=[{"jwtAuth": []}, {}],  # the token, or a signed link instead
        responses={
            **{(200, content_type): _FILE for content_type in CONTENT_TYPES},
            400: VALIDATION_ERROR,
            401: UNAUTHORIZED,
            403: error("The signed link was changed, or has expired.", "invalid_signature"),
            404: NOT_FOUND,
            429: THROTTLED,
        },
    ),
)
