"""Request id, access log, body size limit, the admin's language and time zone."""

import logging
import re
import time
import uuid
import zoneinfo
from collections.abc import Callable, Iterator

from django.conf import settings
from django.core.signals import request_finished
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone, translation
from rest_framework.throttling import BaseThrottle

from .logging import request_id_var
from .parsers import declared_length

access_log = logging.getLogger("tutor_platform.access")

# A client-supplied id is echoed only when it is short and harmless in a log line.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestIDMiddleware:
    """Tags the request with an `X-Request-ID` and logs one line per request.

    The line holds the method, the path (never the query string or body, which
    may carry message text), the status, the duration, the user id and the
    client address (after NUM_PROXIES proxies, as the throttles see it). A
    streamed answer is logged when its last byte is sent (or the client
    left), so its duration is the stream's; how the reply itself ended is
    the flow's line (chats.replies.flow).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        # Kept until the response is closed (see below), not just while the
        # middleware runs: Django logs 4xx/5xx responses after the middleware
        # chain has returned, and those lines need the id too.
        request_id_var.set(request_id)
        started = time.monotonic()
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        if response.streaming:
            response.streaming_content = _logged_when_sent(
                response.streaming_content, request, response, started
            )
        else:
            _log_access(request, response, started)
        return response


def _logged_when_sent(content: Iterator[bytes], request: HttpRequest, response: HttpResponse, started: float):
    try:
        yield from content
    finally:
        _log_access(request, response, started)


def _log_access(request: HttpRequest, response: HttpResponse, started: float) -> None:
    user = getattr(request, "user", None)
    fields = {
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
        "user_id": user.pk if user is not None and user.is_authenticated else None,
        "client": BaseThrottle().get_ident(request),
    }
    access_log.info(
        "%s %s %s %.1fms user=%s client=%s",
        fields["method"],
        fields["path"],
        fields["status"],
        fields["duration_ms"],
        fields["user_id"] or "-",
        fields["client"],
        extra=fields,
    )


@receiver(request_finished)
def _forget_request_id(**kwargs: object) -> None:
    request_id_var.set("-")


class BodySizeLimitMiddleware:
    """Answers JSON 413 for a body above DATA_UPLOAD_MAX_MEMORY_SIZE (and 400
    for a NUL in the query string, which the database would choke on).

    DRF's parsers read the request stream directly, so Django's own check on
    `request.body` never runs for API requests; this one runs before them.
    An upload to UPLOAD_PATH is bounded by its own parser instead
    (attachments.uploads: ATTACHMENT_MAX_BYTES, read into a temporary file).
    """

    UPLOAD_PATH = "/api/v1/attachments/"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        length = declared_length(request.META)
        if "" in request.GET or any(
            "\x00" in value for _key, values in request.GET.lists() for value in values
        ):
            return JsonResponse(
                {
                    "detail": "Malformed query string (a NUL character or a nameless parameter).",
                    "code": "bad_request",
                },
                status=400,
            )
        if limit is not None and length > limit and request.path_info != self.UPLOAD_PATH:
            return JsonResponse(
                {
                    "detail": f"Request body is larger than {limit} bytes.",
                    "code": "request_too_large",
                },
                status=413,
            )
        return self.get_response(request)


class APIErrorPagesMiddleware:
    """Under /api/, Django's HTML error pages become JSON, DEBUG's too.

    With DEBUG=False the handler404/handler500 views already answer JSON;
    with DEBUG=True Django shows its technical pages instead, which generated
    clients cannot parse.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code in (404, 500)
            and request.path.startswith("/api/")
            and response.get("Content-Type", "").startswith("text/html")
        ):
            if response.status_code == 404:
                return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
            return JsonResponse({"detail": "Internal server error.", "code": "server_error"}, status=500)
        return response


class StaffLocaleMiddleware:
    """The admin in the staff's language and time zone; everything else in
    English and UTC, as the API contract says.

    Staff pick their language with Django's `set_language` view (a cookie);
    without one the admin speaks STAFF_LANGUAGE and shows STAFF_TIME_ZONE.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.staff_zone = zoneinfo.ZoneInfo(settings.STAFF_TIME_ZONE)
        self.languages = {code for code, _name in settings.LANGUAGES}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(("/admin/", "/i18n/")):
            chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
            language = chosen if chosen in self.languages else settings.STAFF_LANGUAGE
            translation.activate(language)
            request.LANGUAGE_CODE = language
            timezone.activate(self.staff_zone)
            try:
                response = self.get_response(request)
            finally:
                translation.deactivate()
                timezone.deactivate()
            response.headers.setdefault("Content-Language", language)
            return response
        return self.get_response(request)
