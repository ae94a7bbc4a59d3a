"""Where the ML team's export commands write: a file, or standard output."""

import sys
from collections.abc import Iterable


def write_lines(lines: Iterable[str], path: str | None) -> None:
    """Writes `lines` as they come, to `path` (UTF-8) or to standard output."""
    if not path:
        sys.stdout.writelines(lines)
        return
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(lines)
