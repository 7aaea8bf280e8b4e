"""The store contract (STYLE §3), one suite run against every backend: SQLite in memory and in a file, PostgreSQL."""

import dataclasses

import pytest

from aicf.core.chain import (
    CancelOutcome,
    CancelRequest,
    Claim,
    IngestedBlock,
    Job,
    ProofInclusion,
    RefusedTx,
)
from aicf.core.jobs import JobStatus
from aicf.core.ledger import EXTERNAL, TREASURY, NegativeBalanceError, Posting, escrow_account, requester_account
from aicf.core.types import MicroAnm, MilliUnits
from aicf.service.audit import digest_of, verify_snapshot
from aicf.store.interface import ConcurrentUpdateError, IdempotencyConflictError, Store
from store.backends import memory_store
from store.tx_helpers import remember, replayed, set_requester_tier

ALICE = b"\xaa" * 20
BOB = b"\xbb" * 20


def block(height: int, salt: int = 0) -> IngestedBlock:
    return IngestedBlock(
        height=height,
        hash=bytes([height % 256, salt]) * 16,
        parent=bytes([(height - 1) % 256, salt]) * 16 if height else bytes(32),
        time=1000 + 10 * height,
        producer=b"\x01" * 32,
        beacon=bytes([height % 256]) * 32,
        issuance=MicroAnm(50),
        fees=MicroAnm(7),
        epoch=0,
    )


def job(n: int, height: int, index: int = 0, caller: bytes = ALICE, deadline: int = 100) -> Job:
    return Job(
        task_id=bytes([n]) * 32,
        chain_id=1337,
        tx_hash=bytes([n, 1]) * 16,
        caller=caller,
        kind="ai",
        payload=b"\xa0",
        payload_hash=bytes([n, 2]) * 16,
        model="llama3-8b",
        fee_per_unit=15000,
        tier=1,
        max_units_mu=MilliUnits(1265),
        escrow=MicroAnm(18975),
        depth=0,
        deadline_height=deadline,
        regions=("eu", "us"),
        allowlist=(b"\x05" * 32,),
        tee_required=True,
        enqueue_height=height,
        enqueue_tx_index=index,
    )


def mint(to: str, amount: int, ref: bytes = b"m") -> Posting:
    return Posting(debit=EXTERNAL, credit=to, amount=MicroAnm(amount), ref_kind="deposit", ref=ref)


def move(debit: str, credit: str, amount: int, ref: bytes = b"x") -> Posting:
    return Posting(debit=debit, credit=credit, amount=MicroAnm(amount), ref_kind="escrow", ref=ref)


def digest(store: Store) -> bytes:
    with store.transaction() as tx:
        return digest_of(tx.snapshot())


def test_work_without_commit_is_rolled_back(store: Store) -> None:
    with store.transaction() as tx:
        tx.set_meta("k", 1)
        tx.insert_block(block(0))
        tx.insert_jobs([job(1, 0)])
        tx.post([mint(requester_account(ALICE), 500)], 0, 1000)
        tx.insert_claim(Claim(claim_id=b"c" * 32, provider_id=b"p" * 32, amount=MicroAnm(1), time=5))
    with store.transaction() as tx:
        assert tx.get_meta("k") is None
        assert tx.head_block() is None
        assert tx.get_job(bytes([1]) * 32) is None
        assert tx.balances([requester_account(ALICE)]) == {requester_account(ALICE): 0}
        assert tx.snapshot().claims == ()


def test_an_exception_rolls_the_whole_transaction_back(store: Store) -> None:
    def work() -> None:
        with store.transaction() as tx:
            tx.set_meta("k", 1)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        work()
    with store.transaction() as tx:
        assert tx.get_meta("k") is None


def test_committed_work_is_visible_to_the_next_transaction(store: Store) -> None:
    with store.transaction() as tx:
        tx.set_meta("k", 1)
        tx.set_meta("k", 2)
        tx.insert_block(block(0))
        tx.commit()
    with store.transaction() as tx:
        assert tx.get_meta("k") == 2
        assert tx.head_block() == block(0)
        assert tx.block_at(0) == block(0)
        assert tx.block_at(1) is None


