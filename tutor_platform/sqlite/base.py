"""Django's SQLite backend, with LIKE folding case for every script.

SQLite's own LIKE folds ASCII only, so searching tutors or courses for
"математика" would miss "Математика" on the development database while
PostgreSQL finds it. SQLite lets an application replace like(); this one
compares with Python's casefold. (It also makes Django's `contains` fold
case beyond ASCII, as it already does for ASCII on SQLite.)
"""

import functools
import re

from django.db.backends.sqlite3 import base


@functools.lru_cache(maxsize=256)
def _like_regex(pattern: str, escape: str | None) -> re.Pattern:
    parts, chars = [], iter(pattern)
    for char in chars:
        if escape is not None and char == escape:
            parts.append(re.escape(next(chars, "")))
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char.casefold()))
    return re.compile("".join(parts), re.DOTALL)


def _like(pattern: str | None, value: str | None, escape: str | None = None) -> bool | None:
    if pattern is None or value is None:
        return None
    return _like_regex(str(pattern), escape).fullmatch(str(value).casefold()) is not None


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        connection.create_function("like", 2, _like, deterministic=True)
        connection.create_function("like", 3, _like, deterministic=True)
        return connection
