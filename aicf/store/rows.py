"""Row ↔ record conversions shared by the SQL backends (columns are named alike in both)."""

import functools
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
from aicf.core.leases import LeaseStatus
from aicf.core.ledger import LedgerEntry, Posting
from aicf.core.records import (
    BatchRecord,
    DecisionRecord,
    Event,
    LeaseRecord,
    ProofRecord,
    Provider,
    ResultRecord,
    SlashRecord,
    TrapRecord,
    TrapSeedRecord,
)
from aicf.core.registry import ProviderStatus
from aicf.core.settlement import Payout
from aicf.core.types import MicroAnm, MilliUnits
from aicf.store.interface import CorruptValueError

Row = Sequence[object]
_EMPTY_LIST = canonical_cbor([])
NamedRow = Mapping[str, object]


def _i(v: object) -> int:
    if isinstance(v, bool):
        return int(v)
    if not isinstance(v, int):
        raise CorruptValueError("an integer", v)
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


def _texts(values: Sequence[str]) -> bytes:
    return canonical_cbor(list(values)) if values else _EMPTY_LIST


def _texts_of(v: object) -> tuple[str, ...]:
    return _decode_texts(_b(v))


@functools.lru_cache(maxsize=4096)
def _decode_texts(raw: bytes) -> tuple[str, ...]:
    """Capability lists repeat across providers (the matcher reloads them all after a registry change)."""
    return tuple(_s(x) for x in cbor2.loads(raw))


def _qos(qos: Mapping[str, int]) -> bytes:
    return canonical_cbor(dict(qos))


def _qos_of(v: object) -> dict[str, int]:
    loaded = cbor2.loads(_b(v))
    return {_s(k): _i(x) for k, x in loaded.items()}


def _opt_b(v: object) -> bytes | None:
    return None if v is None else _b(v)


PROVIDER_COLUMNS = (
    "provider_id", "public_key", "status", "registered_at", "kinds", "models", "devices", "regions", "tee_classes",
    "max_leases", "bonded", "unbonding", "unbonding_until", "jailed_until", "last_heartbeat_at", "bucket_tokens_mu",
    "bucket_at", "strikes", "updated_at", "unit_burst_mu", "unit_rate_mu_per_day",
)  # fmt: skip


def provider_params(p: Provider) -> dict[str, object]:
    return {
        "provider_id": p.provider_id,
        "public_key": p.public_key,
        "status": p.status.value,
        "registered_at": p.registered_at,
        "kinds": _texts(p.kinds),
        "models": _texts(p.models),
        "devices": _texts(p.devices),
        "regions": _texts(p.regions),
        "tee_classes": _texts(p.tee_classes),
        "max_leases": p.max_leases,
        "bonded": p.bonded,
        "unbonding": p.unbonding,
        "unbonding_until": p.unbonding_until,
        "jailed_until": p.jailed_until,
        "last_heartbeat_at": p.last_heartbeat_at,
        "bucket_tokens_mu": p.bucket_tokens_mu,
        "bucket_at": p.bucket_at,
        "strikes": p.strikes,
        "updated_at": p.updated_at,
        "unit_burst_mu": p.unit_burst_mu,
        "unit_rate_mu_per_day": p.unit_rate_mu_per_day,
    }


def provider_of(row: Row) -> Provider:
    """A provider from a row in PROVIDER_COLUMNS order."""
    r: NamedRow = dict(zip(PROVIDER_COLUMNS, row, strict=True))
    return Provider(
        provider_id=_b(r["provider_id"]),
        public_key=_b(r["public_key"]),
        status=ProviderStatus(_s(r["status"])),
        registered_at=_i(r["registered_at"]),
        kinds=_texts_of(r["kinds"]),
        models=_texts_of(r["models"]),
        devices=_texts_of(r["devices"]),
        regions=_texts_of(r["regions"]),
        tee_classes=_texts_of(r["tee_classes"]),
        max_leases=_i(r["max_leases"]),
        bonded=_i(r["bonded"]),
        unbonding=_i(r["unbonding"]),
        unbonding_until=_i(r["unbonding_until"]),
        jailed_until=_opt_i(r["jailed_until"]),
        last_heartbeat_at=_opt_i(r["last_heartbeat_at"]),
        bucket_tokens_mu=_i(r["bucket_tokens_mu"]),
        bucket_at=_i(r["bucket_at"]),
        strikes=_i(r["strikes"]),
        updated_at=_i(r["updated_at"]),
        unit_burst_mu=_i(r["unit_burst_mu"]),
        unit_rate_mu_per_day=_i(r["unit_rate_mu_per_day"]),
    )


