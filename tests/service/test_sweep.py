"""The sweep's provider duties (SPEC §7, §9): jails that end, unbonded stake released, and QOS_CHRONIC judged
once per QoS window (a provider's verdict only changes when a window completes), on SQLite :memory:."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, cast

import pytest
from store.backends import memory_store

from aicf.core.encoding import tagged_hash
from aicf.core.ledger import provider_account
from aicf.core.params import params_from_mapping
from aicf.core.registry import ProviderStatus
from aicf.service.audit import verify
from aicf.service.coordinator import QOS_WINDOW_TAG
from aicf.store.interface import META_GENESIS_TIME, Store, StoreUnavailableError, Tx
from service.test_coordinator import PARAMS, World

NEVER_CHRONIC = params_from_mapping({"epoch_seconds": 120, "gamma_units": 1000, "min_availability_bps": 0})
WINDOW = PARAMS.qos_window_s


class _WatchedStore:
    """A store that records each bulk heartbeat read (the providers judged) and can fail the next commits."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.judged: list[list[bytes]] = []
        self.failing_commits = 0

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._store.transaction() as tx:
            yield cast(Tx, _WatchedTx(tx, self))

    def close(self) -> None:
        self._store.close()


class _WatchedTx:
    def __init__(self, tx: Tx, store: _WatchedStore) -> None:
        self._tx, self._store = tx, store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def heartbeat_slots_of(self, provider_ids: Sequence[bytes], first: int, last: int) -> dict[bytes, list[int]]:
        self._store.judged.append(list(provider_ids))
        return self._tx.heartbeat_slots_of(provider_ids, first, last)

    def commit(self) -> None:
        if self._store.failing_commits:
            self._store.failing_commits -= 1
            raise StoreUnavailableError("the disk is full", "nothing was written")
        self._tx.commit()


def _world(params: Any = PARAMS, store: Store | None = None) -> World:
    world = World(params=params, store=store if store is not None else memory_store())
    world.mine(2)
    return world


def _genesis(world: World) -> int:
    with world.store.transaction() as tx:
        genesis = tx.get_meta(META_GENESIS_TIME)
    assert genesis is not None
    return genesis


def _jail(world: World, pid: bytes, until: int) -> None:
    """Jail the provider until `until` (0: for ever), as a slash of another reason would."""
    with world.store.transaction() as tx:
        provider = tx.get_provider(pid)
        assert provider is not None
        assert tx.update_provider(replace(provider, status=ProviderStatus.JAILED, jailed_until=until), provider.status)
        tx.record_provider_move(pid, provider.status, ProviderStatus.JAILED, "jailed by the test", world.clock.now())
        tx.commit()


def _reasons(world: World, pid: bytes) -> list[str]:
    with world.store.transaction() as tx:
        return [s.reason for s in tx.slashes_of(pid)]


def test_sweep_ends_jails_that_are_over_and_releases_stake_whose_unbonding_is_over() -> None:
    world = _world(NEVER_CHRONIC)
    _, jailed = world.provider(1)
    _, leaving = world.provider(2)
    _, forever = world.provider(3)
    start = world.clock.now()
    _jail(world, jailed, start + 100)
    _jail(world, forever, 0)
    world.coord.withdraw_stake(leaving, 400_000)
    world.clock.set(start + 99)
    report = world.coord.sweep()
    assert (report.unjailed, report.released_stake) == (0, 0)
    world.clock.set(start + 100)
    assert world.coord.sweep().unjailed == 1
    with world.store.transaction() as tx:
        provider = tx.get_provider(jailed)
        moves = [(m.frm, m.to, m.reason) for m in tx.snapshot().provider_moves if m.provider_id == jailed]
    assert provider is not None
    assert (provider.status, provider.jailed_until) == (ProviderStatus.ACTIVE, None)
    assert moves[-1] == (ProviderStatus.JAILED, ProviderStatus.ACTIVE, "jail ended")
    world.clock.set(start + world.params.unbonding_s - 1)
    assert world.coord.sweep().released_stake == 0
    world.clock.set(start + world.params.unbonding_s)
    report = world.coord.sweep()
    assert (report.unjailed, report.released_stake) == (0, 400_000)
    assert world.balance(provider_account(leaving)) == 400_000
    assert world.coord.sweep().released_stake == 0  # released once
    with world.store.transaction() as tx:
        assert [p.unbonding for p in (tx.get_provider(leaving),) if p is not None] == [0]
        banned = tx.get_provider(forever)
    assert banned is not None
    assert (banned.status, banned.jailed_until) == (ProviderStatus.JAILED, 0), "a jail for ever never ends"
    assert verify(world.store).ok


def test_sweep_evaluates_chronic_qos_once_per_window() -> None:
    store = _WatchedStore(memory_store())
    world = _world(NEVER_CHRONIC, cast(Store, store))
    _, first = world.provider(1)
    _, second = world.provider(2)
    in_window_4 = _genesis(world) + 4 * WINDOW + 10  # windows 1 to 3 are complete and after both registrations
    world.clock.set(in_window_4)
    world.provider(3)  # registered in window 4: not judged on windows before it
    store.judged.clear()
    world.coord.sweep()
    assert store.judged == [sorted([first, second])], "both, in one read"
    for _ in range(3):  # the rest of window 4: their verdict cannot change
        world.clock.advance(WINDOW // 4)
        world.coord.sweep()
    assert store.judged == [sorted([first, second])]
    world.clock.set(in_window_4 + WINDOW)  # window 5 began: 2 to 4 complete, the third provider's 4 is not
    world.coord.sweep()
    world.coord.sweep()
    assert store.judged == [sorted([first, second])] * 2


def test_a_provider_jailed_when_the_window_began_is_judged_once_its_jail_ends_in_that_window() -> None:
    world = _world()
    _, pid = world.provider(1)
    world.live.remove(pid)  # no heartbeat after its first: every complete window is below the minimum
    window_4 = _genesis(world) + 4 * WINDOW
    world.clock.set(window_4)
    _jail(world, pid, window_4 + WINDOW // 2)
    assert world.coord.sweep().unjailed == 0
    assert _reasons(world, pid) == [], "a jailed provider is not judged"
    world.clock.set(window_4 + WINDOW // 2)
    assert world.coord.sweep().unjailed == 1  # judged before the jail ended in this pass: not yet
    assert _reasons(world, pid) == []
    world.clock.advance(PARAMS.heartbeat_interval_s)
    world.coord.sweep()  # ACTIVE again in window 4: judged now, on windows 1 to 3
    with world.store.transaction() as tx:
        (slash,) = tx.slashes_of(pid)
    assert (slash.reason, slash.subject) == ("QOS_CHRONIC", tagged_hash(QOS_WINDOW_TAG, pid, 3))
    assert verify(world.store).ok


def test_a_sweep_that_rolled_back_judges_chronic_qos_again() -> None:
    store = _WatchedStore(memory_store())
    world = _world(store=cast(Store, store))
    _, pid = world.provider(1)
    world.live.remove(pid)
    world.clock.set(_genesis(world) + 4 * WINDOW + 10)
    store.failing_commits = 1
    with pytest.raises(StoreUnavailableError):
        world.coord.sweep()
    assert _reasons(world, pid) == []
    world.coord.sweep()
    assert _reasons(world, pid) == ["QOS_CHRONIC"]
    world.coord.sweep()  # the same window never slashes twice
    assert _reasons(world, pid) == ["QOS_CHRONIC"]
