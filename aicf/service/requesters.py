"""Requester use-cases (issue 12): send a signed transaction, follow it, read an account.

`send_transaction` applies, before the chain sees it, every check ingestion would apply to the same
transaction at the next block (SPEC §2: the request's limits, the caller's tier, open jobs and balance; a
cancel only of the sender's own job), counting what the sender already has waiting in the mempool. A refused
transaction gets a specific error and nothing is stored, no balance touched. Ingestion still checks again at
inclusion: that is the authoritative check (the price or a balance may change in between), and a transaction
it refuses is reported by `transaction_status` with the reason.
"""

from dataclasses import dataclass

import cbor2

from aicf.chain.interface import RequesterChain, TxLocation, TxLocator
from aicf.core.chain import ENQUEUE_KINDS, CancelRequest, Job, RefusedTx, TxKind
from aicf.core.errors import RequestError
from aicf.core.jobs import FINAL_STATUSES, JobStatus
from aicf.core.ledger import requester_account
from aicf.core.params import Params
from aicf.core.pricing import reserve_fee
from aicf.core.records import ResultRecord
from aicf.core.requests import CircuitDepth, validate_request
from aicf.core.txs import FAUCET_MAX, SignedTx, TxError, cancel_target, check_tx_shape, deposit_of
from aicf.core.types import MAX_AMOUNT
from aicf.store.interface import META_PRICE_BPS, Store, Tx


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    address: bytes
    balance: int  # µANM on requester:<address> at the ingested head
    next_nonce: int
    pending: int  # transactions waiting in the mempool
    open_jobs: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TxStatus:
    """What became of a transaction: `state` is pending, included, refused or unknown."""

    tx_hash: bytes
    state: str
    location: TxLocation | None
    jobs: tuple[Job, ...] = ()  # the job an enqueue made (newest inclusion first)
    refused: RefusedTx | None = None
    cancel: CancelRequest | None = None


def _price_bps(tx: Tx, params: Params) -> int:
    price = tx.get_meta(META_PRICE_BPS)
    return params.price_initial_bps if price is None else price


def _escrow_of(location: TxLocation, params: Params, price_bps: int, depth: CircuitDepth) -> int:
    if location.kind not in ENQUEUE_KINDS:
        return 0
    try:
        return validate_request(
            {**location.body, "kind": ENQUEUE_KINDS[location.kind]}, params, price_bps, depth
        ).escrow
    except RequestError:
        return 0  # ingestion will refuse it: it reserves nothing


def check_transaction(store: Store, chain: RequesterChain, params: Params, tx: SignedTx, depth: CircuitDepth) -> None:
    """Raise TxError or RequestError if ingestion would refuse `tx` now; nothing is written."""
    check_tx_shape(tx)
    sender = tx.sender
    pending = chain.pending_from(sender)
    with store.transaction() as stx:
        if tx.kind in ENQUEUE_KINDS:
            price_bps = _price_bps(stx, params)
            valid = validate_request({**tx.body, "kind": ENQUEUE_KINDS[tx.kind]}, params, price_bps, depth)
            tier = int(str(valid.request_map["tier"]))
            if tier > 0 and tier > (registered := stx.requester_tier(sender)):
                raise RequestError("tier", f"{tier} is above the caller's registered tier {registered}")
            waiting = sum(1 for p in pending if p.kind in ENQUEUE_KINDS)
            open_jobs = stx.open_job_count(sender) + waiting
            if open_jobs >= params.max_open_jobs:
                raise RequestError("caller", f"already has {open_jobs} open jobs (limit {params.max_open_jobs})")
            account = requester_account(sender)
            balance = stx.balances([account])[account]
            incoming = sum(
                int(str(p.body.get("amount", 0)))
                for p in pending
                if p.kind == TxKind.DEPOSIT and p.body.get("to") == sender
            )
            reserved = sum(_escrow_of(p, params, price_bps, depth) for p in pending)
            available = balance + incoming - reserved
            if available < valid.escrow:
                raise RequestError(
                    "escrow",
                    f"balance {balance} µANM (+{incoming} waiting to land, −{reserved} reserved by waiting "
                    f"enqueues) is below the escrow of {valid.escrow} µANM; deposit first",
                )
        elif tx.kind == TxKind.CANCEL:
            task_id = cancel_target(tx)
            job = stx.get_job(task_id)
            if job is None:
                raise TxError("task_id", f"no job 0x{task_id.hex()} is known (is its enqueue included yet?)")
            if job.caller != sender:
                raise TxError("task_id", f"job 0x{task_id.hex()} belongs to another requester")
            if job.status in FINAL_STATUSES:
                raise TxError("task_id", f"job 0x{task_id.hex()} is already {job.status.value}")
        elif tx.kind == TxKind.DEPOSIT:
            to, amount = deposit_of(tx)
            account = requester_account(to)
            incoming = sum(
                int(str(p.body.get("amount", 0)))
                for p in pending
                if p.kind == TxKind.DEPOSIT and p.body.get("to") == to
            )
            if stx.balances([account])[account] + incoming + amount >= MAX_AMOUNT:
                raise TxError("amount", f"{account} would exceed 2^63 − 1 µANM")


def send_transaction(store: Store, chain: RequesterChain, params: Params, tx: SignedTx, depth: CircuitDepth) -> bytes:
    """Check `tx` as ingestion would, then hand it to the chain; returns the transaction hash."""
    check_transaction(store, chain, params, tx, depth)
    return chain.send(tx)


