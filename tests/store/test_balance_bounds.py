"""Issue 15: no balance may leave 64 bits; a store holding a value of the wrong type is reported, not a crash."""

import sqlite3
from pathlib import Path

import pytest

from aicf.core.ledger import EXTERNAL, TREASURY, BalanceOverflowError, Posting, provider_account
from aicf.core.types import MicroAnm
from aicf.service.audit import verify
from aicf.store.interface import Store
from aicf.store.sqlite import SqliteStore
from store.backends import memory_store

MAX = 2**63 - 1
ACCOUNT = provider_account(b"\x01" * 32)


def mint(store: Store, amount: int, ref: bytes = b"m") -> None:
    with store.transaction() as tx:
        tx.post([Posting(debit=EXTERNAL, credit=ACCOUNT, amount=MicroAnm(amount), ref_kind="deposit", ref=ref)], 1, 1)
        tx.commit()


def test_a_posting_that_would_take_a_balance_past_2_63_is_refused_and_nothing_is_stored(store: Store) -> None:
    mint(store, MAX)
    with pytest.raises(BalanceOverflowError, match=r"external: balance -9223372036854775807"):
        mint(store, 1, b"n")
    with store.transaction() as tx:
        assert tx.balances([ACCOUNT, EXTERNAL]) == {ACCOUNT: MAX, EXTERNAL: -MAX}
    assert verify(store).ok


def test_db_verify_reports_a_balance_stored_as_a_float_instead_of_crashing(tmp_path: Path) -> None:
    path = tmp_path / "odd.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO balances (account, amount) VALUES ('external', 1.8446744073709552e19)")
    conn.commit()
    conn.close()
    store = SqliteStore(path)
    try:
        report = verify(store)
    finally:
        store.close()
    assert not report.ok
    assert "a stored value is not an integer: got float" in report.problems[0]


def test_a_root_rotation_whose_retirement_height_would_pass_2_63_is_refused_naming_overlap_blocks() -> None:
    from proofs.attestation.conftest import new_test_nitro

    from aicf.core.clock import FakeClock
    from aicf.service.errors import InvalidRootError
    from aicf.service.trust import TrustRegistry

    store = memory_store()
    registry = TrustRegistry(store, FakeClock(1_767_225_600))
    registry.add_root(vendor="aws", name="nitro", der=new_test_nitro("old").root_der, activation_height=0)
    with pytest.raises(InvalidRootError, match="overlap_blocks"):
        registry.rotate_root(
            vendor="aws", name="nitro", der=new_test_nitro("new").root_der, activation_height=MAX, overlap_blocks=MAX
        )
    assert len(registry.changes()) == 1


def test_chain_deposits_that_would_take_the_supply_past_2_63_are_refused_not_wedging_ingest() -> None:
    from service.helpers import devnet, ingest

    from aicf.core.chain import TxKind
    from aicf.core.ledger import requester_account

    store, net = memory_store(), devnet()
    alice, bob = b"\x0a" * 20, b"\x0b" * 20
    net.submit(alice, TxKind.DEPOSIT, {"to": alice, "amount": MAX - 10**9})
    net.submit(bob, TxKind.DEPOSIT, {"to": bob, "amount": 10**9})  # fits bob's account; the supply would not
    net.mine()
    ingest(store, net)
    accounts = [requester_account(alice), requester_account(bob), TREASURY, EXTERNAL]
    with store.transaction() as tx:
        snap = tx.snapshot()
        got = tx.balances(accounts)
    assert (got[accounts[0]], got[accounts[1]]) == (MAX - 10**9, 0)
    assert got[EXTERNAL] == -(MAX - 10**9) - got[TREASURY]  # the block's mint and alice's deposit only
    assert [(r.field, "supply would pass 2^63" in r.reason) for r in snap.refused] == [("amount", True)]
    assert verify(store).ok
