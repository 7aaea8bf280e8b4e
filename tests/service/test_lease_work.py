"""Issue 15: aicf.nextLease does not rebuild a quantum lease's trap batch on every call."""

from typing import Any

from aicf.core.chain import TxKind
from aicf.devtools.demo import BELL
from aicf.service.coordinator import Capabilities
from service.test_coordinator import REQUESTER, World, _key, _pub, world  # noqa: F401 - the fixture


def test_next_lease_builds_a_quantum_leases_trap_batch_once(world: World) -> None:  # noqa: F811
    calls: list[bytes] = []
    real = world.coord.derive_batch

    def counting(*args: Any) -> Any:
        calls.append(args[3])  # the task id
        return real(*args)

    world.coord.derive_batch = counting
    p = world.coord.register(_pub(_key(1)), Capabilities(kinds=("quantum",), devices=("stim",)))
    world.coord.deposit_stake(p.provider_id, 1_000_000, source="external")
    world.live.append(p.provider_id)
    world.devnet.submit(REQUESTER, TxKind.DEPOSIT, {"to": REQUESTER, "amount": 10**9})
    world.devnet.submit(
        REQUESTER, TxKind.QUANTUM_ENQUEUE, {"circuit": BELL, "shots": 20, "fee_per_unit": 150_000, "tier": 0}
    )
    world.mine(7)
    world.coord.match()
    answers = [world.coord.leases_for(p.provider_id) for _ in range(20)]
    assert len(answers[0]) == 1
    assert answers[0][0].batch  # the job's circuit and its traps
    assert all(a == answers[0] for a in answers)
    assert len(calls) == 1