def decision_params(d: DecisionRecord) -> dict[str, object]:
    return {"task_id": d.task_id, "attempt": d.attempt, "decision": d.decision, "winner": d.winner, "time": d.time}


def decision_of(r: Row) -> DecisionRecord:
    return DecisionRecord(task_id=_b(r[0]), attempt=_i(r[1]), decision=_b(r[2]), winner=_opt_b(r[3]), time=_i(r[4]))


def lease_params(x: LeaseRecord) -> dict[str, object]:
    return {
        "lease_id": x.lease_id,
        "task_id": x.task_id,
        "provider_id": x.provider_id,
        "attempt": x.attempt,
        "granted_at": x.granted_at,
        "expires_at": x.expires_at,
        "status": x.status.value,
        "epoch": x.epoch,
        "ended_at": x.ended_at,
        "grant_sig": x.grant_sig,
    }


def lease_of(r: Row) -> LeaseRecord:
    return LeaseRecord(
        lease_id=_b(r[0]),
        task_id=_b(r[1]),
        provider_id=_b(r[2]),
        attempt=_i(r[3]),
        granted_at=_i(r[4]),
        expires_at=_i(r[5]),
        status=LeaseStatus(_s(r[6])),
        epoch=_i(r[7]),
        ended_at=_opt_i(r[8]),
        grant_sig=_b(r[9]),
    )


def proof_params(p: ProofRecord) -> dict[str, object]:
    return {
        "proof_id": p.proof_id,
        "task_id": p.task_id,
        "lease_id": p.lease_id,
        "provider_id": p.provider_id,
        "kind": p.kind,
        "envelope": p.envelope,
        "received_at": p.received_at,
        "latency_ms": p.latency_ms,
        "verdict": p.verdict,
        "message": p.message,
        "acceptance": p.acceptance,
        "acceptance_sig": p.acceptance_sig,
        "units_mu": p.units_mu,
        "output_digest": p.output_digest,
        "qos": _qos(p.qos),
    }


def proof_of(r: Row) -> ProofRecord:
    return ProofRecord(
        proof_id=_b(r[0]),
        task_id=_b(r[1]),
        lease_id=_b(r[2]),
        provider_id=_b(r[3]),
        kind=_s(r[4]),
        envelope=_b(r[5]),
        received_at=_i(r[6]),
        latency_ms=_i(r[7]),
        verdict=_s(r[8]),
        message=_s(r[9]),
        acceptance=_b(r[10]),
        acceptance_sig=_b(r[11]),
        units_mu=_i(r[12]),
        output_digest=_b(r[13]),
        qos=_qos_of(r[14]),
    )


def result_params(x: ResultRecord) -> dict[str, object]:
    return {
        "task_id": x.task_id,
        "proof_id": x.proof_id,
        "kind": x.kind,
        "output_digest": x.output_digest,
        "units_mu": x.units_mu,
        "qos": _qos(x.qos),
        "block_height": x.height,
        "tx_index": x.tx_index,
        "miner_id": x.miner_id,
        "provider_id": x.provider_id,
    }


def result_of(r: Row) -> ResultRecord:
    return ResultRecord(
        task_id=_b(r[0]),
        proof_id=_b(r[1]),
        kind=_s(r[2]),
        output_digest=_b(r[3]),
        units_mu=_i(r[4]),
        qos=_qos_of(r[5]),
        height=_i(r[6]),
        tx_index=_i(r[7]),
        miner_id=_b(r[8]),
        provider_id=_b(r[9]),
    )


def batch_params(b: BatchRecord) -> dict[str, object]:
    return {
        "epoch": b.epoch,
        "finalized_height": b.finalized_height,
        "params_hash": b.params_hash,
        "price_bps": b.price_bps,
        "next_price_bps": b.next_price_bps,
        "root": b.root,
        "batch": b.batch,
        "payouts": b.payouts,
        "carried": b.carried,
        "reward": b.reward,
        "units_mu": b.units_mu,
        "treasury_before": b.treasury_before,
        "trap_seed": b.trap_seed,
        "time": b.time,
    }


