"""Every error from the API is JSON with a stable `code`.

Validation errors keep DRF's field body (`{"field": ["message"]}`); every
other error is `{"detail": "...", "code": "..."}`.
"""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class DatabaseUnavailable(exceptions.APIException):
    """The database refused or dropped the connection, or no pooled one was free in time."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The service is busy right now. Please retry shortly."
    default_code = "database_unavailable"
    retry_after = 5


def is_database_outage(exc: BaseException) -> bool:
    """Connection-level database failures (not bad queries): worth a 503 and a retry."""
    return isinstance(exc, OperationalError | InterfaceError)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    # Django's own exceptions become DRF's, so they carry a code too.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif is_database_outage(exc):
        logger.warning("Database unavailable: %s", type(exc).__name__)
        exc = DatabaseUnavailable()
    response = drf_exception_handler(exc, context)
    if response is None:
        # Unexpected: log the traceback, answer without it.
        logger.exception("Unhandled error in %s", context["view"].__class__.__name__)
        return Response(
            {"detail": "Internal server error.", "code": "server_error"},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        if not isinstance(response.data, dict):
            response.data = {"non_field_errors": response.data}
        return response
    if isinstance(response.data, dict) and "detail" in response.data and "code" not in response.data:
        codes = exc.get_codes()
        response.data = {**response.data, "code": codes if isinstance(codes, str) else exc.default_code}
    # An error may say when to retry (`retry_after`, seconds) and carry more fields (`extra`).
    if getattr(exc, "retry_after", None) is not None:
        response["Retry-After"] = str(exc.retry_after)
    response.data.update(getattr(exc, "extra", {}))
    return response


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _json_error(status_code: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status_code)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    return _json_error(400, "Bad request.", "bad_request")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return defaults.permission_denied(request, exception)
    return _json_error(403, "You do not have permission to perform this action.", "permission_denied")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return defaults.page_not_found(request, exception)
    return _json_error(404, "Not found.", "not_found")


def server_error(request: HttpRequest) -> HttpResponse:
    if not _is_api(request):
        return defaults.server_error(request)
    return _json_error(500, "Internal server error.", "server_error")
