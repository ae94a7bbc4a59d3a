"""Django's PostgreSQL backend, with a pool that survives a mass disconnect.

With Django's pool, each connection is checked before it is handed out; a
dead one is dropped and the pool sleeps before trying the next (1 s, 2 s,
4 s, ...). After a restart or failover every idle connection is dead, so the
first requests waited out `DB_POOL_TIMEOUT` and failed with 503. Here the
first failed check checks every idle connection at once (psycopg_pool's
`check()`), which drops the dead ones and opens replacements, so the next
attempt finds a fresh connection after one short pause.

The check itself is a round trip to the server on every checkout, and a
request checks a connection out at least once (a send: twice, around the
AI-Core call): bench/fixed_cost.py measured `/health/` at 544 µs of CPU
with it and 525 µs without, and the server runs a query less. A connection the server closed (a restart, a
failover, `pg_terminate_backend`) has its closing message waiting on the
socket, so only a connection with something to read is checked the full
way (`_quiet`); on an idle connection that is never the case otherwise.
"""

import select
from typing import Any

import psycopg
from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self) -> ConnectionPool | None:
        pool_options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == base.NO_DB_ALIAS or not pool_options:
            return None
        if self.alias not in self._connection_pools:
            connect_kwargs = self.get_connection_params()
            connect_kwargs["autocommit"] = True  # Django sets it properly later
            holder: dict[str, ConnectionPool] = {}

            def check(conn: Any) -> None:
                if _quiet(conn):
                    return
                try:
                    ConnectionPool.check_connection(conn)
                except Exception:
                    holder["pool"].check()  # purge every dead idle connection now
                    raise

            pool = ConnectionPool(
                kwargs=connect_kwargs,
                open=False,
                configure=self._configure_connection,
                check=check,
                **(pool_options if isinstance(pool_options, dict) else {}),
            )
            holder["pool"] = pool
            self._connection_pools.setdefault(self.alias, pool)
        return self._connection_pools[self.alias]


def _quiet(conn: Any) -> bool:
    """Whether an idle connection's socket has nothing to read: the
    server has neither closed it nor said anything since it was used."""
    poller = select.poll()  # not select(): a busy process has descriptors above 1 024
    try:
        poller.register(conn.fileno(), select.POLLIN)
    except (OSError, ValueError, psycopg.OperationalError):  # closed on this side
        return False
    return not poller.poll(0)
