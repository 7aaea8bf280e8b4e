"""Block ingestion (SPEC §2, §3, §4, §10): each block in one store transaction.

A block's own effects are recorded at its height: new PENDING jobs with their escrow (requester →
escrow:<task_id>), deposits (external → requester), cancel requests, proof inclusions and the treasury
income (external → treasury). Effects of finality are recorded at the height that became final: PENDING
→ QUEUED, cancels and deadlines taking effect with their refunds. So a reorg to fork point f undoes exactly
the rows recorded above f (`Tx.rollback_above`), and never a row at or below the finalized height, which
is ≤ f. Chain-driven rows carry the block's time, never the coordinator's clock, so two coordinators
ingesting the same chain write the same rows.

A transaction the rules refuse (a malformed request, an unknown model, a balance below the escrow…) is
recorded as a `RefusedTx` with its reason and moves no money; the block still ingests. Anything else that
fails (the database, a broken invariant) rolls the whole block back.
"""

import dataclasses
import logging
from dataclasses import dataclass

from aicf.chain.interface import ChainView
from aicf.core.chain import (
    ENQUEUE_KINDS,
    Block,
    IngestedBlock,
    TxKind,
    epoch_of,
    finalized_height,
)
from aicf.core.encoding import canonical_cbor
from aicf.core.errors import AicfError
from aicf.core.jobs import JobStatus, check_move
from aicf.core.ledger import (
    EXTERNAL,
    TREASURY,
    Posting,
    apply_postings,
    requester_account,
)
from aicf.core.params import Params
from aicf.core.pricing import treasury_income
from aicf.core.records import ResultRecord
from aicf.core.requests import CircuitDepth
from aicf.service.ingest_finality import apply_finality, final_height_of
from aicf.service.ingest_operator import operator_tx
from aicf.service.ingest_requests import apply_tx
from aicf.service.ingest_work import BlockWork
from aicf.service.operator_ops import params_for_epoch
from aicf.store.interface import (
    META_CHAIN_ID,
    META_GENESIS_TIME,
    META_PRICE_BPS,
    Store,
    Tx,
)

log = logging.getLogger("aicf.ingest")
_MAX_CHAIN_RACES = 8


class IngestError(AicfError):
    """The chain and the store disagree in a way ingestion cannot repair by itself."""


class ReorgBelowFinalityError(IngestError):
    def __init__(self, height: int, final_height: int) -> None:
        super().__init__(
            f"the chain replaced block {height}, but blocks up to {final_height} are final here; the chain broke "
            "its finality promise: stop the coordinator and re-sync into a fresh database"
        )
        self.height, self.final_height = height, final_height


class ChainIdMismatchError(IngestError):
    def __init__(self, stored: int, chain: int) -> None:
        super().__init__(f"this database follows chain {stored}, the chain view serves chain {chain}")
        self.stored, self.chain = stored, chain


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


def ingest_next(
    store: Store,
    chain: ChainView,
    params: Params,
    circuit_depth: CircuitDepth,
    *,
    operator_key: bytes | None = None,
    wait: bool = True,
) -> IngestStep | None:
    """Apply the next canonical block in one transaction, first rolling back to the fork point if the chain
    reorganised under the stored head. None when the store is at the chain's head, or, with wait=False, when
    another replica is ingesting (it brings the store forward; this pass goes on to its other work).

    Raises ReorgBelowFinalityError if the fork point lies below the finalized height (nothing is written).
    """
    with store.transaction() as tx:
        if not tx.lock_ingest(wait=wait):  # replicas: one ingester at a time; the head is read after the lock
            return None
        _check_chain_id(tx, chain.chain_id)
        head = tx.head_block()
        rolled_back_to: int | None = None
        for _ in range(_MAX_CHAIN_RACES):
            if head is not None:
                canon = chain.block_at(head.height)
                if canon is None:
                    # Our view of the chain has not reached the stored head (a replica whose node lags, or that
                    # has not yet seen what another replica ingested): wait for it rather than roll back
                    # blocks that are on the chain. A real reorg shows as a different block at a known height.
                    log.debug(
                        "chain view at %d is behind the stored head %d: waiting", chain.head_height(), head.height
                    )
                    return None
                if canon.hash != head.hash:
                    fork = _fork_point(tx, chain, head.height)
                    _rollback(tx, fork)
                    rolled_back_to = fork if rolled_back_to is None else min(rolled_back_to, fork)
                    head = tx.block_at(fork) if fork >= 0 else None
            block = chain.block_at(0 if head is None else head.height + 1)
            if block is None or head is None or block.parent == head.hash:
                break
            # The chain reorganised between our two reads: look for the fork again.
        else:
            raise IngestError(f"the chain kept reorganising under block {head.height if head else 0}; retry")
        if block is None:
            if rolled_back_to is None:
                return None
            tx.commit()
            return IngestStep(height=rolled_back_to, block_hash=b"", rolled_back_to=rolled_back_to)
        step = _apply_block(tx, block, chain.chain_id, params, circuit_depth, operator_key)
        tx.commit()
    if rolled_back_to is not None:
        log.info("reorg: rolled back to %d, applied block %d", rolled_back_to, block.height)
        return dataclasses.replace(step, rolled_back_to=rolled_back_to)
    return step


