"""Row ↔ record conversions shared by the SQL backends (columns are named alike in both)."""

from collections.abc import Mapping, Sequence

import cbor2

from aicf.core.chain import (
    CancelOutcome,
    CancelRequest,
    Claim,
    IngestedBlock,
    Job,
    ProofInclusion,
    RefusedTx,
    Transition,
)
from aicf.core.encoding import canonical_cbor
from aicf.core.jobs import JobStatus
from aicf.core.ledger import LedgerEntry, Posting
from aicf.core.types import MicroAnm, MilliUnits

Row = Sequence[object]
_EMPTY_LIST = canonical_cbor([])
NamedRow = Mapping[str, object]


def _i(v: object) -> int:
    if isinstance(v, bool):
        return int(v)
    if not isinstance(v, int):
        raise TypeError(f"expected an integer column, got {type(v).__name__}")
    return v


def _b(v: object) -> bytes:
    if isinstance(v, memoryview):
        return v.tobytes()
    if not isinstance(v, bytes):
        raise TypeError(f"expected a bytes column, got {type(v).__name__}")
    return v


def _s(v: object) -> str:
    if not isinstance(v, str):
        raise TypeError(f"expected a text column, got {type(v).__name__}")
    return v


def _opt_i(v: object) -> int | None:
    return None if v is None else _i(v)


def block_params(b: IngestedBlock) -> dict[str, object]:
    return {
        "height": b.height,
        "hash": b.hash,
        "parent": b.parent,
        "time": b.time,
        "producer": b.producer,
        "beacon": b.beacon,
        "issuance": b.issuance,
        "fees": b.fees,
        "epoch": b.epoch,
        "final": b.final,
    }


def block_of(r: Row) -> IngestedBlock:
    return IngestedBlock(
        height=_i(r[0]),
        hash=_b(r[1]),
        parent=_b(r[2]),
        time=_i(r[3]),
        producer=_b(r[4]),
        beacon=_b(r[5]),
        issuance=MicroAnm(_i(r[6])),
        fees=MicroAnm(_i(r[7])),
        epoch=_i(r[8]),
        final=bool(r[9]),
    )


def job_params(j: Job) -> dict[str, object]:
    return {
        "task_id": j.task_id,
        "chain_id": j.chain_id,
        "tx_hash": j.tx_hash,
        "caller": j.caller,
        "kind": j.kind,
        "payload": j.payload,
        "payload_hash": j.payload_hash,
        "model": j.model,
        "fee_per_unit": j.fee_per_unit,
        "tier": j.tier,
        "max_units_mu": j.max_units_mu,
        "escrow": j.escrow,
        "depth": j.depth,
        "deadline_height": j.deadline_height,
        "regions": canonical_cbor(list(j.regions)) if j.regions else _EMPTY_LIST,
        "allowlist": canonical_cbor(list(j.allowlist)) if j.allowlist else _EMPTY_LIST,
        "tee_required": j.tee_required,
        "enqueue_height": j.enqueue_height,
        "enqueue_tx_index": j.enqueue_tx_index,
        "status": j.status.value,
        "attempts": j.attempts,
        "not_before": j.not_before,
        "carried_batches": j.carried_batches,
        "cancel_requested": j.cancel_requested,
    }


JOB_COLUMNS = (
    "task_id", "chain_id", "tx_hash", "caller", "kind", "payload", "payload_hash", "model", "fee_per_unit", "tier",
    "max_units_mu", "escrow", "depth", "deadline_height", "regions", "allowlist", "tee_required", "enqueue_height",
    "enqueue_tx_index", "status", "attempts", "not_before", "carried_batches", "cancel_requested",
)  # fmt: skip


def job_of(row: Row) -> Job:
    """A job from a row in JOB_COLUMNS order (the order every jobs query selects)."""
    r: NamedRow = dict(zip(JOB_COLUMNS, row, strict=True))
    regions = cbor2.loads(_b(r["regions"]))
    allowlist = cbor2.loads(_b(r["allowlist"]))
    return Job(
        task_id=_b(r["task_id"]),
        chain_id=_i(r["chain_id"]),
        tx_hash=_b(r["tx_hash"]),
        caller=_b(r["caller"]),
        kind=_s(r["kind"]),
        payload=_b(r["payload"]),
        payload_hash=_b(r["payload_hash"]),
        model=_s(r["model"]),
        fee_per_unit=_i(r["fee_per_unit"]),
        tier=_i(r["tier"]),
        max_units_mu=MilliUnits(_i(r["max_units_mu"])),
        escrow=MicroAnm(_i(r["escrow"])),
        depth=_i(r["depth"]),
        deadline_height=_i(r["deadline_height"]),
        regions=tuple(_s(x) for x in regions),
        allowlist=tuple(_b(x) for x in allowlist),
        tee_required=bool(r["tee_required"]),
        enqueue_height=_i(r["enqueue_height"]),
        enqueue_tx_index=_i(r["enqueue_tx_index"]),
        status=JobStatus(_s(r["status"])),
        attempts=_i(r["attempts"]),
        not_before=_i(r["not_before"]),
        carried_batches=_i(r["carried_batches"]),
        cancel_requested=bool(r["cancel_requested"]),
    )


