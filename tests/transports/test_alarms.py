"""aicf.getStatus alarms of issue 17, each made to fire on a real coordinator (the service tests' worlds):
a queue deeper or older than its providers' declared capacity clears, a fund too poor for a trap's escrow
(counted, and warned about once per five minutes), an ACTIVE provider whose p95 exceeds its job budget.
The matching Prometheus rules are tested by promtool (deploy/prometheus/aicf-alerts.test.yml)."""

import logging
from typing import Any

import pytest
from service.test_coordinator import World, _key, _pub
from service.test_traps import MODEL, TrapWorld

from aicf.core.capacity import QUEUE_CLEAR_S, queue_limits
from aicf.core.ledger import EXTERNAL, FUND, Posting
from aicf.core.types import MicroAnm
from aicf.service import reads
from aicf.service.coordinator import TRAP_WARNING_EVERY_S, Capabilities
from aicf.service.operator_ops import OperatorSender
from aicf.transports.methods import NoParams, build_registry
from aicf.transports.rpc import CallContext


def status(world: World) -> Any:
    method = build_registry(world.coord, world.store, world.clock, world.params).get("aicf.getStatus")
    assert method is not None
    return method.handler(NoParams(), CallContext(method="aicf.getStatus"))


def alarms(world: World, name: str) -> list[dict[str, Any]]:
    return [a for a in status(world)["alarms"] if a["name"] == name]


def slow_provider(world: World, rate_mu_per_day: int) -> bytes:
    """An AI provider declaring a unit rate far below SPEC's (one job's units refill in hours)."""
    caps = Capabilities(kinds=("ai",), models=("llama3-8b",), unit_rate_mu_per_day=rate_mu_per_day)
    p = world.coord.register(_pub(_key(5)), caps)
    world.coord.deposit_stake(p.provider_id, 1_000_000, source="external")
    world.coord.heartbeat(p.provider_id)
    world.live.append(p.provider_id)
    return p.provider_id


def test_a_queue_deeper_than_the_declared_rate_clears_raises_queue_depth() -> None:
    world = World()
    world.mine(2)
    slow_provider(world, rate_mu_per_day=100_000)
    world.enqueue(4)
    world.mine(7)  # final: the jobs are QUEUED (nothing is matched in this test)
    (ai,) = [q for q in status(world)["queue"]["by_kind"] if q["kind"] == "ai"]
    with world.store.transaction() as tx:
        mean = sum(j.max_units_mu for j in tx.list_jobs([], None, 10)) // 4
    limits = queue_limits(100_000, mean)
    assert (ai["depth"], ai["depth_limit"], ai["age_limit_s"]) == (4, limits.depth, limits.age_s)
    assert ai["depth"] > ai["depth_limit"] == 1
    (alarm,) = alarms(world, "queue_depth")
    assert (alarm["kind"], alarm["severity"]) == ("ai", "warning")
    assert f"above the 1 the providers' declared rate clears in {QUEUE_CLEAR_S} s" in alarm["message"]


def test_a_queue_nothing_serves_is_critical_and_one_within_capacity_is_quiet() -> None:
    world = World()
    world.mine(2)
    world.enqueue(1)
    world.mine(7)
    (alarm,) = alarms(world, "queue_depth")
    assert alarm["severity"] == "critical"
    assert "no ACTIVE provider serves ai" in alarm["message"]
    world.provider(1)  # SPEC's unit rate: at least the one job within 300 s
    assert alarms(world, "queue_depth") == []


def test_a_queued_job_older_than_its_kinds_age_limit_raises_queue_age() -> None:
    world = World()
    world.mine(2)
    world.provider(1)
    world.enqueue(1)
    world.mine(7)
    assert alarms(world, "queue_age") == []
    (ai,) = [q for q in status(world)["queue"]["by_kind"] if q["kind"] == "ai"]
    with world.store.transaction() as tx:
        (job,) = tx.list_jobs([], None, 10)
    age_limit = ai["age_limit_s"]
    assert age_limit == queue_limits(ai["capacity_mu_per_day"], job.max_units_mu).age_s >= QUEUE_CLEAR_S
    world.clock.set(world.clock.now() + age_limit + 60)  # nobody leased it
    (alarm,) = alarms(world, "queue_age")
    assert alarm["kind"] == "ai"
    assert f"above {age_limit} s" in alarm["message"]


