"""Found by the chaos kill loop (issue 15, docs/RELIABILITY.md): a job whose lease was revoked by its provider's
jail goes back to QUEUED at the same attempt (SPEC §7: a revoke uses no attempt), and the lease id
H(task, provider, attempt) of that provider was taken, so the matcher excluded it for that attempt. When it was
the only eligible provider the job waited until its deadline: in the kill loop one job stayed QUEUED for minutes
after the jail ended, its provider ACTIVE and idle. Now the attempt is granted again on the revoked lease's row.
On SQLite and on PostgreSQL (each dialect has its own lease grant statement)."""

from pathlib import Path

import pytest
from store.backends import open_test_store

from aicf.core.jobs import JobStatus
from aicf.core.leases import LeaseStatus
from aicf.core.params import params_from_mapping
from aicf.service.audit import verify
from service.test_coordinator import PARAMS as BASE
from service.test_coordinator import World

JAIL_S = {"MISSED_LEASE": 60, "BAD_ATTESTATION": 86400, "TRAP_FAILURE": 86400, "QOS_CHRONIC": 21600, "FRAUD": 0}
PARAMS = params_from_mapping(
    {"min_availability_bps": 0, "jail_s": JAIL_S, "bucket_burst_factor": 1_000_000, "lease_ttl_s": 300}, base=BASE
)


def _run(world: World, blocks: int) -> None:
    """Time passes block by block (10 s each), the coordinator sweeping after each: no outage is credited."""
    for _ in range(blocks):
        world.mine(1)
        world.coord.sweep()


@pytest.mark.parametrize("backend", ["sqlite-memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_job_revoked_by_its_only_providers_jail_is_leased_again_once_the_jail_is_over(
    backend: str, tmp_path: Path
) -> None:
    with open_test_store(backend, tmp_path) as store:
        _revoked_then_leased_again(World(params=PARAMS, store=store))


def _revoked_then_leased_again(world: World) -> None:
    world.mine(2)
    _, pid = world.provider(1)
    world.enqueue(1)
    _run(world, 7)
    world.coord.match()
    world.live.remove(pid)  # it stops heartbeating after the next one: the first lease will run out
    world.enqueue(1)
    _run(world, 7)
    world.coord.heartbeat(pid)  # its last heartbeat: the first lease now ends at this instant + the TTL
    _run(world, 1)
    world.coord.match()  # the second lease, granted a block later, ends 10 s after the first
    with world.store.transaction() as tx:
        first, second = sorted(
            (x for x in tx.snapshot().leases if x.status is LeaseStatus.LIVE), key=lambda x: x.expires_at
        )
    assert second.expires_at > first.expires_at
    _run(world, (first.expires_at - world.clock.now()) // 10 + 1)  # the first expires: MISSED_LEASE, jailed,
    assert world.job_status(first.task_id) is JobStatus.QUEUED  # and the second lease revoked
    assert world.job_status(second.task_id) is JobStatus.QUEUED
    world.live.append(pid)
    _run(world, JAIL_S["MISSED_LEASE"] // 10 + 4)  # the jail is over (and the first job's backoff); heartbeats
    world.coord.match()
    assert world.job_status(first.task_id) is JobStatus.LEASED  # the expired one: a new attempt, leased again
    assert world.job_status(second.task_id) is JobStatus.LEASED  # the revoked one: the same attempt again
    with world.store.transaction() as tx:
        again = tx.get_lease(second.lease_id)
        job = tx.get_job(second.task_id)
    assert again is not None
    assert job is not None
    assert job.attempts == 0  # the revoke used no attempt
    assert (again.status, again.provider_id, again.attempt) == (LeaseStatus.LIVE, pid, 0)
    assert again.granted_at > second.granted_at  # a new grant on the same row
    assert again.grant_sig != second.grant_sig
    assert verify(world.store).ok
