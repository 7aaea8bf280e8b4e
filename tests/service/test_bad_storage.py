"""A database that is down, read-only or failing mid-block: the block ingest is rolled back whole and the
error says what to do (issue 4, "Bad input")."""

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from store.backends import require_postgres
from typer.testing import CliRunner

from aicf.bootstrap.cli import app
from aicf.bootstrap.stores import open_store
from aicf.chain.devnet import Devnet
from aicf.core.chain import Job, TxKind
from aicf.service.ingest import ingest_next
from aicf.service.state_digest import state_digest
from aicf.store.interface import StoreUnavailableError, Tx
from aicf.store.sqlite import SqliteStore
from service.helpers import ALICE, P, ai_body, depth_stub, devnet, ingest


def _chain_with_work() -> Devnet:
    net = devnet()
    net.submit(ALICE, TxKind.DEPOSIT, {"to": ALICE, "amount": 10_000_000})
    net.mine()
    net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body())
    net.mine()
    return net


def test_a_read_only_sqlite_database_rolls_the_block_back_and_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "aicf.db"
    net = _chain_with_work()
    writable = SqliteStore(path)
    ingest_next(writable, net, P, depth_stub)  # genesis only
    before = state_digest(writable)
    writable.close()
    read_only = SqliteStore(path, read_only=True)
    try:
        with pytest.raises(StoreUnavailableError, match="read-only") as caught:
            ingest_next(read_only, net, P, depth_stub)
        assert "nothing was written" in str(caught.value)
    finally:
        read_only.close()
    again = SqliteStore(path)
    try:
        assert state_digest(again) == before
        ingest(again, net)  # once writable, ingestion goes on from where it stopped
        with again.transaction() as tx:
            head = tx.head_block()
        assert head is not None
        assert head.height == net.head_height()
    finally:
        again.close()


def _ingest_into(path: Path) -> None:
    store = SqliteStore(path)
    try:
        ingest_next(store, _chain_with_work(), P, depth_stub)
    finally:
        store.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file permissions")
def test_a_sqlite_file_without_write_permission_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "aicf.db"
    SqliteStore(path).close()
    path.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(StoreUnavailableError, match=r"read-only|cannot be used"):
            _ingest_into(path)
    finally:
        tmp_path.chmod(0o755)
        path.chmod(0o644)


def test_postgres_on_a_wrong_port_is_refused_at_once_with_a_hint() -> None:
    with pytest.raises(StoreUnavailableError, match="does not answer") as caught:
        open_store("postgresql://postgres@127.0.0.1:1/test")
    assert "start the server or fix --db" in str(caught.value)


def test_the_cli_reports_an_unreachable_database_and_exits_1() -> None:
    result = CliRunner().invoke(app, ["db", "verify", "--db", "postgresql://postgres@127.0.0.1:1/test"])
    assert result.exit_code == 1
    assert "does not answer" in result.output


@pytest.mark.postgres
def test_a_postgres_role_that_may_not_write_rolls_the_block_back() -> None:
    require_postgres()
    from store.backends import PG_DSN, drop_schema, new_schema

    from aicf.store.postgres import PostgresStore

    schema = new_schema()
    PostgresStore(PG_DSN, schema=schema).close()  # created and migrated while writable
    store = PostgresStore(PG_DSN + "?options=-cdefault_transaction_read_only%3Don", schema=schema)
    try:
        with pytest.raises(StoreUnavailableError, match="refused the write"):
            ingest_next(store, _chain_with_work(), P, depth_stub)
    finally:
        store.close()
        drop_schema(schema)


class _FailingTx:
    """The real transaction, except that writing jobs fails."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def insert_jobs(self, jobs: Sequence[Job]) -> None:
        raise StoreUnavailableError("the disk went away", "nothing was written; retry")


class _FailingStore(SqliteStore):
    """Fails while writing a block's jobs, after its block row, entries and refusals were written."""

    def __init__(self) -> None:
        super().__init__(":memory:")

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with super().transaction() as tx:
            yield _FailingTx(tx)


def test_a_failure_mid_block_leaves_nothing_half_written() -> None:
    net = _chain_with_work()
    store = _FailingStore()
    ingest_next(store, net, P, depth_stub)
    ingest_next(store, net, P, depth_stub)  # the deposit block has no job to write
    before = state_digest(store)
    with pytest.raises(StoreUnavailableError):
        ingest_next(store, net, P, depth_stub)
    assert state_digest(store) == before
