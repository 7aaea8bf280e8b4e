"""Leases and what happens when they end (SPEC §7). Time is always an argument.

A lease lives from `granted_at` to `expires_at`; a heartbeat from its holder (per provider, every interval)
extends every live lease of that provider to `now + lease_ttl_s`. A proof received at or after `expires_at`
gets LEASE_EXPIRED. When an attempt ends without an accepted proof the job requeues with a backoff of
`min(5 × 2^a, 300)` s while attempts remain, and fails otherwise.
"""

from dataclasses import dataclass, replace
from enum import StrEnum

from aicf.core.ids import lease_id
from aicf.core.jobs import JobStatus, after_attempt_ends, after_rejected_proof, backoff_s
from aicf.core.params import Params


class LeaseStatus(StrEnum):
    LIVE = "LIVE"
    PROVED = "PROVED"  # the holder's envelope was accepted
    EXPIRED = "EXPIRED"  # a strike and a MISSED_LEASE slash
    RELEASED = "RELEASED"  # handed back: the provider is excluded for the task, no strike
    REVOKED = "REVOKED"  # jailing revoked it; the attempt is not used up
    REJECTED = "REJECTED"  # the holder's proof failed verification


class LeaseEnd(StrEnum):
    EXPIRED = "EXPIRED"
    RELEASED = "RELEASED"
    REVOKED = "REVOKED"
    REJECTED = "REJECTED"  # the proof failed verification


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    lease_id: bytes
    task_id: bytes
    provider_id: bytes
    attempt: int
    granted_at: int
    expires_at: int
    status: LeaseStatus = LeaseStatus.LIVE


def grant(task_id: bytes, provider_id: bytes, attempt: int, now: int, params: Params) -> Lease:
    return Lease(
        lease_id=lease_id(task_id, provider_id, attempt),
        task_id=task_id,
        provider_id=provider_id,
        attempt=attempt,
        granted_at=now,
        expires_at=now + params.lease_ttl_s,
    )


def is_live(lease: Lease, now: int) -> bool:
    """Live until `expires_at`, exclusive: a proof at or after expiry is LEASE_EXPIRED (SPEC §7)."""
    return lease.status is LeaseStatus.LIVE and now < lease.expires_at


def extend(lease: Lease, now: int, params: Params) -> Lease:
    """A heartbeat extends a live lease to now + TTL; it never shortens one nor revives a dead one."""
    if not is_live(lease, now):
        return lease
    return replace(lease, expires_at=max(lease.expires_at, now + params.lease_ttl_s))


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptOutcome:
    """Where the job goes after a lease ends without an accepted proof."""

    status: JobStatus  # QUEUED or FAILED (REJECTED after a failed proof with no attempts left)
    attempts_used: int
    not_before: int  # earliest time the job may be leased again
    strike: bool
    exclude_provider: bool


def end_attempt(lease: Lease, how: LeaseEnd, ended_at: int, params: Params) -> AttemptOutcome:
    """The outcome of attempt `lease.attempt` ending at `ended_at` (SPEC §4, §7).

    A revoked lease (jail) does not use its attempt; every other end does.
    """
    used = lease.attempt if how is LeaseEnd.REVOKED else lease.attempt + 1
    if how is LeaseEnd.REJECTED:
        status = after_rejected_proof(used, params.max_attempts)
    else:
        status = after_attempt_ends(used, params.max_attempts)
    delay = 0 if how is LeaseEnd.REVOKED else backoff_s(lease.attempt, params.backoff_base_s, params.backoff_max_s)
    return AttemptOutcome(
        status=status,
        attempts_used=used,
        not_before=ended_at + delay,
        strike=how is LeaseEnd.EXPIRED,
        exclude_provider=how is LeaseEnd.RELEASED,
    )


def lease_end_status(how: LeaseEnd) -> LeaseStatus:
    return {
        LeaseEnd.EXPIRED: LeaseStatus.EXPIRED,
        LeaseEnd.RELEASED: LeaseStatus.RELEASED,
        LeaseEnd.REVOKED: LeaseStatus.REVOKED,
        LeaseEnd.REJECTED: LeaseStatus.REJECTED,
    }[how]
