"""Job states and the legal moves between them (SPEC §4), as one table a reviewer checks row by row."""

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from aicf.core.errors import IllegalTransitionError


class JobStatus(StrEnum):
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    LEASED = "LEASED"
    SUBMITTED = "SUBMITTED"
    VERIFIED = "VERIFIED"
    SETTLED = "SETTLED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


S = JobStatus
# SPEC §4, row by row. A status without a row is final. A reorg is not a transition: the coordinator
# restores the state at the fork point, so PENDING jobs of orphaned blocks vanish rather than move.
NEXT_STATUSES: Final[Mapping[JobStatus, frozenset[JobStatus]]] = {
    S.PENDING: frozenset({S.QUEUED}),  # the enqueue block becomes final
    S.QUEUED: frozenset({S.LEASED, S.CANCELLED}),  # assigned; cancelled or past its deadline
    S.LEASED: frozenset({S.QUEUED, S.FAILED, S.SUBMITTED}),  # expired/released with or without attempts; proof
    S.SUBMITTED: frozenset({S.VERIFIED, S.QUEUED, S.REJECTED}),  # proof verifies; fails with or without attempts
    S.VERIFIED: frozenset({S.SETTLED}),  # a settlement batch pays it
}
FINAL_STATUSES: Final[frozenset[JobStatus]] = frozenset(set(JobStatus) - set(NEXT_STATUSES))


def is_allowed(status: JobStatus, to: JobStatus) -> bool:
    return to in NEXT_STATUSES.get(status, frozenset())


def check_move(task_id: bytes, status: JobStatus, to: JobStatus) -> JobStatus:
    """The only gate a status change passes; raises IllegalTransitionError for a move not in the table."""
    if not is_allowed(status, to):
        raise IllegalTransitionError(task_id, status.value, to.value)
    return to


def after_attempt_ends(attempts_used: int, max_attempts: int) -> JobStatus:
    """A lease that ended without an accepted proof: requeue while attempts remain, else FAILED."""
    return S.QUEUED if attempts_used < max_attempts else S.FAILED


def after_rejected_proof(attempts_used: int, max_attempts: int) -> JobStatus:
    """A proof that failed verification: requeue while attempts remain, else REJECTED."""
    return S.QUEUED if attempts_used < max_attempts else S.REJECTED


def backoff_s(attempt: int, base_s: int, max_s: int) -> int:
    """After attempt `a` ends the job waits min(5 × 2^a, 300) s before it can be leased again (SPEC §7)."""
    return min(base_s * (1 << attempt), max_s)