def transaction_status(store: Store, chain: TxLocator, tx_hash: bytes) -> TxStatus:
    location = chain.locate(tx_hash)
    with store.transaction() as tx:
        jobs = tuple(tx.jobs_by_tx_hash(tx_hash))
        refused = tx.refused_by_tx_hash(tx_hash)
        cancels = tx.cancels_by_tx_hash(tx_hash)
    if location is None:
        return TxStatus(tx_hash=tx_hash, state="unknown", location=None)
    if location.height is None:
        return TxStatus(tx_hash=tx_hash, state="pending", location=location)
    here = [j for j in jobs if j.enqueue_height == location.height]
    refused_here = next((r for r in refused if r.height == location.height), None)
    cancel_here = next((c for c in cancels if c.height == location.height), None)
    if refused_here is not None:
        return TxStatus(tx_hash=tx_hash, state="refused", location=location, refused=refused_here)
    if location.kind in ENQUEUE_KINDS and not here:
        # included but not yet ingested (the next coordinator pass ingests it)
        return TxStatus(tx_hash=tx_hash, state="pending", location=location)
    return TxStatus(tx_hash=tx_hash, state="included", location=location, jobs=tuple(here), cancel=cancel_here)


def account(store: Store, chain: RequesterChain, address: bytes) -> Account:
    with store.transaction() as tx:
        name = requester_account(address)
        balance = tx.balances([name])[name]
        open_jobs = tx.open_job_count(address)
    return Account(
        address=address,
        balance=balance,
        next_nonce=chain.next_nonce(address),
        pending=len(chain.pending_from(address)),
        open_jobs=open_jobs,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestOutcome:
    """What a requester reads of its job (the seed's read_result, with the money): the job, the ResultRecord
    once a proof is included, the accepted output, and what was charged and refunded once that is decided."""

    job: Job
    result: ResultRecord | None
    output: bytes | None  # AI: the accepted proof's output bytes (when ≤ 64 KiB it is carried in the proof)
    results: object | None  # quantum: the accepted proof's results, as the provider returned them
    charged: int | None  # µANM moved escrow → treasury at settlement; None while undecided
    refunded: int | None  # µANM moved back to the requester; None while undecided
    final: bool  # SETTLED, or refunded in full (CANCELLED, FAILED, REJECTED)


REFUNDED_IN_FULL = frozenset({JobStatus.CANCELLED, JobStatus.FAILED, JobStatus.REJECTED})


def request_outcome(store: Store, task_id: bytes) -> RequestOutcome | None:
    with store.transaction() as tx:
        job = tx.get_job(task_id)
        if job is None:
            return None
        result = tx.get_result(task_id)
        proof = tx.get_proof(result.proof_id) if result is not None else None
        payout = tx.payout_of_task(task_id) if job.status == JobStatus.SETTLED else None
    output: bytes | None = None
    results: object | None = None
    if proof is not None:
        envelope = cbor2.loads(proof.envelope)  # our own canonical CBOR, written at acceptance
        body = envelope.get("body", {}) if isinstance(envelope, dict) else {}
        if isinstance(body, dict):
            out = body.get("output")
            output = out if isinstance(out, bytes) else None
            results = body.get("results")
    charged: int | None = None
    refunded: int | None = None
    if payout is not None:
        charged, refunded = payout.charged, job.escrow - payout.charged
    elif job.status in REFUNDED_IN_FULL:
        charged, refunded = 0, job.escrow
    return RequestOutcome(
        job=job,
        result=result,
        output=output,
        results=results,
        charged=charged,
        refunded=refunded,
        final=charged is not None,
    )


def request_terms(store: Store, params: Params, chain_id: int) -> dict[str, object]:
    """What a requester needs to build a request the coordinator accepts (aicf.getRequestTerms): the chain
    id, the models and their weights, the current price, the reserve fees now and the suggested fees (the
    reserve at the highest price the clamp allows, so a job is never refused for its fee after a price move)."""
    with store.transaction() as tx:
        price_bps = _price_bps(tx, params)
    best_lat = max([b for _, b in params.latency_tiers] + [params.latency_else_bps])
    best_avail = max([b for _, b in params.availability_tiers] + [params.availability_else_bps])
    return {
        "chain_id": chain_id,
        "price_bps": price_bps,
        "models": {m: {"weight_milli": w} for m, w in sorted(params.model_weights.items())},
        "best_qos_bps_product": best_lat * best_avail,
        "reserve_fee_per_unit": {
            "ai": reserve_fee(params.base_rate_ai, price_bps, params),
            "quantum": reserve_fee(params.base_rate_quantum, price_bps, params),
        },
        "suggested_fee_per_unit": {
            "ai": reserve_fee(params.base_rate_ai, params.price_max_bps, params),
            "quantum": reserve_fee(params.base_rate_quantum, params.price_max_bps, params),
        },
        "max_prompt_bytes": params.max_prompt_bytes,
        "max_circuit_bytes": params.max_circuit_bytes,
        "max_tokens": params.max_tokens,
        "max_runtime_ms": params.max_runtime_ms,
        "max_shots": params.max_shots,
        "max_open_jobs": params.max_open_jobs,
        "faucet_max": FAUCET_MAX,
    }
