"""Request ids for log lines: set per request, read by a logging filter."""

import logging
import traceback
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")


class RequestIDFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def _is_database_error(exc_type: type) -> bool:
    from django.db import DatabaseError

    if issubclass(exc_type, DatabaseError):
        return True
    module = getattr(exc_type, "__module__", "")
    return module.startswith(("psycopg", "sqlite3"))


def _scrubbed(exc: BaseException) -> str:
    """What a database error may say in a log: names from the schema, no values.

    PostgreSQL's messages carry the rejected values ("Failing row contains
    (..., <the student's message>, ...)", "Key (email)=(...)"); its
    diagnostics name the constraint, table and column without them.
    """
    diag = getattr(exc, "diag", None) or getattr(exc.__cause__, "diag", None)
    parts = [
        f"{name}={value}"
        for name in ("sqlstate", "constraint_name", "table_name", "column_name")
        if (value := getattr(diag, name, None))
    ]
    return f"[message scrubbed{': ' + ' '.join(parts) if parts else ''}]"


def scrubbed_traceback(ei) -> str:
    """A traceback whose database errors lose their message, which can quote
    what a student wrote."""
    if ei[1] is None:
        return logging.Formatter().formatException(ei)
    te = traceback.TracebackException.from_exception(ei[1])
    _scrub_chain(te, ei[1], set())
    return "".join(te.format()).rstrip("\n")


class OneLineFormatter(logging.Formatter):
    """One line per record, request id included, tracebacks too (scrubbed)."""

    def formatException(self, ei) -> str:
        return scrubbed_traceback(ei)

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", " \\n ")


class JSONFormatter(JsonFormatter):
    """LOG_FORMAT=json: one JSON object per line for a log shipper; a
    record's `extra` fields (the access line's and the reply line's) become
    keys of their own, and tracebacks are scrubbed as in the line format."""

    def formatException(self, ei) -> str:  # type: ignore[override]
        return scrubbed_traceback(ei)


def _scrub_chain(te: traceback.TracebackException, exc: BaseException | None, seen: set[int]) -> None:
    """Walks the exception chain and its rendering side by side."""
    if exc is None or id(exc) in seen:
        return
    seen.add(id(exc))
    if _is_database_error(type(exc)):
        te._str = _scrubbed(exc)
    for link in ("__cause__", "__context__"):
        te_next = getattr(te, link, None)
        if te_next is not None:
            _scrub_chain(te_next, getattr(exc, link), seen)
