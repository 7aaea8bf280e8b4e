"""Block ingestion (SPEC §2, §3, §4, §10) on SQLite :memory:, driven by the devnet and a fake clock."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from store.backends import BACKENDS, memory_store, open_test_store
from store.tx_helpers import set_requester_tier

from aicf.chain.devnet import Devnet
from aicf.core.chain import Block, TxKind
from aicf.core.jobs import JobStatus
from aicf.core.ledger import EXTERNAL, TREASURY, escrow_account, requester_account
from aicf.core.pricing import treasury_income
from aicf.service.audit import verify
from aicf.service.ingest import (
    ChainIdMismatchError,
    ReorgBelowFinalityError,
    UnknownParentError,
    ingest_available,
    ingest_block,
    ingest_next,
)
from aicf.service.state_digest import state_digest
from aicf.store.interface import Store
from aicf.store.sqlite import SqliteStore
from service.helpers import (
    ALICE,
    BOB,
    ESCROW_1000MS,
    START,
    FakeClock,
    P,
    ai_body,
    depth_stub,
    devnet,
    ingest,
    replay_digest,
    task_of,
)


@pytest.fixture
def store() -> SqliteStore:
    return memory_store()


@pytest.fixture(params=BACKENDS)
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with open_test_store(request.param, tmp_path) as s:
        yield s


def funded(amount: int = 10_000_000) -> Devnet:
    net = devnet()
    net.submit(ALICE, TxKind.DEPOSIT, {"to": ALICE, "amount": amount})
    net.mine()
    return net


def status_of(store: Store, task: bytes) -> JobStatus | None:
    with store.transaction() as tx:
        job = tx.get_job(task)
        return None if job is None else job.status


def balance(store: Store, account: str) -> int:
    with store.transaction() as tx:
        return tx.balances([account])[account]


def test_blocks_come_on_the_injected_clock() -> None:
    clock = FakeClock(START)
    net = devnet()
    assert net.tick(clock.now()) == []
    clock.advance(35)
    assert [b.height for b in net.tick(clock.now())] == [1, 2, 3]
    assert net.block_at(3) is not None
    assert net.finalized_height() == -1


def test_an_enqueue_is_pending_until_its_block_is_final_then_queued(store: Store) -> None:
    net = funded()
    net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body())
    net.mine()  # height 2
    task = task_of(net, 2, 0)
    ingest(store, net)
    assert status_of(store, task) == JobStatus.PENDING
    net.mine(5)  # head 7: height 2 not final yet (7 < 2 + 6)
    ingest(store, net)
    assert status_of(store, task) == JobStatus.PENDING
    net.mine()  # head 8: height 2 is final
    ingest(store, net)
    assert status_of(store, task) == JobStatus.QUEUED
    with store.transaction() as tx:
        moves = [(t.frm, t.to, t.height) for t in tx.transitions_of(task)]
    assert moves == [(JobStatus.PENDING, JobStatus.QUEUED, 2)]
    assert verify(store).ok


def test_the_escrow_moves_from_the_requester_at_enqueue(store: Store) -> None:
    net = funded(1_000_000)
    net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body())
    net.mine()
    ingest(store, net)
    task = task_of(net, 2, 0)
    assert balance(store, escrow_account(task)) == ESCROW_1000MS
    assert balance(store, requester_account(ALICE)) == 1_000_000 - ESCROW_1000MS
    with store.transaction() as tx:
        job = tx.get_job(task)
    assert job is not None
    assert job.receipt().escrow == ESCROW_1000MS
    assert job.receipt().height == 2


def test_every_block_mints_the_treasury_income_of_spec_3(store: Store) -> None:
    net = funded()
    net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body())
    net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body(b"two"))
    net.mine()
    ingest(store, net)
    expected = sum(treasury_income(b.issuance, b.fees, P) for b in net.blocks)
    # genesis issues nothing; block 1 holds the deposit (fee 1000), block 2 the two enqueues (fees 2000)
    assert expected == 2 * (50_000_000 * 150 // 10_000) + 1000 * 200 // 10_000 + 2000 * 200 // 10_000
    assert balance(store, TREASURY) == expected
    assert balance(store, EXTERNAL) == -(expected + 10_000_000)


def test_a_reorg_removes_pending_jobs_and_their_escrow_exactly(store: Store) -> None:
    net = funded()
    net.mine(3)  # heights 2..4
    net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body())
    net.mine()  # height 5 holds the enqueue
    net.mine(2)
    ingest(store, net)
    orphan_task = task_of(net, 5, 0)
    assert status_of(store, orphan_task) == JobStatus.PENDING
    before_reorg = balance(store, requester_account(ALICE))
    net.reorg(4)  # heights 4..7 replaced; the enqueue goes back to the mempool and lands elsewhere (or not yet)
    ingest(store, net)
    assert status_of(store, orphan_task) is None
    assert balance(store, escrow_account(orphan_task)) == 0
    assert state_digest(store) == replay_digest(net)
    net.mine(8)
    ingest(store, net)
    assert state_digest(store) == replay_digest(net)
    # the transaction was included again at a new height: a fresh job with a fresh task id, escrowed once
    new_height = next(b.height for b in net.blocks if b.txs and b.txs[0].kind == TxKind.AI_ENQUEUE)
    new_task = task_of(net, new_height, 0)
    assert new_task != orphan_task
    assert status_of(store, new_task) == JobStatus.QUEUED
    assert balance(store, requester_account(ALICE)) == before_reorg
    assert verify(store).ok


def test_a_reorg_gives_the_digest_of_a_chain_that_never_had_the_orphans_on_every_backend(any_store: Store) -> None:
    net = funded()
    for i in range(6):
        net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body(b"p%d" % i))
        net.submit(BOB, TxKind.DEPOSIT, {"to": BOB, "amount": 1000 + i})
        net.mine()
        ingest(any_store, net)
        if i % 2:
            net.reorg(min(6, i + 1))
            ingest(any_store, net)
    net.mine(7)
    ingest(any_store, net)
    assert state_digest(any_store) == replay_digest(net)
    assert verify(any_store).ok


def test_an_orphaned_proof_inclusion_is_removed_and_waits_to_be_included_again(store: Store) -> None:
    net = funded()
    net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body())
    net.mine(7)
    task = task_of(net, 2, 0)
    net.submit(b"\x77" * 20, TxKind.PROOF, {"task_id": task, "proof_id": b"\x01" * 32, "provider_id": b"\x02" * 32})
    net.mine()  # height 9 includes the proof
    ingest(store, net)
    with store.transaction() as tx:
        first = tx.proof_inclusions_of([task]).get(task)
    assert first is not None
    assert first.height == 9
    net.reorg(1)  # the seeded branch may or may not re-include it at once
    ingest(store, net)
    with store.transaction() as tx:
        again = tx.proof_inclusions_of([task]).get(task)
    assert again is None or again.height == 9
    net.mine(2)
    ingest(store, net)
    with store.transaction() as tx:
        later = tx.proof_inclusions_of([task]).get(task)
    assert later is not None
    assert later.producer == net.blocks[later.height].producer
    assert status_of(store, task) == JobStatus.QUEUED  # inclusion is a record; the status is the proof flow's
    assert state_digest(store) == replay_digest(net)


def test_ingesting_the_same_block_twice_changes_nothing(store: Store) -> None:
    net = funded()
    net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body())
    net.mine(8)
    for block in net.blocks:
        assert ingest_block(store, block, net.chain_id, P, depth_stub) is not None
    digest = state_digest(store)
    for block in net.blocks:
        assert ingest_block(store, block, net.chain_id, P, depth_stub) is None
    assert ingest_next(store, net, P, depth_stub) is None
    assert state_digest(store) == digest


def test_a_block_whose_parent_is_unknown_is_refused(store: Store) -> None:
    net = funded()
    net.mine(3)
    with pytest.raises(UnknownParentError):
        ingest_block(store, net.blocks[2], net.chain_id, P, depth_stub)


def test_a_given_block_at_a_stored_height_replaces_the_branch_above_its_parent(store: Store) -> None:
    net = funded()
    net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body())
    net.mine(2)
    ingest(store, net)
    net.reorg(2)
    step = ingest_block(store, net.blocks[2], net.chain_id, P, depth_stub)
    assert step is not None
    assert step.rolled_back_to == 1
    ingest(store, net)
    assert state_digest(store) == replay_digest(net)


class _Rewritten:
    """A chain view that rewrites history below finality (which a real chain must never do)."""

    def __init__(self, net: Devnet, other: Devnet) -> None:
        self.net, self.other = net, other

    @property
    def chain_id(self) -> int:
        return self.net.chain_id

    def head_height(self) -> int:
        return self.other.head_height()

    def block_at(self, height: int) -> Block | None:
        return self.other.block_at(height)

    def finalized_height(self) -> int:
        return self.other.finalized_height()


def test_a_reorg_below_finality_is_refused_and_writes_nothing(store: Store) -> None:
    net = funded()
    net.mine(10)
    ingest(store, net)
    digest = state_digest(store)
    other = devnet(seed=2)  # a different chain from genesis up
    other.mine(12)
    with pytest.raises(ReorgBelowFinalityError, match="re-sync"):
        ingest_next(store, _Rewritten(net, other), P, depth_stub)
    assert state_digest(store) == digest


def test_a_store_of_another_chain_is_refused(store: Store) -> None:
    net = funded()
    ingest(store, net)
    from aicf.chain.devnet import DevnetConfig

    stranger = Devnet(DevnetConfig(chain_id=99))
    with pytest.raises(ChainIdMismatchError):
        ingest_next(store, stranger, P, depth_stub)


def test_a_cancel_takes_effect_when_its_block_is_final_and_refunds_the_escrow(store: Store) -> None:
    net = funded(1_000_000)
    net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body())
    net.mine()
    task = task_of(net, 2, 0)
    net.submit(BOB, TxKind.CANCEL, {"task_id": task})  # not the caller: ignored
    net.submit(ALICE, TxKind.CANCEL, {"task_id": task})
    net.mine()  # height 3
    net.mine(5)
    ingest(store, net)
    assert status_of(store, task) == JobStatus.QUEUED  # height 2 final, the cancel's height 3 not yet
    net.mine()
    ingest(store, net)
    assert status_of(store, task) == JobStatus.CANCELLED
    assert balance(store, escrow_account(task)) == 0
    assert balance(store, requester_account(ALICE)) == 1_000_000
    with store.transaction() as tx:
        outcomes = [c.outcome.value for c in tx.snapshot().cancels]
    assert outcomes == ["IGNORED", "CANCELLED"]
    assert verify(store).ok


def test_a_job_past_its_deadline_is_cancelled_when_the_deadline_is_final(store: Store) -> None:
    net = funded(1_000_000)
    net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body(deadline_blocks=8))
    net.mine()  # enqueued at 2, deadline height 10
    task = task_of(net, 2, 0)
    net.mine(13)  # head 15: 9 final
    ingest(store, net)
    assert status_of(store, task) == JobStatus.QUEUED
    net.mine()  # head 16: 10 final
    ingest(store, net)
    assert status_of(store, task) == JobStatus.CANCELLED
    assert balance(store, requester_account(ALICE)) == 1_000_000


def test_refused_requests_are_recorded_with_their_reason_and_move_no_money(store: Store) -> None:
    net = funded(ESCROW_1000MS + 5)
    bad = [
        ai_body(model="gpt-unknown"),
        ai_body(prompt=b"x" * (64 * 1024 + 1)),
        ai_body(fee=1),
        ai_body(max_tokens=1 << 20),
        ai_body(extra_key=1),
        {"circuit": b"x" * 3, "shots": 0, "fee_per_unit": 50_000, "tier": 0},
        ai_body(tier=1),  # above the caller's registered tier (0)
    ]
    for body in bad:
        net.submit(ALICE, TxKind.AI_ENQUEUE if "model" in body else TxKind.QUANTUM_ENQUEUE, body)
    net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body())  # fits the balance
    net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body(b"second"))  # does not
    net.submit(ALICE, TxKind.DEPOSIT, {"to": ALICE, "amount": -5})
    net.submit(ALICE, TxKind.CANCEL, {"task_id": b"short"})
    net.mine()
    ingest(store, net)
    with store.transaction() as tx:
        snap = tx.snapshot()
    fields = [r.field for r in snap.refused]
    assert fields == [
        "model",
        "prompt",
        "fee_per_unit",
        "max_tokens",
        "extra_key",
        "shots",
        "tier",
        "escrow",
        "amount",
        "task_id",
    ]
    assert "below the escrow" in snap.refused[7].reason
    assert len(snap.jobs) == 1
    assert balance(store, requester_account(ALICE)) == 5
    assert verify(store).ok


def test_the_open_job_limit_and_registered_tier_are_enforced(store: Store) -> None:
    net = funded(10**12)
    with store.transaction() as tx:
        set_requester_tier(tx, ALICE, 2)
        tx.commit()
    for i in range(P.max_open_jobs + 1):
        net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body(b"%d" % i, tier=2))
    net.mine()
    ingest(store, net)
    with store.transaction() as tx:
        snap = tx.snapshot()
    assert len(snap.jobs) == P.max_open_jobs
    assert [r.field for r in snap.refused] == ["caller"]


def test_a_quantum_enqueue_uses_the_injected_circuit_depth(store: Store) -> None:
    net = funded()
    net.submit(ALICE, TxKind.QUANTUM_ENQUEUE, {"circuit": b"q" * 20, "shots": 10, "fee_per_unit": 50_000, "tier": 0})
    net.mine()
    ingest(store, net)
    with store.transaction() as tx:
        [job] = tx.snapshot().jobs
    assert job.depth == 20  # the stub reports the circuit's length
    assert job.max_units_mu == 10 * 1500  # depth 20 -> weight 1500 milli
    assert job.escrow == 50_000 * 15_000 // 1000


class _ReorgsWhileRead:
    """Reorganises the devnet right after the ingester has checked its stored head against it."""

    def __init__(self, net: Devnet, at: int) -> None:
        self.net, self.at, self.done = net, at, False

    @property
    def chain_id(self) -> int:
        return self.net.chain_id

    def head_height(self) -> int:
        return self.net.head_height()

    def finalized_height(self) -> int:
        return self.net.finalized_height()

    def block_at(self, height: int) -> Block | None:
        block = self.net.block_at(height)
        if height == self.at and not self.done:
            self.done = True
            self.net.mine()
            self.net.reorg(3)  # replaces `at` itself: the next block no longer follows what we just read
        return block


def test_a_reorg_between_two_reads_is_found_and_rolled_back_in_the_same_step(store: Store) -> None:
    net = funded()
    net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body())
    net.mine(4)
    ingest(store, net)
    view = _ReorgsWhileRead(net, net.head_height())
    step = ingest_next(store, view, P, depth_stub)
    assert step is not None
    assert step.rolled_back_to is not None
    ingest(store, net)
    assert state_digest(store) == replay_digest(net)


class _LaggingView:
    """A replica's view of `net` whose node has seen only the first `seen` blocks."""

    def __init__(self, net: Devnet, seen: int) -> None:
        self.net, self.seen = net, seen

    @property
    def chain_id(self) -> int:
        return self.net.chain_id

    def head_height(self) -> int:
        return self.seen - 1

    def block_at(self, height: int) -> Block | None:
        return self.net.block_at(height) if height < self.seen else None

    def finalized_height(self) -> int:
        return max(-1, self.seen - 1 - self.net.config.finality_depth)