def test_a_fund_too_poor_for_a_traps_escrow_alarms_counts_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    world = TrapWorld()
    world.mine(2)  # the fund holds nothing yet
    caplog.set_level(logging.WARNING, logger="aicf")
    world.enqueue_model(19)
    world.mine(4)  # one trap is due on every pass, and every pass finds the fund empty
    short = world.coord.trap_shortfalls[MODEL]
    assert short.count >= 3
    assert short.escrow > 0
    warned = [r.getMessage() for r in caplog.records if "cannot pay the escrow" in r.getMessage()]
    assert len(warned) == 1, warned  # the rest are counted
    (alarm,) = alarms(world, "trap_escrow_unfunded")
    assert f"({short.escrow} µANM): {short.count} traps skipped" in alarm["message"]
    world.mine(TRAP_WARNING_EVERY_S // 10)  # five minutes of 10-s blocks on: one more line, with the count since
    warned = [r.getMessage() for r in caplog.records if "cannot pay the escrow" in r.getMessage()]
    assert len(warned) == 2
    assert "since the last warning" in warned[1]
    with world.store.transaction() as tx:  # the fund grows above the escrow: the alarm clears
        tx.post([Posting(debit=EXTERNAL, credit=FUND, amount=MicroAnm(10**9), ref_kind="mint", ref=b"")], None, 0)
        tx.commit()
    assert alarms(world, "trap_escrow_unfunded") == []


def test_traps_held_back_by_the_trap_budget_alarm_until_a_top_up_covers_them(caplog: pytest.LogCaptureFixture) -> None:
    """The fund holds plenty (as slashes fill it) but no split or top-up is trap budget yet: the due trap is held
    back, counted, warned about, and raises trap_budget_throttled; the operator's top-up clears it."""
    world = TrapWorld()
    world.mine(2)
    with world.store.transaction() as tx:
        tx.post([Posting(debit=EXTERNAL, credit=FUND, amount=MicroAnm(10**9), ref_kind="mint", ref=b"")], None, 0)
        tx.commit()
    caplog.set_level(logging.WARNING, logger="aicf")
    world.enqueue_model(19)
    world.mine(3)
    throttled = world.coord.trap_throttles[MODEL]
    assert throttled.count >= 2
    assert alarms(world, "trap_escrow_unfunded") == []  # the fund could pay it: the budget may not
    (alarm,) = alarms(world, "trap_budget_throttled")
    assert f"the trap budget (0 µANM) cannot pay a {MODEL} trap's escrow ({throttled.escrow} µANM)" in alarm["message"]
    assert any("throttled by the trap budget" in r.getMessage() for r in caplog.records)
    writer = world.coord.chain_writer
    assert isinstance(writer, OperatorSender)
    writer.send_operator({"op": "fund_topup", "amount": 10**6})
    world.mine(2)
    assert alarms(world, "trap_budget_throttled") == []
    with world.store.transaction() as tx:
        assert len(tx.open_traps(10)) == 1  # the held-back trap runs


def test_a_provider_whose_p95_exceeds_its_job_budget_alarms() -> None:
    world = World()
    world.mine(2)
    key, pid = world.provider(1)
    world.enqueue(3, runtime_ms=2000)  # each job's budget is 2 s
    world.mine(7)
    world.coord.match()
    leases = world.coord.heartbeat(pid)
    assert leases
    assert alarms(world, "provider_over_budget") == []  # no latency yet
    world.clock.set(world.clock.now() + 9)  # the proof comes 9 s after the lease: far over the 2-s budget
    outcome = world.coord.submit_proof(world.envelope(key, leases[0].lease_id, leases[0].task_id))
    assert outcome.accepted
    view = reads.get_provider(world.store, pid, world.clock.now(), world.params)
    assert view is not None
    assert view.latency_p95_ms is not None
    assert view.latency_p95_ms > 2000
    assert reads.provider_job_budgets(world.store, world.params)[pid] == 2000
    (alarm,) = alarms(world, "provider_over_budget")
    assert alarm["provider_id"] == "0x" + pid.hex()
    assert "exceeds its job budget 2000 ms" in alarm["message"]