def ingest_available(
    store: Store,
    chain: ChainView,
    params: Params,
    circuit_depth: CircuitDepth,
    limit: int | None = None,
    *,
    operator_key: bytes | None = None,
    wait: bool = True,
) -> list[IngestStep]:
    """Ingest until the store is at the chain's head (or `limit` steps were taken). With wait=False a
    coordinator replica stops as soon as another replica holds the ingest lock instead of waiting for it."""
    steps: list[IngestStep] = []
    while limit is None or len(steps) < limit:
        step = ingest_next(store, chain, params, circuit_depth, operator_key=operator_key, wait=wait)
        if step is None:
            break
        steps.append(step)
    return steps


def ingest_block(
    store: Store,
    block: Block,
    chain_id: int,
    params: Params,
    circuit_depth: CircuitDepth,
    *,
    operator_key: bytes | None = None,
) -> IngestStep | None:
    """Ingest one given block. A block already stored is a no-op (None). A block whose parent is stored
    below the head replaces the branch above its parent (a reorg). Raises UnknownParentError for a block
    whose parent is not stored and ReorgBelowFinalityError for one that would replace a final block."""
    with store.transaction() as tx:
        tx.lock_ingest()
        _check_chain_id(tx, chain_id)
        stored = tx.block_at(block.height)
        if stored is not None and stored.hash == block.hash:
            return None
        head = tx.head_block()
        if block.height > 0:
            parent = tx.block_at(block.height - 1)
            if parent is None or parent.hash != block.parent:
                raise UnknownParentError(block.height, block.parent)
        elif head is not None and stored is None:
            raise UnknownParentError(block.height, block.parent)
        rolled_back_to: int | None = None
        if head is not None and block.height <= head.height:
            rolled_back_to = block.height - 1
            _rollback(tx, rolled_back_to)
        step = _apply_block(tx, block, chain_id, params, circuit_depth, operator_key)
        tx.commit()
    if rolled_back_to is None:
        return step
    return dataclasses.replace(step, rolled_back_to=rolled_back_to)


def _check_chain_id(tx: Tx, chain_id: int) -> None:
    stored = tx.get_meta(META_CHAIN_ID)
    if stored is not None and stored != chain_id:
        raise ChainIdMismatchError(stored, chain_id)


def _fork_point(tx: Tx, chain: ChainView, head_height: int) -> int:
    """The highest height at which the stored block is the chain's block (-1: not even genesis)."""
    final = final_height_of(tx)
    height = head_height - 1
    while height >= 0:
        stored = tx.block_at(height)
        canon = chain.block_at(height)
        if stored is not None and canon is not None and stored.hash == canon.hash:
            return height
        if height <= final:
            raise ReorgBelowFinalityError(height, final)
        height -= 1
    if final >= 0:
        raise ReorgBelowFinalityError(0, final)
    return -1


def _rollback(tx: Tx, fork: int) -> None:
    final = final_height_of(tx)
    if fork < final:
        raise ReorgBelowFinalityError(fork + 1, final)
    tx.rollback_above(fork)


def _apply_block(
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
