"""Epoch settlement runs (SPEC §5, issue 5): batch E is built when the first block with epoch > E is final,
inside that block's ingest transaction, so it is written with its payouts and ledger entries atomically and
exactly once (a batch row per epoch is unique; a task is paid at most once).

Everything settlement reads is chain-derived or written by earlier batches: the results of included proofs,
the jobs' fees and tiers from their enqueue transactions, the treasury's entries through the finalized
height. So two coordinators fed the same chain from separate stores write byte-identical batches and roots.
"""

import logging

from aicf.core.encoding import canonical_cbor
from aicf.core.jobs import JobStatus, check_move
from aicf.core.ledger import TREASURY, escrow_account
from aicf.core.params import Params, params_hash
from aicf.core.records import BatchRecord
from aicf.core.settlement import (
    REQUESTER_PREFIX,
    PayoutEscrow,
    SettlementBatch,
    VerifiedJob,
    priority_class,
    refund_claim_postings,
    settle_epoch,
    settlement_postings,
)
from aicf.service.errors import SettlementStateError
from aicf.service.operator_ops import params_for_epoch
from aicf.store.interface import META_EVM_MONEY, META_PRICE_BPS, Tx

log = logging.getLogger("aicf.settle")


def settle_due(tx: Tx, height: int, params: Params) -> list[SettlementBatch]:
    """Called as `height` becomes final: build every batch E with epoch(height − 1) ≤ E < epoch(height).

    Their finalized height is height − 1, the last block with epoch ≤ E. Epochs without a block get an
    empty batch too (SPEC §5: every epoch gets a batch).
    """
    if height < 1:
        return []
    block, parent = tx.block_at(height), tx.block_at(height - 1)
    if block is None or parent is None or block.epoch <= parent.epoch:
        return []
    last = tx.last_batch_epoch()
    first = 0 if last is None else last + 1
    return [settle_one(tx, epoch, height - 1, params, block.time) for epoch in range(first, block.epoch)]


def settle_one(tx: Tx, epoch: int, finalized: int, base: Params, time: int) -> SettlementBatch:
    """Batch `epoch` with the params in force in that epoch (`base` with the operator's params changes whose
    effective epoch ≤ `epoch`, aicf.service.operator_ops): its params_hash names them."""
    params = params_for_epoch(tx, base, epoch)
    price = tx.get_meta(META_PRICE_BPS)
    price_bps = params.price_initial_bps if price is None else price
    results = tx.unsettled_results_through(finalized)
    found = tx.get_jobs([r.task_id for r in results])
    jobs = []
    callers: dict[bytes, bytes] = {}
    for result in results:
        job = found.get(result.task_id)
        if job is None:
            raise SettlementStateError(f"result for unknown task 0x{result.task_id.hex()}")
        callers[job.task_id] = job.caller
        jobs.append(
            VerifiedJob(
                task_id=result.task_id,
                provider_id=result.provider_id,
                miner_id=result.miner_id,
                proof_id=result.proof_id,
                kind=job.kind,
                priority_class=priority_class(job.tier, job.carried_batches, params),
                proof_height=result.height,
                tx_index=result.tx_index,
                units_mu=result.units_mu,
                fee_per_unit=job.fee_per_unit,
            )
        )
    treasury = tx.balance_through(TREASURY, finalized)
    p_hash = params_hash(params)
    batch = settle_epoch(
        epoch=epoch,
        finalized_height=finalized,
        jobs=jobs,
        treasury=treasury,
        price_bps=price_bps,
        params=params,
        params_digest=p_hash,
    )
    held = tx.balances([escrow_account(p.task_id) for p in batch.payouts])
    escrows = {
        p.task_id: PayoutEscrow(held=held[escrow_account(p.task_id)], caller=callers[p.task_id]) for p in batch.payouts
    }
    postings = settlement_postings(batch.payouts, escrows)
    record = BatchRecord(
        epoch=epoch,
        finalized_height=finalized,
        params_hash=p_hash,
        price_bps=price_bps,
        next_price_bps=batch.next_price_bps,
        root=batch.root,
        batch=canonical_cbor(batch.to_map()),
        payouts=len(batch.payouts),
        carried=len(batch.carried),
        reward=batch.totals.reward,
        units_mu=batch.totals.units_mu,
        treasury_before=treasury,
        time=time,
    )
    if not tx.insert_batch(record, batch.payouts):
        raise SettlementStateError(f"epoch {epoch} already has a batch")
    if postings:
        tx.post(postings, None, time)
    if tx.get_meta(META_EVM_MONEY) == 1:
        # An EVM chain (docs/EVM.md, "Refunds"): what the requesters are owed through the finalized height goes
        # into this batch's claim tree, so it leaves their ledger accounts here, with the batch, exactly once.
        owed = tx.positive_balances_through(REQUESTER_PREFIX, finalized)
        refunds = refund_claim_postings(epoch, owed)
        if refunds:
            tx.post(refunds, None, time)
    # The statuses read above: writing the batch and its postings moves no job.
    settled = [p.task_id for p in batch.payouts if (job := found.get(p.task_id)) and job.status is JobStatus.VERIFIED]
    for task_id in settled:
        check_move(task_id, JobStatus.VERIFIED, JobStatus.SETTLED)
    if settled:
        tx.move_jobs(settled, JobStatus.VERIFIED, JobStatus.SETTLED, f"epoch {epoch}", None, time)
    if batch.carried:
        tx.add_carried(batch.carried)
    tx.set_meta(META_PRICE_BPS, batch.next_price_bps)
    tx.append_event(
        "epochSettled",
        canonical_cbor(
            {
                "epoch": epoch,
                "finalized_height": finalized,
                "root": batch.root,
                "price_bps": price_bps,
                "next_price_bps": batch.next_price_bps,
                "payouts": len(batch.payouts),
                "carried": len(batch.carried),
                "totals": batch.totals.to_map(),
            }
        ),
        time,
    )
    log.info(
        "epoch %d settled: %d payouts, %d carried, reward %d, root 0x%s",
        epoch,
        len(batch.payouts),
        len(batch.carried),
        batch.totals.reward,
        batch.root.hex()[:16],
    )
    return batch
