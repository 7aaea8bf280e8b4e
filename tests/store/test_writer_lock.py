"""The writer lock (docs/EVM.md): of the processes on one PostgreSQL database exactly one holds it; the holder keeps
it until it closes it or its session ends, and then another takes it at its next try; a holder whose connection
was lost (pg_terminate_backend) is told so, connects again and waits its turn. A store only one process opens
(SQLite) is always its own writer."""

from collections.abc import Iterator

import pytest

from aicf.store.interface import SoleWriter, writer_lock
from aicf.store.postgres import PostgresWriterLock
from store.backends import fresh_database, memory_store

WRITER_KEY = 4242004  # aicf/store/sql/postgres.sql: try_lock_writer


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A database of its own: the lock is per database, and other tests share `test`."""
    with fresh_database("wlock") as url:
        yield url


def holders(dsn: str) -> list[str]:
    """The application_name of each session holding the writer lock."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        found = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.objid = %s AND l.granted",
            (WRITER_KEY,),
        ).fetchall()
    return [str(row[0]) for row in found]


def terminate_holder(dsn: str) -> int:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s",
            (WRITER_KEY,),
        ).fetchone()
    assert row is not None
    return int(str(row[0]))


@pytest.mark.postgres
def test_one_process_holds_the_writer_lock_until_it_releases_it(database: str) -> None:
    first, second = PostgresWriterLock(database, {}), PostgresWriterLock(database, {})
    try:
        assert first.held() is True
        assert second.held() is False  # never waits: a follower
        assert first.held() is True  # asked again: still held, taken once (one row in pg_locks)
        assert len(holders(database)) == 1
        assert holders(database)[0].startswith("aicf-writer-")
        assert first._conn is not None  # a vanished holder's host is noticed in seconds, both ways
        shown = [first._conn.execute(f"SHOW {name}").fetchone() for name in ("tcp_keepalives_idle", "tcp_user_timeout")]
        assert shown == [("10",), ("25000",)]
        first.close()
        assert second.held() is True  # taken over at the next try
        assert first.held() is False
    finally:
        first.close()
        second.close()
    assert holders(database) == []


@pytest.mark.postgres
def test_a_holder_whose_connection_is_lost_is_told_and_another_takes_over(database: str) -> None:
    first, second = PostgresWriterLock(database, {}), PostgresWriterLock(database, {})
    try:
        assert first.held() is True
        assert terminate_holder(database) == 1  # the session ends: PostgreSQL releases the lock
        assert second.held() is True
        assert first.held() is False  # its connection is gone: lost; connected again, it is a follower
        assert first.held() is False
        assert len(holders(database)) == 1
        second.close()
        assert first.held() is True  # the same object, on its new connection
    finally:
        first.close()
        second.close()


def test_a_store_only_one_process_opens_is_always_its_own_writer() -> None:
    store = memory_store()
    try:
        lock = writer_lock(store)
        assert isinstance(lock, SoleWriter)
        assert lock.held() is True
    finally:
        store.close()
