"""The connection pool's check on checkout (tutor_platform.db): a round trip
only for a connection with something to read, as one the server closed has."""

import time

import psycopg
import pytest
from django.db import connection
from psycopg_pool import ConnectionPool

from tutor_platform.db.base import DatabaseWrapper, _quiet

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (its connection pool)"),
    pytest.mark.django_db(transaction=True),
]


def terminate(pid: int) -> None:
    """Ends server process `pid` as a restart or failover would, and waits until it is gone."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(200):
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} did not end")


@pytest.fixture
def pool():
    settings_dict = {**connection.settings_dict, "OPTIONS": {"pool": {"min_size": 1, "max_size": 2}}}
    wrapper = DatabaseWrapper(settings_dict, alias="pool_check")
    wrapper.pool.open(wait=True)
    yield wrapper.pool
    wrapper.close_pool()


@pytest.fixture
def full_checks(monkeypatch) -> list[int]:
    """The round-trip checks made, by the pid of the connection checked."""
    made: list[int] = []
    check = ConnectionPool.check_connection

    def counted(conn):
        made.append(conn.info.backend_pid)
        return check(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counted))
    return made


def test_a_connection_used_a_moment_ago_is_handed_out_without_a_round_trip(pool, full_checks):
    with pool.connection() as conn:
        conn.execute("SELECT 1")
    for _ in range(3):
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert full_checks == []


def test_a_connection_the_server_closed_is_checked_and_replaced(pool, full_checks):
    with pool.connection() as conn:
        dead = conn.info.backend_pid
    terminate(dead)
    with pool.connection() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.info.backend_pid != dead
    assert dead in full_checks


def test_quiet_reads_the_socket_only():
    conn = psycopg.connect(_conninfo(), autocommit=True)
    assert _quiet(conn)
    terminate(conn.info.backend_pid)
    assert not _quiet(conn)  # the server's goodbye is waiting to be read
    conn.close()
    assert not _quiet(conn)  # closed on this side


def _conninfo() -> str:
    params = connection.get_connection_params()
    return psycopg.conninfo.make_conninfo(
        **{
            key: value
            for key, value in params.items()
            if key in ("dbname", "user", "host", "port", "password")
        }
    )