def test_a_job_round_trips_with_every_field(store: Store) -> None:
    j = job(1, 3, 2)
    with store.transaction() as tx:
        tx.insert_jobs([j])
        tx.commit()
    with store.transaction() as tx:
        assert tx.get_job(j.task_id) == j
        assert tx.transitions_of(j.task_id) == []  # born PENDING: no status change yet


def test_get_jobs_returns_the_stored_jobs_of_many_tasks_and_omits_unknown_ones(store: Store) -> None:
    a, b = job(1, 3, 2), job(2, 3, 3)
    with store.transaction() as tx:
        tx.insert_jobs([a, b])
        tx.commit()
    with store.transaction() as tx:
        assert tx.get_jobs([b.task_id, b"u" * 32, a.task_id, b.task_id]) == {a.task_id: a, b.task_id: b}
        assert tx.get_jobs([b"u" * 32]) == {}
        assert tx.get_jobs([]) == {}


def test_inserting_a_block_twice_at_one_height_is_refused(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_block(block(0))
        with pytest.raises(ConcurrentUpdateError):
            tx.insert_block(block(0, salt=9))


def test_inserting_a_job_twice_is_refused(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_jobs([job(1, 0)])
        tx.commit()
    with pytest.raises(ConcurrentUpdateError), store.transaction() as tx:
        tx.insert_jobs([job(1, 0)])


def test_guarded_move_refuses_a_job_no_longer_in_the_expected_status(store: Store) -> None:
    t = bytes([1]) * 32
    with store.transaction() as tx:
        tx.insert_jobs([job(1, 0)])
        assert tx.move_job(t, JobStatus.PENDING, JobStatus.QUEUED, "final", 6, 60)
        assert not tx.move_job(t, JobStatus.PENDING, JobStatus.QUEUED, "final", 6, 60)
        assert not tx.move_job(b"\x09" * 32, JobStatus.PENDING, JobStatus.QUEUED, "final", 6, 60)
        tx.commit()
    with store.transaction() as tx:
        got = tx.get_job(t)
        assert got is not None
        assert got.status == JobStatus.QUEUED
        assert [(x.frm, x.to, x.height, x.time) for x in tx.transitions_of(t)] == [
            (JobStatus.PENDING, JobStatus.QUEUED, 6, 60)
        ]


def test_move_jobs_moves_only_the_jobs_in_the_expected_status(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_jobs([job(1, 0), job(2, 0, 1), job(3, 0, 2)])
        assert tx.move_job(bytes([2]) * 32, JobStatus.PENDING, JobStatus.QUEUED, "final", 6, 0)
        moved = tx.move_jobs([bytes([n]) * 32 for n in (1, 2, 3)], JobStatus.PENDING, JobStatus.QUEUED, "final", 6, 0)
        assert moved == 2
        assert len(tx.transitions_of(bytes([2]) * 32)) == 1  # no second PENDING -> QUEUED row for job 2
        tx.commit()


def test_job_queries_keep_enqueue_order_and_status_filters(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_jobs([job(5, 2, 1), job(4, 2, 0), job(3, 1, 0, deadline=4), job(6, 9, 0, caller=BOB)])
        assert tx.pending_jobs_through(2) == [bytes([3]) * 32, bytes([4]) * 32, bytes([5]) * 32]
        assert tx.open_job_count(ALICE) == 3
        assert tx.open_job_count(BOB) == 1
        tx.move_jobs(tx.pending_jobs_through(2), JobStatus.PENDING, JobStatus.QUEUED, "final", 8, 0)
        assert [j.task_id for j in tx.queued_jobs_at_deadline(4)] == [bytes([3]) * 32]
        assert tx.queued_jobs_at_deadline(3) == []
        assert tx.queued_jobs_at_deadline(5) == []
        tx.move_job(bytes([3]) * 32, JobStatus.QUEUED, JobStatus.CANCELLED, "deadline", 4, 0)
        assert tx.open_job_count(ALICE) == 2
        tx.set_cancel_requested(bytes([4]) * 32)
        got = tx.get_job(bytes([4]) * 32)
        assert got is not None
        assert got.cancel_requested


def test_post_moves_balances_and_refuses_a_negative_one_writing_nothing(store: Store) -> None:
    alice = requester_account(ALICE)
    with store.transaction() as tx:
        tx.post([mint(alice, 1000), mint(TREASURY, 5)], 1, 10)
        tx.post([move(alice, escrow_account(b"\x01" * 32), 400)], 1, 10)
        with pytest.raises(NegativeBalanceError) as caught:
            tx.post([move(alice, escrow_account(b"\x02" * 32), 601)], 1, 10)
        assert caught.value.account == alice
        assert tx.balances([alice, EXTERNAL, TREASURY, "fund"]) == {alice: 600, EXTERNAL: -1005, TREASURY: 5, "fund": 0}
        tx.commit()
    with store.transaction() as tx:
        report = verify_snapshot(tx.snapshot())
        assert report.ok, report.problems
        assert report.minted == 1005
        assert report.entries == 3


def test_rollback_above_restores_the_state_at_the_fork_point_exactly(store: Store) -> None:
    alice = requester_account(ALICE)
    with store.transaction() as tx:
        tx.insert_block(block(0))
        tx.insert_block(block(1))
        tx.post([mint(alice, 100_000)], 1, 1010)
        tx.insert_jobs([job(1, 1)])
        tx.post([move(alice, escrow_account(bytes([1]) * 32), 18975)], 1, 1010)
        tx.commit()
    before = digest(store)
    with store.transaction() as tx:
        tx.insert_block(block(2))
        tx.post([mint(alice, 7), mint(TREASURY, 9)], 2, 1020)
        tx.insert_jobs([job(2, 2)])
        tx.post([move(alice, escrow_account(bytes([2]) * 32), 18975)], 2, 1020)
        inc = ProofInclusion(
            task_id=bytes([1]) * 32,
            proof_id=b"p" * 32,
            provider_id=b"v" * 32,
            height=2,
            tx_index=1,
            tx_hash=b"h" * 32,
            producer=b"m" * 32,
        )
        assert tx.insert_proof_inclusions([inc]) == 1
        tx.insert_refused(
            [
                RefusedTx(
                    height=2, tx_index=2, tx_hash=b"r" * 32, kind="ai_enqueue", sender=ALICE, field="model", reason="x"
                )
            ]
        )
        tx.insert_cancel(CancelRequest(height=2, tx_index=3, tx_hash=b"c" * 32, task_id=bytes([1]) * 32, sender=ALICE))
        tx.commit()
    assert digest(store) != before
    with store.transaction() as tx:
        tx.rollback_above(1)
        tx.commit()
    assert digest(store) == before
    with store.transaction() as tx:
        assert verify_snapshot(tx.snapshot()).ok


def test_the_first_proof_inclusion_per_task_wins(store: Store) -> None:
    first = ProofInclusion(
        task_id=b"t" * 32,
        proof_id=b"1" * 32,
        provider_id=b"v" * 32,
        height=3,
        tx_index=0,
        tx_hash=b"a" * 32,
        producer=b"m" * 32,
    )
    second = ProofInclusion(
        task_id=b"t" * 32,
        proof_id=b"2" * 32,
        provider_id=b"w" * 32,
        height=4,
        tx_index=0,
        tx_hash=b"b" * 32,
        producer=b"m" * 32,
    )
    other = dataclasses.replace(second, task_id=b"s" * 32)
    with store.transaction() as tx:
        assert tx.insert_proof_inclusions([first, second, other]) == 2  # the first per task, within one call
        assert tx.insert_proof_inclusions([dataclasses.replace(second, tx_index=1)]) == 0  # and across calls
        assert tx.insert_proof_inclusions([]) == 0
        assert tx.proof_inclusions_of([b"t" * 32, b"u" * 32, b"s" * 32]) == {b"t" * 32: first, b"s" * 32: other}
        assert tx.proof_inclusions_of([b"u" * 32]) == {}
        assert tx.proof_inclusions_of([]) == {}


def test_claims_are_unique_on_their_claim_id(store: Store) -> None:
    claim = Claim(claim_id=b"c" * 32, provider_id=b"p" * 32, amount=MicroAnm(10), time=5)
    with store.transaction() as tx:
        assert tx.insert_claim(claim)
        tx.commit()
    with store.transaction() as tx:
        assert not tx.insert_claim(Claim(claim_id=b"c" * 32, provider_id=b"q" * 32, amount=MicroAnm(99), time=6))
        assert tx.snapshot().claims == (claim,)


def test_idempotency_replays_the_first_result_and_refuses_a_different_request(store: Store) -> None:
    with store.transaction() as tx:
        assert replayed(tx, b"k", b"f1") is None
        remember(tx, b"k", b"f1", b"result-1")
        tx.commit()
    with store.transaction() as tx:
        assert replayed(tx, b"k", b"f1") == b"result-1"
        with pytest.raises(IdempotencyConflictError):
            replayed(tx, b"k", b"f2")
        with pytest.raises(IdempotencyConflictError):
            remember(tx, b"k", b"f1", b"result-2")


def test_cancel_requests_wait_until_given_an_outcome(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_cancel(CancelRequest(height=3, tx_index=1, tx_hash=b"a" * 32, task_id=b"t" * 32, sender=ALICE))
        tx.insert_cancel(CancelRequest(height=5, tx_index=0, tx_hash=b"b" * 32, task_id=b"u" * 32, sender=ALICE))
        assert [c.height for c in tx.waiting_cancels_through(4)] == [3]
        tx.set_cancel_outcome(3, 1, CancelOutcome.CANCELLED)
        assert tx.waiting_cancels_through(4) == []
        assert [c.outcome for c in tx.waiting_cancels_through(5)] == [CancelOutcome.WAITING]


def test_requester_tiers_default_to_zero(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.requester_tier(ALICE) == 0
        set_requester_tier(tx, ALICE, 2)
        set_requester_tier(tx, ALICE, 3)
        assert tx.requester_tier(ALICE) == 3


def test_finalize_marks_blocks_at_or_below_a_height(store: Store) -> None:
    with store.transaction() as tx:
        for h in range(4):
            tx.insert_block(block(h))
        tx.finalize_blocks_through(2)
        assert [b.final for b in tx.snapshot().blocks] == [True, True, True, False]


def test_the_same_work_gives_the_same_digest_on_every_backend(store: Store) -> None:
    """The digest is backend-independent: a fixed sequence of writes hashes to one constant."""
    alice = requester_account(ALICE)
    with store.transaction() as tx:
        tx.set_meta("final_height", 0)
        tx.insert_block(block(0))
        tx.post([mint(alice, 50_000), mint("treasury", 12)], 0, 1000)
        tx.insert_jobs([job(1, 0), job(2, 0, 1, caller=BOB)])
        tx.post([move(alice, escrow_account(bytes([1]) * 32), 18975)], 0, 1000)
        tx.move_job(bytes([1]) * 32, JobStatus.PENDING, JobStatus.QUEUED, "final", 6, 1060)
        set_requester_tier(tx, BOB, 1)
        remember(tx, b"key", b"fp", b"res")
        tx.commit()
    reference = memory_store()
    with reference.transaction() as tx:
        tx.set_meta("final_height", 0)
        tx.insert_block(block(0))
        tx.post([mint(alice, 50_000), mint("treasury", 12)], 0, 1000)
        tx.insert_jobs([job(1, 0), job(2, 0, 1, caller=BOB)])
        tx.post([move(alice, escrow_account(bytes([1]) * 32), 18975)], 0, 1000)
        tx.move_job(bytes([1]) * 32, JobStatus.PENDING, JobStatus.QUEUED, "final", 6, 1060)
        set_requester_tier(tx, BOB, 1)
        remember(tx, b"key", b"fp", b"res")
        tx.commit()
    assert digest(store) == digest(reference)
