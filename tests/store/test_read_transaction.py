"""Issue 15: reads never take the write lock. SQLite reads run on a query-only connection with a deferred BEGIN;
PostgreSQL reads are READ ONLY; the read use-cases of aicf.service.reads use them."""

import sqlite3
from pathlib import Path

import pytest

from aicf.core.ledger import EXTERNAL, Posting, provider_account
from aicf.core.params import Params
from aicf.core.types import MicroAnm
from aicf.service import reads
from aicf.store.interface import Store, StoreError, read_transaction
from aicf.store.sqlite import SqliteStore

ACCOUNT = provider_account(b"\x02" * 32)


def fund(store: Store, amount: int) -> None:
    with store.transaction() as tx:
        tx.post([Posting(debit=EXTERNAL, credit=ACCOUNT, amount=MicroAnm(amount), ref_kind="deposit", ref=b"f")], 1, 1)
        tx.commit()


def test_a_read_transaction_leaves_the_write_lock_free_for_another_process(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "a.db")
    fund(store, 7)
    other = sqlite3.connect(tmp_path / "a.db", timeout=0, isolation_level=None)
    try:
        with read_transaction(store) as tx:
            assert tx.balances([ACCOUNT]) == {ACCOUNT: 7}
            other.execute("BEGIN IMMEDIATE")  # would raise "database is locked" under a write lock
            other.execute("UPDATE balances SET amount = 8 WHERE account = ?", (ACCOUNT,))
            other.execute("COMMIT")
            assert tx.balances([ACCOUNT]) == {ACCOUNT: 7}  # one snapshot for the whole read
    finally:
        other.close()
        store.close()


def test_read_use_cases_answer_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "b.db")
    fund(store, 9)
    writer = sqlite3.connect(tmp_path / "b.db", timeout=0, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        assert reads.get_balances(store, [ACCOUNT]) == {ACCOUNT: 9}
        assert reads.list_providers(store, 1_700_000_000, Params.default(), None, 500) == []
        assert reads.status(store, 1_700_000_000, Params.default()).treasury == 0
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        store.close()


def write_in_a_read_transaction(store: Store) -> None:
    with read_transaction(store) as tx:
        tx.post([Posting(debit=EXTERNAL, credit=ACCOUNT, amount=MicroAnm(1), ref_kind="deposit", ref=b"g")], 1, 1)
        tx.commit()


def test_a_write_inside_a_read_transaction_fails_and_changes_nothing(store: Store) -> None:
    fund(store, 5)
    with pytest.raises(StoreError):  # the query-only connection (SQLite) or READ ONLY (PostgreSQL) refuses it
        write_in_a_read_transaction(store)
    with store.transaction() as tx:
        assert tx.balances([ACCOUNT]) == {ACCOUNT: 5}


def test_every_read_transaction_refuses_writes_not_only_the_first(store: Store) -> None:
    """The SQLite reader is made query-only once, when it opens: later reads on it must refuse writes too, and
    a write transaction between them still writes."""
    fund(store, 5)
    for _ in range(3):
        with pytest.raises(StoreError):
            write_in_a_read_transaction(store)
        fund(store, 1)
    with read_transaction(store) as tx:
        assert tx.balances([ACCOUNT]) == {ACCOUNT: 8}