def transition_params(t: Transition) -> dict[str, object]:
    return {
        "task_id": t.task_id,
        "from_status": t.frm.value,
        "to_status": t.to.value,
        "reason": t.reason,
        "height": t.height,
        "time": t.time,
    }


def transition_of(r: Row) -> Transition:
    return Transition(
        seq=_i(r[0]),
        task_id=_b(r[1]),
        frm=JobStatus(_s(r[2])),
        to=JobStatus(_s(r[3])),
        reason=_s(r[4]),
        height=_opt_i(r[5]),
        time=_i(r[6]),
    )


def entry_params(p: Posting, block_height: int | None, time: int) -> dict[str, object]:
    return {
        "debit": p.debit,
        "credit": p.credit,
        "amount": p.amount,
        "ref_kind": p.ref_kind,
        "ref": p.ref,
        "block_height": block_height,
        "time": time,
    }


def entry_of(r: Row) -> LedgerEntry:
    posting = Posting(debit=_s(r[1]), credit=_s(r[2]), amount=MicroAnm(_i(r[3])), ref_kind=_s(r[4]), ref=_b(r[5]))
    return LedgerEntry(posting=posting, block_height=_opt_i(r[6]), time=_i(r[7]), seq=_i(r[0]))


def inclusion_params(i: ProofInclusion) -> dict[str, object]:
    return {
        "task_id": i.task_id,
        "proof_id": i.proof_id,
        "provider_id": i.provider_id,
        "height": i.height,
        "tx_index": i.tx_index,
        "tx_hash": i.tx_hash,
        "producer": i.producer,
    }


def inclusion_of(r: Row) -> ProofInclusion:
    return ProofInclusion(
        task_id=_b(r[0]),
        proof_id=_b(r[1]),
        provider_id=_b(r[2]),
        height=_i(r[3]),
        tx_index=_i(r[4]),
        tx_hash=_b(r[5]),
        producer=_b(r[6]),
    )


def refused_params(r: RefusedTx) -> dict[str, object]:
    return {
        "height": r.height,
        "tx_index": r.tx_index,
        "tx_hash": r.tx_hash,
        "kind": r.kind,
        "sender": r.sender,
        "field": r.field,
        "reason": r.reason,
    }


def refused_of(r: Row) -> RefusedTx:
    return RefusedTx(
        height=_i(r[0]),
        tx_index=_i(r[1]),
        tx_hash=_b(r[2]),
        kind=_s(r[3]),
        sender=_b(r[4]),
        field=_s(r[5]),
        reason=_s(r[6]),
    )


def cancel_params(c: CancelRequest) -> dict[str, object]:
    return {
        "height": c.height,
        "tx_index": c.tx_index,
        "tx_hash": c.tx_hash,
        "task_id": c.task_id,
        "sender": c.sender,
        "outcome": c.outcome.value,
    }


def cancel_of(r: Row) -> CancelRequest:
    return CancelRequest(
        height=_i(r[0]),
        tx_index=_i(r[1]),
        tx_hash=_b(r[2]),
        task_id=_b(r[3]),
        sender=_b(r[4]),
        outcome=CancelOutcome(_s(r[5])),
    )


def claim_params(c: Claim) -> dict[str, object]:
    return {"claim_id": c.claim_id, "provider_id": c.provider_id, "amount": c.amount, "time": c.time}


def claim_of(r: Row) -> Claim:
    return Claim(claim_id=_b(r[0]), provider_id=_b(r[1]), amount=MicroAnm(_i(r[2])), time=_i(r[3]))


def as_int(v: object) -> int:
    return _i(v)


def as_bytes(v: object) -> bytes:
    return _b(v)


def as_str(v: object) -> str:
    return _s(v)
