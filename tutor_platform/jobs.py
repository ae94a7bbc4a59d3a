"""Scheduled jobs on several app servers: one runs, the others say so.

`deploy/crontab` is installed on every app server, so each job starts on
each of them at the same minute. `only_one(name)` takes a PostgreSQL
advisory lock for the job (session-level, released at the end or when the
process dies); a server that finds it held skips the job. SQLite is one
host's database: there the job always runs.
"""

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


def _key(name: str) -> int:
    return zlib.crc32(f"tutor_platform.jobs:{name}".encode())


@contextmanager
def only_one(name: str) -> Iterator[bool]:
    """True inside when this process runs job `name`; False when another holds it."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_key(name)])
        taken = bool(cursor.fetchone()[0])
    if not taken:
        yield False
        return
    try:
        yield True
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_key(name)])
