"""`aicf up`'s demo load fits its providers (issue 17): each kind is enqueued at DEMO_SHARE_BPS of the unit rate
its ACTIVE providers declare, nothing is sent for a kind nobody serves, and the fund is topped up when a trap
finds it too poor (the shortfall itself counted in /metrics)."""

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from store.backends import memory_store

from aicf.bootstrap.system import System, SystemConfig, build_system
from aicf.bootstrap.up import devnet_params
from aicf.core.assignment import effective_unit_rate
from aicf.core.capacity import DAY_S
from aicf.core.ledger import FUND
from aicf.core.operator import OP_FUND_TOPUP
from aicf.core.qasm import circuit_depth
from aicf.core.requests import validate_request
from aicf.devtools.demo import DEMO_SHARE_BPS, FUND_TOPUP_TRAPS, DemoRequesters
from aicf.provider.work_ai import echo_model_digest
from aicf.service import reads
from aicf.service.coordinator import Capabilities, TrapShortfall
from aicf.transports.key_files import public_bytes
from aicf.transports.metrics import render_prometheus
from transports.helpers import scrape
from transports.test_cli_ops import START, SteppedClock

MODEL = "minilm-l6-v2"


@pytest.fixture
def system(tmp_path: Path) -> System:
    return build_system(
        memory_store(),
        devnet_params(),
        SystemConfig(var=tmp_path, model_digests={MODEL: echo_model_digest(MODEL)}),
        clock=SteppedClock(START),
    )


def provider(system: System, seed: int, caps: Capabilities) -> bytes:
    p = system.coord.register(public_bytes(Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)), caps)
    system.coord.deposit_stake(p.provider_id, 10_000_000_000, source="external")
    system.coord.heartbeat(p.provider_id)
    return p.provider_id


def run_for(system: System, demo: DemoRequesters, seconds: int) -> None:
    clock = system.clock
    assert isinstance(clock, SteppedClock)
    for _ in range(seconds):
        clock.fixed.advance(1)
        demo.step()


def test_the_demo_enqueues_each_kind_at_half_its_providers_declared_rate(system: System) -> None:
    provider(system, 1, Capabilities(kinds=("quantum",), devices=("stim",)))  # SPEC's unit rate, as the demo's
    provider(system, 2, Capabilities(kinds=("ai",), models=(MODEL,), unit_rate_mu_per_day=2_000_000))
    demo = DemoRequesters(system=system, models=[MODEL])
    demo.start()
    run_for(system, demo, 3600)
    params = system.params
    for kind, rate in (("quantum", effective_unit_rate(0, 0, params).rate_mu_per_day), (MODEL, 2_000_000)):
        _, body = demo.body(kind)
        request = {"kind": "quantum" if kind == "quantum" else "ai", **body}
        job_mu = validate_request(request, params, params.price_initial_bps, circuit_depth).max_units_mu
        asked_mu_per_day = demo.sent[kind] * job_mu * DAY_S // 3600
        share = rate * DEMO_SHARE_BPS // 10_000
        one_job = job_mu * DAY_S // 3600  # the first job goes out at once: the hour holds one interval's more
        assert share * 95 // 100 <= asked_mu_per_day <= share + one_job, (kind, demo.sent[kind])
    assert demo.sent["quantum"] < 3600 // 12  # the old demo sent one every 12 s, above the provider's rate


def test_nothing_is_enqueued_for_a_kind_no_provider_serves(system: System) -> None:
    demo = DemoRequesters(system=system, models=[MODEL])
    demo.start()
    run_for(system, demo, 60)
    assert demo.sent == {}
    provider(system, 1, Capabilities(kinds=("quantum",), devices=("stim",)))
    run_for(system, demo, 60)
    assert set(demo.sent) == {"quantum"}


def test_a_fund_too_poor_for_a_trap_is_topped_up_once_on_chain_and_the_shortfall_is_in_metrics(system: System) -> None:
    demo = DemoRequesters(system=system, models=[MODEL])
    demo.start()
    assert reads.get_balances(system.store, [FUND])[FUND] == 0
    system.coord.trap_shortfalls["smollm2-135m"] = TrapShortfall(
        count=7, escrow=506_000, warned_at=START, warned_count=1
    )
    run_for(system, demo, 5)
    assert demo.fund_topups == 1  # an operator fund_topup transaction: none more while it waits to land
    assert reads.get_balances(system.store, [FUND])[FUND] == 0
    clock = system.clock
    assert isinstance(clock, SteppedClock)
    for _ in range(2):  # a block takes it, the next pass ingests it
        clock.fixed.advance(10)
        system.tick()
    assert reads.get_balances(system.store, [FUND])[FUND] == FUND_TOPUP_TRAPS * 506_000
    with system.store.transaction() as tx:
        (topup,) = tx.operator_changes_of(OP_FUND_TOPUP)
    assert topup.tx_hash == demo.topup_tx
    run_for(system, demo, 5)
    assert demo.fund_topups == 1  # the fund now pays the escrow: no second top-up
    (short,) = system.metrics().trap_shortfalls
    assert (short.model, short.count, short.escrow) == ("smollm2-135m", 7, 506_000)
    shortfalls = scrape(render_prometheus(system.metrics()), "aicf_trap_escrow_shortfalls_total")
    assert shortfalls == {(("model", "smollm2-135m"),): 7}
