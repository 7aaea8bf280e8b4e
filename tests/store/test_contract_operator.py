"""The store contract for operator changes (migration 0010), on every backend: rows by op and subject in chain
order, a tier change overriding the legacy table, rolled back with their block, in the snapshot and digest."""

from aicf.core.chain import Job
from aicf.core.encoding import canonical_cbor
from aicf.core.jobs import JobStatus
from aicf.core.operator import OP_PARAMS, OP_TIER, OperatorChange
from aicf.core.types import MicroAnm, MilliUnits
from aicf.service.state_digest import digest_of
from aicf.store.interface import Store
from store.test_contract import ALICE, block
from store.tx_helpers import set_requester_tier


def change(height: int, op: str, subject: bytes, after: object, index: int = 0) -> OperatorChange:
    return OperatorChange(height=height, tx_index=index, tx_hash=bytes([height, index]) * 16, sender=b"\x0f" * 20,
                          op=op, subject=subject, before=b"", after=canonical_cbor(after), effective_epoch=0,
                          time=1000 + height)  # fmt: skip


def job(task: int, units: int) -> Job:
    return Job(task_id=bytes([task]) * 32, chain_id=1, tx_hash=bytes([task]) * 32, caller=ALICE, kind="ai",
               payload=b"p", payload_hash=b"\x00" * 32, model="m", fee_per_unit=1, tier=0,
               max_units_mu=MilliUnits(units), escrow=MicroAnm(0), depth=0, deadline_height=100, enqueue_height=1,
               enqueue_tx_index=task)  # fmt: skip


def test_operator_changes_are_read_by_op_and_subject_in_chain_order_and_set_tiers(store: Store) -> None:
    with store.transaction() as tx:
        for h in (0, 1, 2):
            tx.insert_block(block(h))
        set_requester_tier(tx, ALICE, 1)
        assert tx.requester_tier(ALICE) == 1  # the legacy table while no tier change is on chain
        tx.insert_operator_changes(
            [change(1, OP_TIER, ALICE, 3), change(1, OP_PARAMS, b"", {"trap_bps": 1}, 1), change(2, OP_TIER, ALICE, 2)]
        )
        assert [c.height for c in tx.operator_changes_of(OP_TIER, ALICE)] == [1, 2]
        assert [c.op for c in tx.operator_changes_of(OP_PARAMS)] == [OP_PARAMS]
        assert tx.requester_tier(ALICE) == 2  # the newest change wins
        assert [c.height for c in tx.recent_operator_changes(2)] == [2, 1]
        tx.commit()


def test_operator_changes_roll_back_with_their_block_and_count_in_the_digest(store: Store) -> None:
    with store.transaction() as tx:
        for h in (0, 1, 2):
            tx.insert_block(block(h))
        before = digest_of(tx.snapshot())
        tx.insert_operator_changes([change(2, OP_TIER, ALICE, 3)])
        snap = tx.snapshot()
        assert [c.height for c in snap.operator_changes] == [2]
        assert digest_of(snap) != before
        tx.rollback_above(1)
        assert tx.operator_changes_of(OP_TIER) == []
        assert tx.requester_tier(ALICE) == 0
        tx.commit()


def test_max_unsettled_units_ignores_final_jobs(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_block(block(0))
        tx.insert_block(block(1))
        assert tx.max_unsettled_units() == 0
        tx.insert_jobs([job(1, 500), job(2, 900)])
        assert tx.max_unsettled_units() == 900
        assert tx.move_job(bytes([2]) * 32, JobStatus.PENDING, JobStatus.CANCELLED, "test", 1, 0)
        assert tx.max_unsettled_units() == 500
        tx.commit()
