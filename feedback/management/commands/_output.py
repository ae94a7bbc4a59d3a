"""Where the ML team's export commands write: Django's storage (the same as
attachments': local in development, S3-compatible in production), a file,
or standard output."""

import sys
import tempfile
from collections.abc import Iterable

from django.core.files import File
from django.core.files.storage import default_storage

SPOOL_BYTES = 4 * 1024 * 1024


def write_lines(lines: Iterable[str], path: str | None) -> None:
    """Writes `lines` as they come, to `path` (UTF-8) or to standard output."""
    if not path:
        sys.stdout.writelines(lines)
        return
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(lines)


def store_lines(lines: Iterable[str], name: str) -> str:
    """Writes `lines` (UTF-8) to Django's storage as `name`, through a
    temporary file (memory stays bounded); returns the name stored (a
    suffix is added when `name` exists)."""
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        for line in lines:
            spool.write(line.encode())
        spool.seek(0)
        return default_storage.save(name, File(spool, name=name))
