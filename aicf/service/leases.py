"""Heartbeats and leases (SPEC §7): a provider's heartbeat, the work of its live leases, and a release."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from aicf.core.chain import Job
from aicf.core.leases import LeaseEnd, LeaseStatus
from aicf.core.records import LeaseRecord
from aicf.core.registry import ProviderStatus
from aicf.proofs.quantum import QuantumBatch
from aicf.service.context import Context, unit_of_work
from aicf.service.errors import LeaseNotFoundError, NotLeaseHolderError, ProviderBannedError, UnknownProviderError
from aicf.service.outages import credit_outage
from aicf.service.steps import decode_request, end_lease, require_lease, require_provider

MAX_CACHED_BATCH_BYTES = 64 << 20  # the circuits of the quantum trap batches kept for aicf.nextLease


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseWork:
    """A live lease with what its holder needs to run it."""

    lease: LeaseRecord
    job: Job
    request: Mapping[str, object]  # the decoded request map (prompt or circuit inside)
    batch: tuple[bytes, ...] = ()  # quantum: the circuits to run, job and traps shuffled (SPEC §8)
    batch_shots: tuple[int, ...] = ()


def heartbeat(ctx: Context, pid: bytes, lease_ids: Sequence[bytes] = ()) -> list[LeaseRecord]:
    """Mark this slot live and extend every live lease of the provider to now + TTL.

    `lease_ids`, the leases the provider says it is working on, are checked first: one that is unknown,
    held by another provider, or no longer live (ended, or past its expiry) refuses the whole heartbeat
    with LeaseNotFoundError or NotLeaseHolderError, and nothing is written."""
    params = ctx.params
    with unit_of_work(ctx) as w:
        tx, now = w.tx, w.now
        if require_provider(tx, pid).status is ProviderStatus.BANNED:
            raise ProviderBannedError(pid, "heartbeat")
        credit_outage(w, record_pass=False)  # a lease the outage would have expired is still live (issue 15)
        for lid in lease_ids:
            lease = require_lease(tx, lid)
            if lease.provider_id != pid:
                raise NotLeaseHolderError(lid, pid)
            if lease.status is not LeaseStatus.LIVE:
                raise LeaseNotFoundError(lid, f"is {lease.status.value}, not live")
            if lease.expires_at <= now:
                raise LeaseNotFoundError(lid, f"expired at {lease.expires_at} (now {now}); its job is requeued")
        leases = tx.record_heartbeat(pid, now // params.heartbeat_interval_s, now, now + params.lease_ttl_s)
        if leases is None:
            raise UnknownProviderError(pid)
        w.commit()
    return leases


def leases_for(ctx: Context, pid: bytes) -> list[LeaseWork]:
    """The provider's live leases with what it needs to run them (aicf.nextLease)."""
    with unit_of_work(ctx) as w:
        tx, now = w.tx, w.now
        if require_provider(tx, pid).status is ProviderStatus.BANNED:
            raise ProviderBannedError(pid, "leases")
        work: list[LeaseWork] = []
        for lease in tx.live_leases_of(pid):
            if lease.expires_at <= now:
                continue
            job = tx.get_job(lease.task_id)
            if job is None:
                continue
            request = decode_request(job)
            if job.kind == "quantum":
                circuit, shots = request.get("circuit"), request.get("shots")
                if isinstance(circuit, bytes) and isinstance(shots, int):
                    batch = batch_of(ctx, lease, job, circuit, shots)
                    work.append(
                        LeaseWork(lease=lease, job=job, request=request, batch=batch.circuits, batch_shots=batch.shots)
                    )
                    continue
            work.append(LeaseWork(lease=lease, job=job, request=request))
    return work


def batch_of(ctx: Context, lease: LeaseRecord, job: Job, circuit: bytes, shots: int) -> QuantumBatch:
    """The lease's trap batch: derived from the lease's epoch seed and the task, so the same on every call."""
    caches = ctx.caches
    with caches.batches_lock:
        found = caches.batches.get(lease.lease_id)
    if found is not None:
        return found
    built = ctx.derive_batch(circuit, shots, ctx.trap_seed(lease.epoch), job.task_id, ctx.params)
    with caches.batches_lock:
        if lease.lease_id not in caches.batches:
            caches.batches[lease.lease_id] = built
            caches.batch_bytes += _batch_size(built)
        while caches.batch_bytes > MAX_CACHED_BATCH_BYTES and len(caches.batches) > 1:
            caches.batch_bytes -= _batch_size(caches.batches.popitem(last=False)[1])
    return built


def release(ctx: Context, pid: bytes, lid: bytes) -> LeaseRecord:
    """The holder hands a lease back: it is excluded for the task, with no strike (SPEC §7)."""
    with unit_of_work(ctx) as w:
        tx, now = w.tx, w.now
        lease = require_lease(tx, lid)
        if lease.provider_id != pid:
            raise NotLeaseHolderError(lid, pid)
        if lease.status is not LeaseStatus.LIVE or lease.expires_at <= now:
            raise LeaseNotFoundError(lid, f"is {lease.status.value}, not live")
        end_lease(w, lease, LeaseEnd.RELEASED)
        w.commit()
    return replace(lease, status=LeaseStatus.RELEASED, ended_at=now)


def _batch_size(batch: QuantumBatch) -> int:
    return sum(len(c) for c in batch.circuits) + 64 * len(batch.circuits)
