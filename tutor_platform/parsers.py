"""The API's JSON parser: bounded work before decoding, 400 for what the
database cannot hold.

Decoding is the expensive part of a hostile body (2.5 MB of `[],` costs
seconds of CPU), so the body is bounded before it is decoded: anonymous
requests (login, register, refresh) get a small size limit, and every body a
cheap structural one (bytes that open a container or separate elements).
"""

import json
from typing import Any

from django.conf import settings
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError

from .validators import json_problem

# Deeper JSON has no use here, and Python's parser recurses on it.
MAX_JSON_DEPTH = 32
# Commas and opening brackets in one body: far above any real request (a
# whole message of commas is MESSAGE_MAX_CHARS), far below a hostile one.
MAX_JSON_ELEMENTS = 50_000


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large."
    default_code = "request_too_large"


def declared_length(meta: dict[str, Any]) -> int:
    """The body's size as its Content-Length declares it (0 when absent or not a number)."""
    try:
        return int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _body_limit(parser_context: dict[str, Any]) -> int:
    request = parser_context.get("request")
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return settings.ANON_DATA_UPLOAD_MAX_SIZE


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = _body_limit(parser_context or {})
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(f"Request body is larger than {limit} bytes.")
        if raw.count(b",") + raw.count(b"[") + raw.count(b"{") > MAX_JSON_ELEMENTS:
            raise ParseError(f"JSON parse error - more than {MAX_JSON_ELEMENTS} elements.")
        try:
            data = json.loads(raw.decode(parsers.get_encoding(parser_context or {})), parse_constant=_reject)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply.") from exc
        problem = json_problem(data, max_depth=MAX_JSON_DEPTH)
        if problem:
            raise ParseError(f"JSON parse error - {problem}.")
        return data


def _reject(constant: str) -> None:
    raise ValueError(f"{constant} is not valid JSON")
