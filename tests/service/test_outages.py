"""Issue 15: downtime is the operator's fault, not the providers'. A coordinator that could not act (stopped,
killed, its database unreachable or full) credits the gap on its first pass back: live leases outlive it, no
one is slashed for it and availability does not count it; a real miss after the restart is still slashed."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from store.backends import memory_store

from aicf.core.jobs import JobStatus
from aicf.core.leases import LeaseStatus
from aicf.core.outages import OUTAGE_THRESHOLD_S, Outage
from aicf.service import reads
from aicf.service.audit import verify
from aicf.store.interface import Store, StoreUnavailableError, Tx
from service.test_coordinator import PARAMS, World, _key, _lease_of


@pytest.fixture
def world() -> World:
    w = World()
    w.mine(2)
    return w


def _running(world: World, seconds: int, heartbeat: bytes | None = None) -> None:
    """The coordinator passing every few seconds for `seconds` (no outage); `heartbeat`'s provider heartbeats."""
    for _ in range(seconds // 5):
        world.clock.advance(5)
        if heartbeat is not None and world.clock.now() % PARAMS.heartbeat_interval_s < 5:
            world.coord.heartbeat(heartbeat)
        world.coord.sweep()


def _leased(world: World) -> tuple[bytes, bytes, bytes]:
    _, pid = world.provider(1)
    world.enqueue(1, runtime_ms=60_000)
    world.mine(7)
    world.coord.match()
    lid, task = _lease_of(world, pid)
    world.coord.sweep()  # a pass: the coordinator is acting
    return pid, lid, task


def _lease(world: World, lid: bytes) -> tuple[LeaseStatus, int]:
    with world.store.transaction() as tx:
        lease = tx.get_lease(lid)
    assert lease is not None
    return lease.status, lease.expires_at


def _slashes(world: World, pid: bytes) -> list[str]:
    with world.store.transaction() as tx:
        return [s.reason for s in tx.slashes_of(pid)]


def test_a_lease_alive_at_the_stop_and_past_its_ttl_at_the_restart_is_not_slashed_and_can_be_proved(
    world: World,
) -> None:
    pid, lid, task = _leased(world)
    _, expires = _lease(world, lid)
    stopped = world.clock.now()
    world.clock.advance(PARAMS.lease_ttl_s + 600)  # down for eleven minutes, the lease's TTL long past
    report = world.coord.sweep()  # the first pass back
    assert report.expired == 0
    assert _lease(world, lid) == (LeaseStatus.LIVE, expires + world.clock.now() - stopped)
    assert _slashes(world, pid) == []
    outcome = world.coord.submit_proof(world.envelope(_key(1), lid, task))
    assert outcome.accepted, outcome
    assert world.job_status(task) is JobStatus.SUBMITTED
    status = reads.status(world.store, world.clock.now(), PARAMS)
    assert status.outages == (Outage(stopped, world.clock.now()),)
    assert verify(world.store).ok


def test_a_proof_that_arrives_before_the_first_pass_back_is_credited_too(world: World) -> None:
    pid, lid, task = _leased(world)
    world.clock.advance(PARAMS.lease_ttl_s + 120)
    outcome = world.coord.submit_proof(world.envelope(_key(1), lid, task))  # no sweep yet
    assert outcome.accepted, outcome
    assert world.coord.sweep().expired == 0
    assert _slashes(world, pid) == []


def test_a_group_of_proofs_before_the_first_pass_back_credits_the_outage_once_and_all_are_accepted(
    world: World,
) -> None:
    pids = {world.provider(seed)[1]: seed for seed in (1, 2, 3)}
    world.enqueue(3, runtime_ms=60_000)
    world.mine(7)
    world.coord.match()
    envs = []
    for pid, seed in pids.items():
        envs += [world.envelope(_key(seed), x.lease_id, x.task_id) for x in world.coord.heartbeat(pid)]
    assert len(envs) == 3
    world.coord.sweep()
    stopped = world.clock.now()
    world.clock.advance(PARAMS.lease_ttl_s + 120)  # the leases' TTL passed while the coordinator was down
    outcomes = world.coord.submit_proofs(envs)  # one transaction, no sweep yet
    assert [getattr(o, "accepted", None) for o in outcomes] == [True, True, True], outcomes
    status = reads.status(world.store, world.clock.now(), PARAMS)
    assert status.outages == (Outage(stopped, world.clock.now()),)
    assert world.coord.sweep().expired == 0
    assert all(_slashes(world, pid) == [] for pid in pids)
    assert verify(world.store).ok


def test_a_heartbeat_that_arrives_before_the_first_pass_back_keeps_its_lease(world: World) -> None:
    pid, lid, _ = _leased(world)
    world.clock.advance(PARAMS.lease_ttl_s + 120)
    assert [lease.lease_id for lease in world.coord.heartbeat(pid, [lid])] == [lid]
    assert world.coord.sweep().expired == 0
    assert _slashes(world, pid) == []


def test_a_real_miss_after_the_restart_is_still_slashed(world: World) -> None:
    pid, lid, _ = _leased(world)
    _, expires = _lease(world, lid)
    world.clock.advance(300)  # an outage of 300 s: the lease is credited 300 s, not more
    assert world.coord.sweep().expired == 0
    assert _lease(world, lid) == (LeaseStatus.LIVE, expires + 300)
    _running(world, PARAMS.lease_ttl_s)  # the coordinator is back, the provider never heartbeats again
    assert _lease(world, lid)[0] is LeaseStatus.EXPIRED
    assert _slashes(world, pid) == ["MISSED_LEASE"]


def test_a_short_stall_is_not_credited(world: World) -> None:
    _, lid, _ = _leased(world)
    _, expires = _lease(world, lid)
    world.clock.advance(OUTAGE_THRESHOLD_S)
    world.coord.sweep()
    assert _lease(world, lid) == (LeaseStatus.LIVE, expires)
    assert reads.status(world.store, world.clock.now(), PARAMS).outages == ()


def test_a_provider_silent_during_the_outage_is_not_marked_unavailable(world: World) -> None:
    _, pid = world.provider(1)
    world.live.remove(pid)
    _running(world, PARAMS.qos_window_s, heartbeat=pid)  # an hour of on-time heartbeats
    view = reads.get_provider(world.store, pid, world.clock.now(), PARAMS)
    assert view is not None
    assert view.availability_bps == 10_000
    world.clock.advance(900)  # fifteen minutes down: a quarter of the QoS window without a heartbeat
    world.coord.sweep()
    world.coord.heartbeat(pid)
    view = reads.get_provider(world.store, pid, world.clock.now(), PARAMS)
    assert view is not None
    assert view.availability_bps == 10_000
    world.enqueue(1)
    world.mine(7)  # the provider is still eligible: fresh enough and available enough to be matched
    (decision,) = world.coord.match()
    assert decision.winner == pid


class _Unreachable:
    """The store behind the coordinator, unreachable (or full) while `down` is set: every transaction fails
    before it writes, as a database that refuses connections or writes does."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.down = False

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        if self.down:
            raise StoreUnavailableError("the SQLite database x is full (disk full)", "nothing was written")
        with self._store.transaction() as tx:
            yield tx

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def test_passes_that_fail_on_an_unreachable_database_are_credited_on_recovery() -> None:
    flaky = _Unreachable(memory_store())
    world = World(store=flaky)  # type: ignore[arg-type]
    world.mine(2)
    pid, lid, task = _leased(world)
    _, expires = _lease(world, lid)
    stopped = world.clock.now()
    flaky.down = True
    for _ in range(30):  # a pass a second for 30 s: every one fails, the gap grows
        world.clock.advance(PARAMS.lease_ttl_s // 30 * 2)
        with pytest.raises(StoreUnavailableError):
            world.coord.sweep()
    flaky.down = False
    gap = world.clock.now() - stopped
    assert gap > PARAMS.lease_ttl_s
    assert world.coord.sweep().expired == 0
    assert _lease(world, lid) == (LeaseStatus.LIVE, expires + gap)
    assert _slashes(world, pid) == []
    assert world.coord.submit_proof(world.envelope(_key(1), lid, task)).accepted
