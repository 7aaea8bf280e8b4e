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

from aicf.chain.interface import ChainView
from aicf.core.chain import Block
from aicf.core.params import Params
from aicf.core.requests import CircuitDepth
from aicf.service.ingest_block import IngestError, IngestStep, UnknownParentError, apply_block
from aicf.service.ingest_finality import final_height_of
from aicf.store.interface import META_CHAIN_ID, Store, Tx

__all__ = [
    "ChainIdMismatchError",
    "IngestError",
    "IngestStep",
    "ReorgBelowFinalityError",
    "UnknownParentError",
    "ingest_available",
    "ingest_block",
    "ingest_next",
]

log = logging.getLogger("aicf.ingest")
_MAX_CHAIN_RACES = 8


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
        step = apply_block(tx, block, chain.chain_id, params, circuit_depth, operator_key)
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
        step = apply_block(tx, block, chain_id, params, circuit_depth, operator_key)
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