def test_a_chain_view_behind_the_stored_head_waits_instead_of_rolling_back(store: Store) -> None:
    net = funded()
    net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body())
    net.mine(8)
    ingest_available(store, net, P, depth_stub)
    digest = state_digest(store)
    lagging = _LaggingView(net, seen=5)  # another replica ingested blocks this one's node has not delivered yet
    assert ingest_next(store, lagging, P, depth_stub) is None
    assert state_digest(store) == digest, "the blocks on the chain stay ingested"
    net.mine(1)
    step = ingest_next(store, net, P, depth_stub)
    assert step is not None
    assert step.rolled_back_to is None


@pytest.mark.postgres
def test_a_replica_that_finds_another_ingesting_moves_on_and_ingests_once_the_lock_is_free(tmp_path: Path) -> None:
    net = funded()
    net.submit(ALICE, TxKind.AI_ENQUEUE, ai_body())
    net.mine(3)
    with open_test_store("postgres", tmp_path) as store:
        with store.transaction() as other:  # another replica, mid-ingest
            assert other.lock_ingest(wait=False)
            with store.transaction() as tx:
                assert not tx.lock_ingest(wait=False)
            assert ingest_available(store, net, P, depth_stub, wait=False) == []
            with store.transaction() as tx:
                assert tx.head_block() is None, "nothing was ingested while the lock was held"
        steps = ingest_available(store, net, P, depth_stub, wait=False)
        assert [s.height for s in steps] == list(range(net.head_height() + 1))


def test_a_treasury_deposit_credits_the_treasury_from_external_and_a_bad_one_is_refused(store: Store) -> None:
    net = funded()
    net.submit(ALICE, TxKind.TREASURY_DEPOSIT, {"amount": 7_000})  # an EVM chain's Aicf.deposit (docs/EVM.md)
    net.submit(ALICE, TxKind.TREASURY_DEPOSIT, {"amount": 0})
    net.submit(ALICE, TxKind.TREASURY_DEPOSIT, {"amount": 5, "to": ALICE})
    net.mine()
    ingest(store, net)
    income = sum(treasury_income(b.issuance, b.fees, P) for b in net.blocks)
    assert balance(store, TREASURY) == income + 7_000
    assert balance(store, requester_account(ALICE)) == 10_000_000  # the sender's own balance is untouched
    assert balance(store, EXTERNAL) == -(income + 10_000_000 + 7_000)
    with store.transaction() as tx:
        assert [r.field for r in tx.snapshot().refused] == ["amount", "to"]
    assert verify(store).ok
