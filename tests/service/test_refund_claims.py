"""Refunds claimed on an EVM chain (docs/EVM.md, "Refunds"): with the store's `evm_money` flag each
settlement batch hands every requester what the ledger owes it through the batch's finalized height (requester →
external, kind `claim`, ref H("aicf/evm/refunds/v1", epoch)), once; the devnet (no flag) keeps requester
balances. Driven by the devnet (ingestion reads any chain the same way) with SPEC's minimal preset (60 s epochs)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from store.backends import BACKENDS, memory_store, open_test_store

from aicf.chain.devnet import Devnet
from aicf.core.chain import TxKind
from aicf.core.errors import SettlementInputError
from aicf.core.jobs import JobStatus
from aicf.core.ledger import EXTERNAL, WITHDRAWAL_KIND, Posting, requester_account
from aicf.core.params import Params
from aicf.core.settlement import refund_claim_postings, refund_claims_ref
from aicf.core.types import MicroAnm
from aicf.service.audit import verify
from aicf.service.ingest import ingest_available
from aicf.store.interface import META_EVM_MONEY, Store
from service.helpers import ALICE, BOB, ai_body, depth_stub, devnet, task_of

MINIMAL = Params.minimal()  # epoch of block h: 10 h // 60, so epoch 1 begins at height 6 and epoch 2 at 12


def claims_of(store: Store, epoch: int) -> list[Posting]:
    with store.transaction() as tx:
        return tx.entries_with_ref(WITHDRAWAL_KIND, refund_claims_ref(epoch))


def balance(store: Store, account: str) -> int:
    with store.transaction() as tx:
        return tx.balances([account])[account]


def chain() -> Devnet:
    """Alice deposits (h1), enqueues (h2) and cancels (h3); Bob deposits at h10, after batch 0's finalized height
    5 and before the block (h12) that makes epoch 0's batch due; the chain runs to height 12."""
    net = devnet()
    net.submit(ALICE, TxKind.DEPOSIT, {"to": ALICE, "amount": 1_000_000})
    net.mine()
    net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body())
    net.mine()
    net.submit(ALICE, TxKind.CANCEL, {"task_id": task_of(net, 2, 0)})
    net.mine(7)  # heights 3..9
    net.submit(BOB, TxKind.DEPOSIT, {"to": BOB, "amount": 70})
    net.mine(3)  # heights 10..12: h6 (epoch 1) is final at head 12, so batch 0 settles with finalized height 5
    return net


@pytest.fixture(params=BACKENDS)
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with open_test_store(request.param, tmp_path) as s:
        yield s


def run(net: Devnet, *, flag: bool, store: Store | None = None) -> Store:
    store = memory_store() if store is None else store
    if flag:
        with store.transaction() as tx:
            tx.set_meta(META_EVM_MONEY, 1)
            tx.commit()
    ingest_available(store, net, MINIMAL, depth_stub)
    with store.transaction() as tx:
        assert tx.last_batch_epoch() == 0
        job = tx.get_job(task_of(net, 2, 0))
    assert job is not None
    assert job.status is JobStatus.CANCELLED
    return store


def test_a_batch_hands_each_requester_its_final_refunds_as_one_claim(any_store: Store) -> None:
    store = run(chain(), flag=True, store=any_store)
    # Alice: her cancelled job's whole escrow and the deposit it never used, all final by height 5.
    assert claims_of(store, 0) == [
        Posting(
            debit=requester_account(ALICE),
            credit=EXTERNAL,
            amount=MicroAnm(1_000_000),
            ref_kind=WITHDRAWAL_KIND,
            ref=refund_claims_ref(0),
        )
    ]
    assert balance(store, requester_account(ALICE)) == 0
    # Bob's deposit at height 10 is not final at batch 0: it waits for batch 1.
    assert balance(store, requester_account(BOB)) == 70
    assert verify(store).ok


def test_what_one_batch_handed_back_is_never_handed_back_again() -> None:
    net = chain()
    store = run(net, flag=True)
    net.mine(6)  # h12 (epoch 2) final at head 18: batch 1 settles with finalized height 11
    ingest_available(store, net, MINIMAL, depth_stub)
    with store.transaction() as tx:
        assert tx.last_batch_epoch() == 1
    assert [(p.debit, p.amount) for p in claims_of(store, 1)] == [(requester_account(BOB), 70)]
    assert sum(p.amount for p in claims_of(store, 0)) == 1_000_000  # unchanged: Alice is not paid twice
    assert balance(store, requester_account(ALICE)) == balance(store, requester_account(BOB)) == 0
    assert verify(store).ok


def test_on_the_devnet_requester_balances_stay_in_the_ledger() -> None:
    store = run(chain(), flag=False)
    assert claims_of(store, 0) == []
    assert balance(store, requester_account(ALICE)) == 1_000_000


def test_refund_claim_postings_refuse_what_is_not_a_requesters_and_skip_zero() -> None:
    assert refund_claim_postings(3, {requester_account(ALICE): 0}) == []
    with pytest.raises(SettlementInputError, match="not a requester account"):
        refund_claim_postings(3, {"provider:0x01": 5})
    with pytest.raises(SettlementInputError, match="outside 0"):
        refund_claim_postings(3, {requester_account(ALICE): -1})
    assert refund_claims_ref(3) != refund_claims_ref(4)


def test_balances_through_a_height_count_final_entries_and_are_capped_at_the_balance(any_store: Store) -> None:
    a, b, c = (requester_account(bytes([n]) * 20) for n in (1, 2, 3))
    with any_store.transaction() as tx:
        tx.post([Posting(debit=EXTERNAL, credit=a, amount=MicroAnm(100), ref_kind="deposit", ref=b"a")], 5, 0)
        tx.post([Posting(debit=EXTERNAL, credit=b, amount=MicroAnm(40), ref_kind="deposit", ref=b"b")], None, 0)
        tx.post([Posting(debit=EXTERNAL, credit=b, amount=MicroAnm(7), ref_kind="deposit", ref=b"b")], 9, 0)
        tx.post([Posting(debit=a, credit="escrow:0x01", amount=MicroAnm(60), ref_kind="escrow", ref=b"t")], 9, 0)
        tx.post([Posting(debit=EXTERNAL, credit=c, amount=MicroAnm(3), ref_kind="deposit", ref=b"c")], 9, 0)
        tx.post([Posting(debit=EXTERNAL, credit="fund", amount=MicroAnm(5), ref_kind="deposit", ref=b"f")], 1, 0)
        # a: 100 final, 60 drawn above height 5 -> capped at its 40; b: 40 off chain + 7 above -> 40; c: none final
        assert tx.positive_balances_through("requester:", 5) == {a: 40, b: 40}
        assert tx.positive_balances_through("requester:", 9) == {a: 40, b: 47, c: 3}
        assert tx.entries_with_ref("deposit", b"b") == [
            Posting(debit=EXTERNAL, credit=b, amount=MicroAnm(40), ref_kind="deposit", ref=b"b"),
            Posting(debit=EXTERNAL, credit=b, amount=MicroAnm(7), ref_kind="deposit", ref=b"b"),
        ]
