"""One block's application (SPEC §2, §3, §4, §10), inside the store transaction `aicf.service.ingest` opened:
the block row, every transaction's effects at its height, the treasury income, its results, then the effects of
the height it makes final. The block loop, the chain id check and reorgs stay in `aicf.service.ingest`."""

from dataclasses import dataclass

from aicf.core.chain import ENQUEUE_KINDS, Block, IngestedBlock, TxKind, epoch_of, finalized_height
from aicf.core.encoding import canonical_cbor
from aicf.core.errors import AicfError
from aicf.core.jobs import JobStatus, check_move
from aicf.core.ledger import EXTERNAL, TREASURY, Posting, apply_postings, requester_account
from aicf.core.params import Params
from aicf.core.pricing import treasury_income
from aicf.core.records import ResultRecord
from aicf.core.requests import CircuitDepth
from aicf.service.ingest_finality import apply_finality
from aicf.service.ingest_operator import operator_tx
from aicf.service.ingest_requests import apply_tx
from aicf.service.ingest_work import BlockWork
from aicf.service.operator_ops import params_for_epoch
from aicf.store.interface import META_CHAIN_ID, META_GENESIS_TIME, META_PRICE_BPS, Tx


class IngestError(AicfError):
    """The chain and the store disagree in a way ingestion cannot repair by itself."""


class UnknownParentError(IngestError):
    def __init__(self, height: int, parent: bytes) -> None:
        super().__init__(f"block {height}: parent 0x{parent.hex()} is not stored; ingest from the chain view instead")
        self.height, self.parent = height, parent


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestStep:
    """What one call changed: the block applied (or None) and the fork point rolled back to (or None)."""

    height: int
    block_hash: bytes
    rolled_back_to: int | None = None
    jobs: int = 0
    refused: int = 0
    queued: int = 0
    cancelled: int = 0


def apply_block(
    tx: Tx, block: Block, chain_id: int, params: Params, circuit_depth: CircuitDepth, operator_key: bytes | None
) -> IngestStep:
    """Write `block` and every effect it has, then the effects of the height it makes final."""
    if block.height == 0:
        tx.set_meta(META_CHAIN_ID, chain_id)
        tx.set_meta(META_GENESIS_TIME, block.time)
        epoch = 0
    else:
        parent = tx.block_at(block.height - 1)
        genesis_time = tx.get_meta(META_GENESIS_TIME)
        if parent is None or genesis_time is None:
            raise UnknownParentError(block.height, block.parent)
        epoch = epoch_of(parent.epoch, block.time, genesis_time, params.epoch_seconds)
    tx.insert_block(
        IngestedBlock(
            height=block.height,
            hash=block.hash,
            parent=block.parent,
            time=block.time,
            producer=block.producer,
            beacon=block.beacon,
            issuance=block.issuance,
            fees=block.fees,
            epoch=epoch,
        )
    )
    base = params
    params = params_for_epoch(tx, base, epoch)  # fixed for the epoch (SPEC §15): changes apply from the next one
    price = tx.get_meta(META_PRICE_BPS)
    price_bps = params.price_initial_bps if price is None else price
    work = BlockWork()
    work.scheduled = params_for_epoch(tx, base, epoch + 1)
    _prefetch(tx, work, block)
    income = treasury_income(block.issuance, block.fees, params)
    # the supply after this block's mint: a deposit that would take it past 2^63 is refused, not posted (issue 15)
    work.balances[EXTERNAL] = tx.balances([EXTERNAL])[EXTERNAL] - income
    for ctx in block.txs:
        if ctx.kind == TxKind.OPERATOR:
            operator_tx(tx, work, block, ctx, epoch, base, operator_key)
        else:
            apply_tx(tx, work, block, ctx, chain_id, params, price_bps, circuit_depth, operator_key)
    if income > 0:
        work.postings.append(
            Posting(debit=EXTERNAL, credit=TREASURY, amount=income, ref_kind="treasury_income", ref=block.hash)
        )
    # The running balances were checked posting by posting above; this pure pass is the ledger's own word.
    apply_postings(tx.balances({p.debit for p in work.postings if p.debit != EXTERNAL}), work.postings)
    if work.postings:
        tx.post(work.postings, block.height, block.time)
    if work.jobs:
        tx.insert_jobs(work.jobs)
    if work.refused:
        tx.insert_refused(work.refused)
    for cancel in work.cancels:
        tx.insert_cancel(cancel)
    if work.inclusions:
        tx.insert_proof_inclusions(work.inclusions)
    if work.results:
        _record_results(tx, work, block)
    if work.changes:
        tx.insert_operator_changes(work.changes)
    queued, cancelled = apply_finality(tx, finalized_height(block.height, params.finality_depth), base)
    return IngestStep(
        height=block.height,
        block_hash=block.hash,
        jobs=len(work.jobs),
        refused=len(work.refused),
        queued=queued,
        cancelled=cancelled,
    )


def _prefetch(tx: Tx, work: BlockWork, block: Block) -> None:
    """Read the balances and open-job counts of every caller of the block, and the jobs and stored inclusions
    of every task its proofs name, in one go (one round trip each on PostgreSQL) instead of one query per
    transaction. Nothing the block writes is written before its transactions are applied, so these reads are
    what a query per transaction would have read."""
    callers = {ctx.sender for ctx in block.txs if ctx.kind in ENQUEUE_KINDS}
    if callers:
        work.balances.update(tx.balances([requester_account(c) for c in callers]))
        work.open_jobs.update(tx.open_job_counts(callers))
    tasks: list[bytes] = []
    for ctx in block.txs:
        task = ctx.body.get("task_id") if ctx.kind == TxKind.PROOF else None
        if isinstance(task, bytes) and len(task) == 32:  # what `_proof` accepts; it refuses the others
            tasks.append(task)
    if tasks:
        work.proof_jobs.update(tx.get_jobs(tasks))
        work.included.update(tx.proof_inclusions_of(tasks))


def _record_results(tx: Tx, work: BlockWork, block: Block) -> None:
    """Write the block's results at its height (their inclusion height); each coordinator's own SUBMITTED job
    whose accepted proof is the included one becomes VERIFIED there (jobCompleted). A reorg that orphans the
    inclusion undoes both: the job is SUBMITTED again. One write per table for the whole block."""
    written = tx.insert_results(work.results)
    recorded = [r for r in work.results if r.task_id in written]
    if not recorded:
        return
    accepted = tx.accepted_proofs_of([r.task_id for r in recorded])
    verified: list[ResultRecord] = []
    for result in recorded:
        # The job as prefetched: the block's own writes before this point move no existing job.
        job = work.proof_jobs.get(result.task_id)
        proof = accepted.get(result.task_id)
        if job is None or job.status is not JobStatus.SUBMITTED or proof is None or proof.proof_id != result.proof_id:
            continue
        check_move(job.task_id, job.status, JobStatus.VERIFIED)
        verified.append(result)
    if not verified:
        return
    task_ids = [r.task_id for r in verified]
    tx.move_jobs(task_ids, JobStatus.SUBMITTED, JobStatus.VERIFIED, "proof included", block.height, block.time)
    tx.append_events(
        [
            (
                "jobCompleted",
                canonical_cbor(
                    {
                        "task_id": r.task_id,
                        "provider_id": r.provider_id,
                        "proof_id": r.proof_id,
                        "units_mu": r.units_mu,
                        "height": r.height,
                    }
                ),
            )
            for r in verified
        ],
        block.time,
    )
