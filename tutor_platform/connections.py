"""The database connection around long waits."""

from django.db import connection


def release_db_connection() -> None:
    """Hands the connection back (to the pool, or closes it) before a long wait.

    A request thread waiting on AI-Core for up to a minute must not hold one
    of the database's scarce connections; the next query reconnects. Inside
    a transaction (only in tests) there is nothing to release.
    """
    if not connection.in_atomic_block:
        connection.close()
