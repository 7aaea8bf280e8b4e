"""PostgreSQL-only behaviour of the backend (the shared behaviour is in the contract suites)."""

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from store.backends import PG_DSN, drop_schema, new_schema, require_postgres

if TYPE_CHECKING:
    from aicf.store.postgres import PostgresStore, PostgresTx

pytestmark = pytest.mark.postgres


@pytest.fixture
def one_conn_store() -> Iterator["PostgresStore"]:
    """A store with a single pooled connection, so consecutive transactions share it."""
    require_postgres()
    from aicf.store.postgres import PostgresStore

    schema = new_schema()
    store = PostgresStore(PG_DSN, schema=schema, min_size=1, max_size=1)
    try:
        yield store
    finally:
        store.close()
        drop_schema(schema)


def _prepared(tx: "PostgresTx") -> int:
    row = tx._conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
    assert row is not None
    return int(str(row[0]))


def test_a_transaction_left_without_commit_keeps_the_connections_prepared_statements(
    one_conn_store: "PostgresStore",
) -> None:
    # psycopg's own rollback() deallocates every prepared statement; read-only transactions end without a
    # commit, so that re-prepared half the statements of a lifecycle run
    with one_conn_store.transaction() as tx:
        tx.job_counts()
        tx.get_job(b"\x01" * 32)
        before = _prepared(tx)
    assert before >= 2
    with one_conn_store.transaction() as tx:
        assert _prepared(tx) == before


def test_a_transaction_left_without_commit_still_writes_nothing(one_conn_store: "PostgresStore") -> None:
    with one_conn_store.transaction() as tx:
        tx.append_event("jobAssigned", b"x", 1)
    with one_conn_store.transaction() as tx:
        assert tx.events_since(0, ["jobAssigned"], 10) == []


def test_a_failed_statement_rolls_back_and_the_connection_serves_the_next_transaction(
    one_conn_store: "PostgresStore",
) -> None:
    import psycopg.errors

    def fail_mid_transaction() -> None:
        with one_conn_store.transaction() as tx:
            tx.append_event("jobAssigned", b"x", 1)
            tx._conn.execute("SELECT 1/0")

    with pytest.raises(psycopg.errors.DivisionByZero):
        fail_mid_transaction()
    with one_conn_store.transaction() as tx:
        assert tx.events_since(0, ["jobAssigned"], 10) == []
        assert tx.job_counts() == {}