def batch_of(r: Row) -> BatchRecord:
    return BatchRecord(
        epoch=_i(r[0]),
        finalized_height=_i(r[1]),
        params_hash=_b(r[2]),
        price_bps=_i(r[3]),
        next_price_bps=_i(r[4]),
        root=_b(r[5]),
        batch=_b(r[6]),
        payouts=_i(r[7]),
        carried=_i(r[8]),
        reward=_i(r[9]),
        units_mu=_i(r[10]),
        treasury_before=_i(r[11]),
        trap_seed=_b(r[12]),
        time=_i(r[13]),
    )


def payout_record(p: Payout, position: int) -> tuple[object, ...]:
    """(position, then the Payout fields in declaration order): the column order of the COPY into payouts."""
    return (position, *p)


def payout_params(p: Payout, position: int) -> dict[str, object]:
    return {"position": position, **p._asdict()}


def payout_of(r: Row) -> Payout:
    """From the Payout fields in declaration order (payout_id … params_hash)."""
    return Payout(
        payout_id=_b(r[0]),
        epoch=_i(r[1]),
        task_id=_b(r[2]),
        provider_id=_b(r[3]),
        miner_id=_b(r[4]),
        proof_id=_b(r[5]),
        units_mu=_i(r[6]),
        base_rate=_i(r[7]),
        price_bps=_i(r[8]),
        reward=_i(r[9]),
        provider=_i(r[10]),
        miner=_i(r[11]),
        fund=_i(r[12]),
        charged=_i(r[13]),
        params_hash=_b(r[14]),
    )


def slash_params(x: SlashRecord) -> dict[str, object]:
    return {
        "evidence_hash": x.evidence_hash,
        "provider_id": x.provider_id,
        "reason": x.reason,
        "subject": x.subject,
        "task_id": x.task_id,
        "amount": x.amount,
        "evidence": x.evidence,
        "time": x.time,
        "jailed_until": x.jailed_until,
    }


def slash_of(r: Row) -> SlashRecord:
    return SlashRecord(
        evidence_hash=_b(r[0]),
        provider_id=_b(r[1]),
        reason=_s(r[2]),
        subject=_b(r[3]),
        task_id=_b(r[4]),
        amount=_i(r[5]),
        evidence=_b(r[6]),
        time=_i(r[7]),
        jailed_until=_opt_i(r[8]),
    )


def event_of(r: Row) -> Event:
    return Event(seq=_i(r[0]), topic=_s(r[1]), data=_b(r[2]), time=_i(r[3]))


def as_int(v: object) -> int:
    return _i(v)


def as_bytes(v: object) -> bytes:
    return _b(v)


def as_str(v: object) -> str:
    return _s(v)


def trap_seed_params(x: TrapSeedRecord) -> dict[str, object]:
    return {
        "epoch": x.epoch,
        "commitment": x.commitment,
        "committed_at": x.committed_at,
        "committed_height": x.committed_height,
        "seed": x.seed,
        "revealed_at": x.revealed_at,
    }


def trap_seed_of(r: Row) -> TrapSeedRecord:
    return TrapSeedRecord(
        epoch=_i(r[0]),
        commitment=_b(r[1]),
        committed_at=_i(r[2]),
        committed_height=_i(r[3]),
        seed=_b(r[4]),
        revealed_at=_opt_i(r[5]),
    )


def trap_params(x: TrapRecord) -> dict[str, object]:
    return {
        "caller": x.caller,
        "n": x.n,
        "epoch": x.epoch,
        "model": x.model,
        "prompt": x.prompt,
        "max_tokens": x.max_tokens,
        "funded": x.funded,
        "created_at": x.created_at,
        "task_id": x.task_id,
        "log_hash": x.log_hash,
        "answer_digest": x.answer_digest,
        "revealed_at": x.revealed_at,
    }


def trap_of(r: Row) -> TrapRecord:
    return TrapRecord(
        caller=_b(r[0]),
        n=_i(r[1]),
        epoch=_i(r[2]),
        model=_s(r[3]),
        prompt=_b(r[4]),
        max_tokens=_i(r[5]),
        funded=_i(r[6]),
        created_at=_i(r[7]),
        task_id=_b(r[8]),
        log_hash=_b(r[9]),
        answer_digest=_b(r[10]),
        revealed_at=_opt_i(r[11]),
    )
