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
from collections.abc import Mapping
from dataclasses import dataclass, field

from aicf.chain.interface import ChainView
from aicf.core.chain import (
    ENQUEUE_KINDS,
    Block,
    CancelOutcome,
    CancelRequest,
    ChainTx,
    IngestedBlock,
    Job,
    ProofInclusion,
    RefusedTx,
    TxKind,
    epoch_of,
    finalized_height,
)
from aicf.core.encoding import canonical_cbor
from aicf.core.errors import AicfError, RequestError
from aicf.core.ids import trap_seed_commitment
from aicf.core.jobs import FINAL_STATUSES, JobStatus, check_move
from aicf.core.ledger import (
    EXTERNAL,
    FUND,
    TREASURY,
    Posting,
    apply_postings,
    escrow_account,
    requester_account,
)
from aicf.core.operator import (
    OP_ALLOWLIST,
    OP_FUND_TOPUP,
    OP_PARAMS,
    OP_TIER,
    OP_TRAP_COMMIT,
    OP_TRAP_FUND,
    OP_TRAP_REVEAL,
    OperatorChange,
    apply_params_changes,
    body_bytes,
    body_int,
    epoch_subject,
    operator_op,
    params_changes,
    params_diff,
)
from aicf.core.params import Params
from aicf.core.pricing import treasury_income
from aicf.core.records import ResultRecord
from aicf.core.requests import CircuitDepth, make_receipt, validate_request
from aicf.core.txs import address_of
from aicf.core.types import MAX_AMOUNT, MicroAnm, MilliUnits
from aicf.proofs.attestation.registry import CPU_TEE_KINDS, admitted_tee_kinds, decode_policy
from aicf.service.escrow import refund_escrow
from aicf.service.inclusion import result_of_inclusion
from aicf.service.operator_ops import allowlist, check_gamma, params_for_epoch, trap_commitment, trap_reveal
from aicf.service.settle import settle_due
from aicf.store.interface import (
    META_CHAIN_ID,
    META_FINAL_HEIGHT,
    META_GENESIS_TIME,
    META_PRICE_BPS,
    ConcurrentUpdateError,
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


@dataclass(slots=True)
class _BlockWork:
    """What one block's transactions add up to, gathered before anything is written."""

    postings: list[Posting] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    refused: list[RefusedTx] = field(default_factory=list)
    cancels: list[CancelRequest] = field(default_factory=list)
    inclusions: list[ProofInclusion] = field(default_factory=list)
    balances: dict[str, int] = field(default_factory=dict)  # running balances of the accounts touched
    open_jobs: dict[bytes, int] = field(default_factory=dict)
    tiers: dict[bytes, int] = field(default_factory=dict)
    task_ids: set[bytes] = field(default_factory=set)
    proof_jobs: dict[bytes, Job] = field(default_factory=dict)  # the stored jobs the block's proofs name
    included: set[bytes] = field(default_factory=set)  # task ids with an inclusion: stored, or of `inclusions`
    results: list[ResultRecord] = field(default_factory=list)
    changes: list[OperatorChange] = field(default_factory=list)  # the block's applied operator transactions
    scheduled: Params | None = None  # the params scheduled for the next epoch, once a params change read them
    tee_kinds: tuple[str, ...] | None = None  # the TEE evidence kinds the policies in force admit (read once)


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


def _final_height(tx: Tx) -> int:
    value = tx.get_meta(META_FINAL_HEIGHT)
    return -1 if value is None else value


def _fork_point(tx: Tx, chain: ChainView, head_height: int) -> int:
    """The highest height at which the stored block is the chain's block (-1: not even genesis)."""
    final = _final_height(tx)
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
    final = _final_height(tx)
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
    work = _BlockWork()
    work.scheduled = params_for_epoch(tx, base, epoch + 1)
    _prefetch(tx, work, block)
    income = treasury_income(block.issuance, block.fees, params)
    # the supply after this block's mint: a deposit that would take it past 2^63 is refused, not posted (issue 15)
    work.balances[EXTERNAL] = tx.balances([EXTERNAL])[EXTERNAL] - income
    for ctx in block.txs:
        if ctx.kind == TxKind.OPERATOR:
            _operator_tx(tx, work, block, ctx, epoch, base, operator_key)
        else:
            _apply_tx(tx, work, block, ctx, chain_id, params, price_bps, circuit_depth, operator_key)
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
    queued, cancelled = _apply_finality(tx, finalized_height(block.height, params.finality_depth), base)
    return IngestStep(
        height=block.height,
        block_hash=block.hash,
        jobs=len(work.jobs),
        refused=len(work.refused),
        queued=queued,
        cancelled=cancelled,
    )


def _prefetch(tx: Tx, work: _BlockWork, block: Block) -> None:
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


def _refuse(work: _BlockWork, block: Block, ctx: ChainTx, error: RequestError) -> None:
    work.refused.append(
        RefusedTx(
            height=block.height,
            tx_index=ctx.index,
            tx_hash=ctx.tx_hash,
            kind=ctx.kind.value,
            sender=ctx.sender,
            field=error.field,
            reason=error.reason,
        )
    )


def _bytes32(body: Mapping[str, object], key: str) -> bytes:
    value = body.get(key)
    if not isinstance(value, bytes) or len(value) != 32:
        raise RequestError(key, "expected 32 bytes")
    return value


def _apply_tx(
    tx: Tx,
    work: _BlockWork,
    block: Block,
    ctx: ChainTx,
    chain_id: int,
    params: Params,
    price_bps: int,
    circuit_depth: CircuitDepth,
    operator_key: bytes | None = None,
) -> None:
    try:
        if ctx.kind in ENQUEUE_KINDS:
            _enqueue(tx, work, block, ctx, chain_id, params, price_bps, circuit_depth)
        elif ctx.kind == TxKind.DEPOSIT:
            _deposit(tx, work, ctx)
        elif ctx.kind == TxKind.TREASURY_DEPOSIT:
            _treasury_deposit(tx, work, ctx)
        elif ctx.kind == TxKind.CANCEL:
            work.cancels.append(
                CancelRequest(
                    height=block.height,
                    tx_index=ctx.index,
                    tx_hash=ctx.tx_hash,
                    task_id=_bytes32(ctx.body, "task_id"),
                    sender=ctx.sender,
                )
            )
        elif ctx.kind == TxKind.PROOF:
            _proof(work, block, ctx, operator_key)
        else:
            raise RequestError("kind", f"unknown transaction kind {ctx.kind!r}")
    except RequestError as exc:
        _refuse(work, block, ctx, exc)


def _operator_tx(
    tx: Tx, work: _BlockWork, block: Block, ctx: ChainTx, epoch: int, base: Params, operator_key: bytes | None
) -> None:
    try:
        _operator(tx, work, block, ctx, epoch, base, operator_key)
    except RequestError as exc:
        _refuse(work, block, ctx, exc)


def _operator(
    tx: Tx, work: _BlockWork, block: Block, ctx: ChainTx, epoch: int, base: Params, operator_key: bytes | None
) -> None:
    """An operator transaction (aicf.core.operator): refused unless its sender is the operator's address; each
    applied one is an OperatorChange row at this height, so a reorg undoes it with its block."""
    if operator_key is None:
        raise RequestError("sender", "this node knows no operator key: operator transactions are refused")
    if ctx.sender != address_of(operator_key):
        raise RequestError("sender", f"0x{ctx.sender.hex()} is not the operator: operator transactions are refused")
    op = operator_op(ctx.body)
    body = ctx.body
    subject, before, after, effective = b"", b"", b"", epoch
    if op == OP_PARAMS:
        current = work.scheduled or params_for_epoch(tx, base, epoch + 1)
        changes = params_changes(body)
        scheduled = apply_params_changes(current, changes)
        largest = max([tx.max_unsettled_units(), *(j.max_units_mu for j in work.jobs)])
        check_gamma(scheduled, largest)
        before, after = params_diff(current, changes)
        work.scheduled, effective = scheduled, epoch + 1
    elif op == OP_TIER:
        address, tier = body_bytes(body, "address"), body_int(body, "tier")
        if address not in work.tiers:
            work.tiers[address] = tx.requester_tier(address)
        subject, before, after = address, canonical_cbor(work.tiers[address]), canonical_cbor(tier)
        work.tiers[address] = tier
    elif op == OP_ALLOWLIST:
        pid = body_bytes(body, "provider_id")
        listed = pid in allowlist(tx, ()) if not work.changes else _listed_in_block(tx, work, pid)
        subject, before, after = pid, canonical_cbor(listed), canonical_cbor(body["action"] == "add")
    elif op in (OP_TRAP_FUND, OP_FUND_TOPUP):
        amount = body_int(body, "amount")
        source = FUND if op == OP_TRAP_FUND else EXTERNAL
        target = FUND if op == OP_FUND_TOPUP else requester_account(body_bytes(body, "to"))
        have, held = _balance(tx, work, source), _balance(tx, work, target)
        if source == FUND and have < amount:
            raise RequestError("amount", f"the fund holds {have} µANM, below {amount} µANM")
        if source == EXTERNAL and have - amount <= -MAX_AMOUNT:
            raise RequestError("amount", f"the supply would pass 2^63 µANM ({-have} minted so far)")
        if held + amount >= MAX_AMOUNT:
            raise RequestError("amount", f"{target} would exceed 2^63 µANM")
        work.balances[source], work.balances[target] = have - amount, held + amount
        ref_kind = "trap_funding" if op == OP_TRAP_FUND else "fund_topup"
        work.postings.append(
            Posting(debit=source, credit=target, amount=MicroAnm(amount), ref_kind=ref_kind, ref=ctx.tx_hash)
        )
        subject = body_bytes(body, "to") if op == OP_TRAP_FUND else b""
        before, after = canonical_cbor(held), canonical_cbor(held + amount)
    else:
        target_epoch = body_int(body, "epoch")
        subject, effective = epoch_subject(target_epoch), target_epoch
        committed = trap_commitment(tx, target_epoch) or next(
            (c for c in work.changes if c.op == OP_TRAP_COMMIT and c.subject == subject), None
        )
        if op == OP_TRAP_COMMIT:
            if target_epoch < epoch or (target_epoch == epoch and epoch > 0):
                raise RequestError("epoch", f"epoch {target_epoch} has begun (this block is in epoch {epoch})")
            if target_epoch > epoch + 1000:
                raise RequestError("epoch", f"more than 1000 epochs ahead of this block's epoch {epoch}")
            if committed is not None:
                raise RequestError("epoch", f"epoch {target_epoch} already has a trap seed commitment")
            after = body_bytes(body, "commitment")
        else:
            if target_epoch >= epoch:
                raise RequestError("epoch", f"epoch {target_epoch} is not over (this block is in epoch {epoch})")
            if committed is None:
                raise RequestError("epoch", f"epoch {target_epoch} has no trap seed commitment on chain")
            if trap_reveal(tx, target_epoch) is not None or any(
                c.op == OP_TRAP_REVEAL and c.subject == subject for c in work.changes
            ):
                raise RequestError("epoch", f"epoch {target_epoch}'s trap seed is already revealed")
            seed = body_bytes(body, "seed")
            if trap_seed_commitment(seed) != committed.after:
                raise RequestError("seed", f"does not match epoch {target_epoch}'s commitment")
            before, after = committed.after, seed
    work.changes.append(
        OperatorChange(
            height=block.height,
            tx_index=ctx.index,
            tx_hash=ctx.tx_hash,
            sender=ctx.sender,
            op=op,
            subject=subject,
            before=before,
            after=after,
            effective_epoch=effective,
            time=block.time,
        )
    )


def _listed_in_block(tx: Tx, work: _BlockWork, pid: bytes) -> bool:
    listed = pid in allowlist(tx, ())
    for c in work.changes:
        if c.op == OP_ALLOWLIST and c.subject == pid:
            listed = c.after == canonical_cbor(True)
    return listed


def _balance(tx: Tx, work: _BlockWork, account: str) -> int:
    if account not in work.balances:
        work.balances[account] = tx.balances([account])[account]
    return work.balances[account]


def _deposit(tx: Tx, work: _BlockWork, ctx: ChainTx) -> None:
    to = ctx.body.get("to")
    amount = ctx.body.get("amount")
    if not isinstance(to, bytes) or not 1 <= len(to) <= 64:
        raise RequestError("to", "expected an address of 1 to 64 bytes")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount < MAX_AMOUNT:
        raise RequestError("amount", "expected an integer > 0 and < 2^63")
    if set(ctx.body) - {"to", "amount"}:
        raise RequestError(sorted(set(ctx.body) - {"to", "amount"})[0], "unknown key for a deposit")
    account = requester_account(to)
    have = _balance(tx, work, account)
    if have + amount >= MAX_AMOUNT:
        raise RequestError("amount", f"{account} would exceed 2^63 µANM")
    supply = _balance(tx, work, EXTERNAL)  # minus everything minted so far
    if supply - amount <= -MAX_AMOUNT:
        raise RequestError("amount", f"the supply would pass 2^63 µANM ({-supply} minted so far)")
    work.balances[account] = have + amount
    work.balances[EXTERNAL] = supply - amount
    work.postings.append(
        Posting(debit=EXTERNAL, credit=account, amount=MicroAnm(amount), ref_kind="deposit", ref=ctx.tx_hash)
    )


def _treasury_deposit(tx: Tx, work: _BlockWork, ctx: ChainTx) -> None:
    """Treasury income paid in on chain (an EVM chain's `Aicf.deposit`, docs/EVM.md): external → treasury, so
    the ledger's treasury is the contract's and no batch pays a reward the contract would refuse."""
    amount = ctx.body.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount < MAX_AMOUNT:
        raise RequestError("amount", "expected an integer > 0 and < 2^63")
    if set(ctx.body) != {"amount"}:
        raise RequestError(sorted(set(ctx.body) - {"amount"})[0], "unknown key for a treasury deposit")
    have = _balance(tx, work, TREASURY)
    if have + amount >= MAX_AMOUNT:
        raise RequestError("amount", f"{TREASURY} would exceed 2^63 µANM")
    supply = _balance(tx, work, EXTERNAL)
    if supply - amount <= -MAX_AMOUNT:
        raise RequestError("amount", f"the supply would pass 2^63 µANM ({-supply} minted so far)")
    work.balances[TREASURY] = have + amount
    work.balances[EXTERNAL] = supply - amount
    work.postings.append(
        Posting(debit=EXTERNAL, credit=TREASURY, amount=MicroAnm(amount), ref_kind="treasury_deposit", ref=ctx.tx_hash)
    )


def _enqueue(
    tx: Tx,
    work: _BlockWork,
    block: Block,
    ctx: ChainTx,
    chain_id: int,
    params: Params,
    price_bps: int,
    circuit_depth: CircuitDepth,
) -> None:
    """SPEC §2: the stateless limits (core), then the caller's tier, open jobs and balance (store)."""
    request = {**ctx.body, "kind": ENQUEUE_KINDS[ctx.kind]}
    valid = validate_request(request, params, price_bps, circuit_depth)
    rmap = valid.request_map
    if work.scheduled is not None and valid.max_units_mu > work.scheduled.gamma_mu:
        raise RequestError(
            "max_units_mu",
            f"{valid.max_units_mu} exceeds Γ × 1000 = {work.scheduled.gamma_mu} of the params scheduled for the next "
            "epoch",
        )
    if rmap.get("tee") == "required":
        _require_tee_policy(tx, work, block.height)
    tier = int(str(rmap["tier"]))
    caller = ctx.sender
    if tier > 0:
        if caller not in work.tiers:
            work.tiers[caller] = tx.requester_tier(caller)
        if tier > work.tiers[caller]:
            raise RequestError("tier", f"{tier} is above the caller's registered tier {work.tiers[caller]}")
    if caller not in work.open_jobs:
        work.open_jobs[caller] = tx.open_job_count(caller)
    if work.open_jobs[caller] >= params.max_open_jobs:
        raise RequestError("caller", f"already has {work.open_jobs[caller]} open jobs (limit {params.max_open_jobs})")
    account = requester_account(caller)
    have = _balance(tx, work, account)
    if have < valid.escrow:
        raise RequestError("escrow", f"balance {have} µANM is below the escrow of {valid.escrow} µANM")
    receipt = make_receipt(valid, chain_id=chain_id, height=block.height, tx_hash=ctx.tx_hash, caller=caller)
    # A task id covers (chain, height, tx hash, caller, payload): only the same transaction twice in one block
    # repeats one, and that is caught here; across blocks the height differs (the jobs' key backs this up).
    if receipt.task_id in work.task_ids:
        raise RequestError("task_id", f"task 0x{receipt.task_id.hex()} already exists")
    work.task_ids.add(receipt.task_id)
    work.open_jobs[caller] += 1
    work.balances[account] = have - valid.escrow
    if valid.escrow > 0:
        work.postings.append(
            Posting(
                debit=account,
                credit=escrow_account(receipt.task_id),
                amount=valid.escrow,
                ref_kind="escrow",
                ref=receipt.task_id,
            )
        )
    regions = rmap.get("regions", ())
    allowlist = rmap.get("allowlist", ())
    region_names = tuple(str(r) for r in regions) if isinstance(regions, list | tuple) else ()
    provider_ids = tuple(a for a in allowlist if isinstance(a, bytes)) if isinstance(allowlist, list | tuple) else ()
    deadline = rmap.get("deadline_blocks", params.default_deadline_blocks)
    work.jobs.append(
        Job(
            task_id=receipt.task_id,
            chain_id=chain_id,
            tx_hash=ctx.tx_hash,
            caller=caller,
            kind=receipt.kind,
            payload=valid.payload,
            payload_hash=receipt.payload_hash,
            model=str(rmap.get("model", "")),
            fee_per_unit=int(str(rmap["fee_per_unit"])),
            tier=tier,
            max_units_mu=MilliUnits(valid.max_units_mu),
            escrow=valid.escrow,
            depth=valid.depth,
            deadline_height=block.height + int(str(deadline)),
            regions=region_names,
            allowlist=provider_ids,
            tee_required=rmap.get("tee") == "required",
            enqueue_height=block.height,
            enqueue_tx_index=ctx.index,
        )
    )


def _require_tee_policy(tx: Tx, work: _BlockWork, height: int) -> None:
    """Attestation fails closed (issue 14): a `tee_required` job is taken only while an operator policy in force at
    its enqueue height could admit TEE evidence for it (`aicf.proofs.attestation.registry.tee_policy_gap`: a
    non-empty measurement allowlist and a minimum TCB, for a CPU TEE kind). Policies only gain versions that
    activate above the head, so this reads the same on every replay of the block."""
    if work.tee_kinds is None:
        in_force: dict[str, tuple[int, bytes]] = {}
        for p in tx.attestation_policies():
            if p.activation_height <= height and p.version > in_force.get(p.kind, (0, b""))[0]:
                in_force[p.kind] = (p.version, p.policy)
        work.tee_kinds = admitted_tee_kinds({kind: decode_policy(raw) for kind, (_, raw) in in_force.items()})
    if not work.tee_kinds:
        raise RequestError(
            "tee",
            "required, but no operator attestation policy in force admits TEE evidence: one is needed for "
            f"{'/'.join(CPU_TEE_KINDS)} with a non-empty measurement allowlist and a minimum TCB (aicf policy set)",
        )


def _proof(work: _BlockWork, block: Block, ctx: ChainTx, operator_key: bytes | None) -> None:
    """Record the inclusion; with the operator's key, a proof carrying a valid acceptance record (SPEC §8)
    also writes its ResultRecord at this height, which settlement pays once the height is final."""
    task = _bytes32(ctx.body, "task_id")
    proof = _bytes32(ctx.body, "proof_id")
    provider = _bytes32(ctx.body, "provider_id")
    job = work.proof_jobs.get(task)  # prefetched: every 32-byte task id of the block's proofs
    if job is None and task not in work.task_ids:
        raise RequestError("task_id", f"unknown task 0x{task.hex()}")
    if task in work.included:
        raise RequestError("task_id", "a proof for this task is already included; the first inclusion wins")
    inclusion = ProofInclusion(
        task_id=task,
        proof_id=proof,
        provider_id=provider,
        height=block.height,
        tx_index=ctx.index,
        tx_hash=ctx.tx_hash,
        producer=block.producer,
    )
    result = None
    if operator_key is not None:
        result = result_of_inclusion(ctx.body, inclusion, job.kind if job is not None else "", operator_key)
    work.inclusions.append(inclusion)
    work.included.add(task)
    if result is not None:
        work.results.append(result)


def _apply_finality(tx: Tx, final: int, params: Params) -> tuple[int, int]:
    """Apply the effects of every height that became final, each recorded at that height."""
    queued = cancelled = 0
    done = _final_height(tx)
    for height in range(done + 1, final + 1):
        block = tx.block_at(height)
        time = block.time if block is not None else 0
        tx.finalize_blocks_through(height)
        pending = tx.pending_jobs_through(height)
        for task in pending:
            check_move(task, JobStatus.PENDING, JobStatus.QUEUED)
        if pending:
            moved = tx.move_jobs(pending, JobStatus.PENDING, JobStatus.QUEUED, "final", height, time)
            if moved != len(pending):
                raise ConcurrentUpdateError(f"{len(pending) - moved} PENDING jobs moved while they became final")
        queued += len(pending)
        cancelled += _apply_cancels(tx, height, time)
        cancelled += _apply_deadlines(tx, height, time)
        tx.set_meta(META_FINAL_HEIGHT, height)
        settle_due(tx, height, params)
    return queued, cancelled


def _cancel(tx: Tx, job: Job, reason: str, height: int, time: int) -> bool:
    check_move(job.task_id, job.status, JobStatus.CANCELLED)
    if not tx.move_job(job.task_id, job.status, JobStatus.CANCELLED, reason, height, time):
        return False
    refund_escrow(tx, job, "refund", height, time)
    return True


def _apply_cancels(tx: Tx, height: int, time: int) -> int:
    """SPEC §4: a cancel takes effect once its block is final. QUEUED → CANCELLED with a full refund; a
    leased job is marked and cancelled only if the lease ends without an accepted proof."""
    count = 0
    for cancel in tx.waiting_cancels_through(height):
        job = tx.get_job(cancel.task_id)
        if job is None or job.caller != cancel.sender or job.status in FINAL_STATUSES:
            outcome = CancelOutcome.IGNORED
        elif job.status == JobStatus.QUEUED:
            outcome = CancelOutcome.CANCELLED if _cancel(tx, job, "cancelled", height, time) else CancelOutcome.IGNORED
            count += outcome == CancelOutcome.CANCELLED
        elif job.status == JobStatus.PENDING:  # cannot happen: its enqueue is at or below the cancel's height
            outcome = CancelOutcome.IGNORED
        else:
            tx.set_cancel_requested(job.task_id)
            outcome = CancelOutcome.DEFERRED
        tx.set_cancel_outcome(cancel.height, cancel.tx_index, outcome)
    return count


def _apply_deadlines(tx: Tx, height: int, time: int) -> int:
    """SPEC §4: QUEUED → CANCELLED when enqueue height + deadline_blocks is final."""
    return sum(1 for job in tx.queued_jobs_at_deadline(height) if _cancel(tx, job, "deadline", height, time))


def _record_results(tx: Tx, work: _BlockWork, block: Block) -> None:
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
