"""Coordinator defects the end-to-end run found, kept as regression tests now that they are fixed.

A rejected proof used to leave its lease LIVE (`Coordinator._end_attempt` skipped `tx.end_lease` for
LeaseEnd.REJECTED): the lease kept counting against the holder's max_leases, heartbeats extended it, and its
holder, even BANNED for the bad proof, could prove on it again after the task was re-leased to someone else.
"""

from service.test_coordinator import PARAMS, World, _key, _lease_of, signed_ai_envelope

from aicf.core.jobs import JobStatus
from aicf.core.leases import LeaseStatus


def _rejected_world() -> tuple[World, bytes, bytes, bytes]:
    """p1 proves a wrong digest on attempt 0; returns the world, p1, its old lease and the task."""
    w = World()
    w.mine(2)
    key, p1 = w.provider(1)
    w.enqueue(1)
    w.mine(7)
    w.coord.match()
    lid, task = _lease_of(w, p1)
    env = w.envelope(key, lid, task)
    env = signed_ai_envelope(key, task, lid, {**env["body"], "output": b"something else"})
    assert w.coord.submit_proof(env).code == "DIGEST_MISMATCH"
    return w, p1, lid, task


def test_rejected_proof_ends_its_lease() -> None:
    w, p1, lid, task = _rejected_world()
    assert w.job_status(task) is JobStatus.QUEUED
    with w.store.transaction() as tx:
        lease = tx.get_lease(lid)
        assert lease is not None
        assert lease.status is LeaseStatus.REJECTED
        assert tx.live_leases_of(p1) == []


def test_holder_of_a_rejected_lease_cannot_prove_after_the_task_is_re_leased() -> None:
    w, p1, lid, task = _rejected_world()
    w.provider(2)
    w.clock.advance(PARAMS.backoff_base_s + 1)
    w.mine(1)
    (decision,) = w.coord.match()
    assert decision.winner is not None
    assert decision.winner != p1
    outcome = w.coord.submit_proof(w.envelope(_key(1), lid, task, output=b"another answer"))
    assert outcome.dropped, outcome
    assert w.job_status(task) is JobStatus.LEASED
