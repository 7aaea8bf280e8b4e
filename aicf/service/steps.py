"""Steps several use-cases share (issue 16: one place each): provider and lease lookups, the guarded provider
update, a lease that ends without an accepted proof, events, and sending an accepted proof to the chain."""

from collections.abc import Mapping

import cbor2

from aicf.core.chain import Job
from aicf.core.encoding import canonical_cbor
from aicf.core.jobs import JobStatus, check_move
from aicf.core.leases import Lease, LeaseEnd, end_attempt, lease_end_status
from aicf.core.merkle import merkle_root
from aicf.core.params import Params
from aicf.core.qos import window_slots
from aicf.core.records import LeaseRecord, ProofRecord, Provider
from aicf.core.registry import ProviderStatus
from aicf.proofs.envelope import ProofEnvelope, parse_envelope
from aicf.proofs.verdict import Reject, RejectCode
from aicf.service.context import Context, ProofSizeLimit, Work
from aicf.service.errors import JobMovedError, LeaseNotFoundError, ProviderChangedError, UnknownProviderError
from aicf.service.escrow import refund_escrow
from aicf.store.interface import Tx


def decode_request(job: Job) -> dict[str, object]:
    """The request map a job was enqueued with (its payload is the canonical CBOR of it)."""
    value = cbor2.loads(job.payload)
    return dict(value) if isinstance(value, dict) else {}


def as_int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def event(tx: Tx, topic: str, data: Mapping[str, object], time: int) -> int:
    return tx.append_event(topic, canonical_cbor(dict(data)), time)


def require_provider(tx: Tx, pid: bytes) -> Provider:
    provider = tx.get_provider(pid)
    if provider is None:
        raise UnknownProviderError(pid)
    return provider


def require_lease(tx: Tx, lid: bytes) -> LeaseRecord:
    lease = tx.get_lease(lid)
    if lease is None:
        raise LeaseNotFoundError(lid, "is unknown")
    return lease


def update_provider(tx: Tx, provider: Provider, expected: ProviderStatus) -> None:
    if not tx.update_provider(provider, expected):
        raise ProviderChangedError(provider.provider_id)


def core_lease(r: LeaseRecord) -> Lease:
    return Lease(
        lease_id=r.lease_id,
        task_id=r.task_id,
        provider_id=r.provider_id,
        attempt=r.attempt,
        granted_at=r.granted_at,
        expires_at=r.expires_at,
        status=r.status,
    )


def heartbeat_root(tx: Tx, provider: Provider, now: int, params: Params) -> bytes:
    """The Merkle root of the provider's live heartbeat slots in its QoS window (MISSED_LEASE evidence)."""
    first, last = window_slots(now, provider.registered_at, params)
    return merkle_root(slot.to_bytes(8, "big") for slot in tx.heartbeat_slots(provider.provider_id, first, last))


def end_lease(w: Work, lease: LeaseRecord, how: LeaseEnd) -> None:
    job = w.tx.get_job(lease.task_id)
    if job is None:
        raise LeaseNotFoundError(lease.lease_id, "has no job")
    end_lease_attempt(w, job, lease, how, w.now)


def end_lease_attempt(w: Work, job: Job, lease: LeaseRecord, how: LeaseEnd, ended_at: int) -> None:
    """The lease ends without an accepted proof: requeue with backoff, or FAILED/REJECTED with a refund;
    a cancel or deadline that arrived meanwhile takes effect now (LEASED → QUEUED → CANCELLED)."""
    tx = w.tx
    outcome = end_attempt(core_lease(lease), how, ended_at, w.params)
    # Every end closes the lease, a rejected proof's included: a lease left LIVE would count against its
    # holder's max_leases, be extended by heartbeats, and accept a second proof after the task moved on.
    tx.end_lease(lease.lease_id, lease_end_status(how), ended_at)
    check_move(job.task_id, job.status, outcome.status)
    if not tx.move_job(job.task_id, job.status, outcome.status, f"lease {how.value.lower()}", None, ended_at):
        raise JobMovedError(job.task_id)
    tx.set_job_schedule(job.task_id, outcome.attempts_used, outcome.not_before)
    if outcome.status in (JobStatus.FAILED, JobStatus.REJECTED):
        refund_escrow(tx, job, outcome.status.value.lower(), None, ended_at)
        return
    final = tx.get_meta("final_height")
    past_deadline = final is not None and job.deadline_height <= final
    if job.cancel_requested or past_deadline:
        check_move(job.task_id, JobStatus.QUEUED, JobStatus.CANCELLED)
        tx.move_job(job.task_id, JobStatus.QUEUED, JobStatus.CANCELLED, "cancelled after lease", None, ended_at)
        refund_escrow(tx, job, "refund", None, ended_at)


def parse_for_chain(ctx: Context, raw: Mapping[str, object]) -> ProofEnvelope | Reject:
    """`parse_envelope`, then the chain's own size bound: a body this chain could never include is MALFORMED
    here (dropped, no attempt used, SPEC §8) rather than accepted and never paid (docs/EVM.md)."""
    env = parse_envelope(raw)
    writer = ctx.chain_writer
    if isinstance(env, Reject) or not isinstance(writer, ProofSizeLimit):
        return env
    size = len(canonical_cbor(env.body))
    cap = writer.max_proof_body_bytes
    if size > cap:
        return Reject(
            code=RejectCode.MALFORMED,
            message=f"envelope.body: {size} bytes exceeds {cap}, the most this chain can include in a transaction",
        )
    return env


def send_inclusion(ctx: Context, record: ProofRecord) -> None:
    """The accepted envelope and the signed acceptance, as one transaction for the chain (SPEC §8)."""
    if ctx.chain_writer is None:
        return
    ctx.chain_writer.include_proof(
        {
            "task_id": record.task_id,
            "proof_id": record.proof_id,
            "provider_id": record.provider_id,
            "envelope": record.envelope,
            "acc": record.acceptance,
            "acc_sig": record.acceptance_sig,
        }
    )
