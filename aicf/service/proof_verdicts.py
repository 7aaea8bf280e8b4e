"""A proof's verdict (SPEC §8), written in the submission's unit of work (aicf.service.proofs): the accepted
record with its signed acceptance, units and QoS multipliers; a rejection with its lease attempt ended and the
slash its code earns; the answer a submitter gets, and AI pay limited to the runtime observed."""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from aicf.core.chain import Job
from aicf.core.encoding import canonical_cbor
from aicf.core.jobs import JobStatus
from aicf.core.leases import LeaseEnd
from aicf.core.outages import Outage
from aicf.core.pricing import ai_units, availability_multiplier_bps, latency_bps
from aicf.core.qos import availability_bps, p95_ms, window_slots
from aicf.core.records import LeaseRecord, ProofRecord, Provider
from aicf.core.slashing import SlashReason, slash_evidence
from aicf.proofs.ai_v1 import check_runtime_claim
from aicf.proofs.envelope import Acceptance, ProofEnvelope, sign_acceptance
from aicf.proofs.verdict import Reject
from aicf.service.context import Context, Work
from aicf.service.slashing import slash
from aicf.service.steps import as_int, end_lease_attempt
from aicf.service.verifier import BodyAccepted
from aicf.store.interface import ProofContext

log = logging.getLogger("aicf.coordinator")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProofOutcome:
    proof_id: bytes
    accepted: bool
    code: str  # "ACCEPT" or the reject code
    message: str
    units_mu: int = 0
    slashed: int = 0
    dropped: bool = False  # a drop changed no state at all


def accepted_record(
    ctx: Context,
    env: ProofEnvelope,
    job: Job,
    provider: Provider,
    body: BodyAccepted,
    received: ProofRecord,
    now: int,
    pc: ProofContext,
    outages: Sequence[Outage] = (),
) -> ProofRecord:
    """The proof's record with its signed acceptance: units from the body, QoS from the provider's window."""
    params = ctx.params
    lat = latency_bps(p95_ms([*pc.latencies, received.latency_ms]), params)
    first, last = window_slots(now, provider.registered_at, params)
    slots = [s for s in pc.slots if first <= s <= last]
    interval = params.heartbeat_interval_s
    availability = availability_bps((s * interval for s in slots), now, provider.registered_at, params, outages)
    avail = availability_multiplier_bps(availability, params)
    if body.units_mu is not None:
        units = min(body.units_mu, job.max_units_mu)
    else:
        weight = params.weight_milli(job.model) or 0
        units = min(ai_units(body.runtime_ms, weight, lat, avail), job.max_units_mu)
    acc = Acceptance(proof_id=env.proof_id, units_mu=units, lat_bps=lat, avail_bps=avail, accepted_at=now)
    sig = sign_acceptance(ctx.operator_key, acc)
    return replace(
        received,
        verdict="ACCEPT",
        acceptance=canonical_cbor(acc.to_map()),
        acceptance_sig=sig,
        units_mu=units,
        output_digest=body.output_digest,
        qos={"runtime_ms": body.runtime_ms, "tokens": body.tokens, "quality_bps": body.quality_bps},
    )


def reject_proof(
    w: Work,
    env: ProofEnvelope,
    job: Job,
    lease: LeaseRecord,
    provider: Provider,
    verdict: Reject,
    received: ProofRecord,
    height: int,
    *,
    reference: bytes | None = None,
) -> ProofOutcome:
    w.tx.insert_proof(replace(received, verdict=verdict.code.value, message=verdict.message))
    submitted = replace(job, status=JobStatus.SUBMITTED)
    end_lease_attempt(w, submitted, lease, LeaseEnd.REJECTED, w.now)
    slashed = 0
    reason = verdict.slash_reason
    if reason is not None:
        evidence = slash_evidence(
            reason=SlashReason(reason),
            task_id=env.task_id,
            subject_kind="proof_id",
            subject_id=env.proof_id,
            record=env.to_map(),
            height=height,
            reference_output=reference,
        )
        slashed = slash(w, provider, SlashReason(reason), env.task_id, env.proof_id, evidence)
    log.info("proof 0x%s rejected: %s", env.proof_id.hex()[:12], verdict.code.value)
    return ProofOutcome(
        proof_id=env.proof_id, accepted=False, code=verdict.code.value, message=verdict.message, slashed=slashed
    )


def outcome_of(record: ProofRecord) -> ProofOutcome:
    return ProofOutcome(
        proof_id=record.proof_id,
        accepted=record.verdict == "ACCEPT",
        code=record.verdict,
        message=record.message or ("accepted" if record.verdict == "ACCEPT" else record.verdict),
        units_mu=record.units_mu,
    )


def measured_runtime(env: ProofEnvelope, body: BodyAccepted, observed_ms: int) -> BodyAccepted | Reject:
    """AI pay follows min(claimed runtime_ms, the ms observed from lease grant to proof receipt); a claim above
    the observed span plus RUNTIME_SLACK_MS is refused (docs/DECISIONS.md)."""
    qos = env.body.get("qos")
    claimed = as_int(qos.get("runtime_ms")) if isinstance(qos, Mapping) else 0  # the verifier checked its shape
    refused = check_runtime_claim(claimed, observed_ms)
    if refused is not None:
        return refused
    return replace(body, runtime_ms=min(body.runtime_ms, observed_ms))
