"""`aicf up`'s reference providers heartbeat at the chain's interval (the chaos harness's stuck QUEUED jobs)."""

import pytest

from aicf.core.params import Params, params_from_toml
from aicf.core.qos import availability_bps
from aicf.devtools.providers import reference_configs

CHAOS = params_from_toml("lease_ttl_s = 12\nheartbeat_interval_s = 3\n")


@pytest.mark.parametrize("params", [Params(), CHAOS], ids=["spec-20s", "chaos-3s"])
def test_every_reference_provider_heartbeats_at_the_chains_interval(params: Params) -> None:
    configs = reference_configs(params, ["minilm-l6-v2"])
    assert [name for name, _ in configs] == ["ai-1", "ai-2", "quantum-1"]
    assert {c.heartbeat_interval_s for _, c in configs} == {params.heartbeat_interval_s}
    assert [name for name, _ in reference_configs(params, [])] == ["quantum-1"]


def test_on_a_chain_of_3_s_slots_the_reference_quantum_provider_stays_eligible() -> None:
    """Its heartbeats, one per interval for ten minutes, rate it at full availability; at SPEC's 20 s (the
    agent's default, which it used before) it rated 15 %, below min_availability_bps: never assigned."""
    ((_, config),) = reference_configs(CHAOS, [])
    start, end = 1_800_000_000, 1_800_000_600
    beats = range(start, end, config.heartbeat_interval_s)
    assert availability_bps(beats, end, start, CHAOS) >= CHAOS.min_availability_bps
    assert availability_bps(range(start, end, 20), end, start, CHAOS) < CHAOS.min_availability_bps
