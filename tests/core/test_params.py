"""Params (SPEC §15): the defaults are SPEC's numbers, TOML errors name the key, params_hash tracks every value."""

from collections.abc import Mapping
from typing import Any

import pytest

from aicf.core.errors import ParamsError
from aicf.core.params import Params, params_from_mapping, params_from_toml, params_hash

# Every default, written out from SPEC (section in the comment). A new Params field fails
# test_every_params_field_has_a_spec_default until it is added here with its SPEC source.
SPEC_DEFAULTS: dict[str, object] = {
    "block_mint_bps": 150,  # §3 treasury income: issuance × 150 // 10000
    "fee_share_bps": 200,  # §3 fees × 200 // 10000
    "provider_bps": 8000,  # §3 split
    "miner_bps": 1500,
    "fund_bps": 500,  # the rest of 10000
    "base_rate_ai": 15000,  # §3 µANM per unit
    "base_rate_quantum": 50000,
    "model_weights": {"llama3-8b": 1000, "llama3-70b": 6500, "clip-vit-b": 300},  # §3
    "latency_tiers": ((300, 11500), (800, 10000)),  # §3 p95 ≤ 300 → 11500, ≤ 800 → 10000
    "latency_else_bps": 8000,
    "availability_tiers": ((9990, 11000), (9900, 10000)),  # §3 ≥ 9990 → 11000, ≥ 9900 → 10000
    "availability_else_bps": 9000,
    "depth_tiers": ((16, 1000), (32, 1500)),  # §3 depth ≤ 16 → 1000, ≤ 32 → 1500
    "depth_else_milli": 2000,
    "gamma_units": 1_000_000,  # §5 Γ
    "epoch_seconds": 86400,  # §5
    "price_initial_bps": 10000,  # §5 price_0
    "price_min_bps": 5000,
    "price_max_bps": 20000,
    "price_step_div": 8,  # §5 m//8 and 8000Γ
    "carry_promote_batches": 7,  # §5 carried by ≥ 7 batches → class 4
    "throttle_div": 100_000,  # §5 Γ × base_rate_ai × price_bps // 10^5
    "finality_depth": 6,  # §10
    "min_stake": 1,  # §6
    "max_leases": 4,  # §6
    "max_draws": 16,  # §6
    "bucket_burst_factor": 10,  # §6 burst 10 × Γ/1000
    "lease_ttl_s": 60,  # §7
    "heartbeat_interval_s": 20,  # §7
    "heartbeat_grace_intervals": 3,  # §6 heartbeat within 3 intervals
    "max_attempts": 3,  # §7 attempts 0, 1, 2
    "backoff_base_s": 5,  # §7 min(5 × 2^a, 300)
    "backoff_max_s": 300,
    "qos_window_s": 3600,  # §3 availability window
    "min_availability_bps": 9900,  # §6 live check
    "trap_bps": 500,  # §8
    "trap_k": 8,  # §8
    "trap_min_shots": 100,  # §8 max(100, shots // 100)
    "trap_shots_div": 100,
    "trap_threshold_bps": 9000,  # §8
    "embedding_cosine_min_bps": 9900,  # §8 cosine ≥ 0.99
    "audit_bps": 100,  # not SPEC: issue 14's sampled re-execution of ordinary AI jobs (docs/TRAPS.md)
    "trap_budget_bps": 10000,  # aicf §8: the share of the fund's split traps may spend (docs/TRAPS.md)
    "trap_fund_floor": 0,  # aicf §8: trap funding never takes the fund below it
    "trap_threshold_bps_by_class": {"noisy": 9000, "simulator": 9900},  # §8 9000 "per device class": docs/PARAMS.md
    "xeb_min_bps_by_class": {"noisy": 7500, "simulator": 9000},  # issue 14: docs/QUANTUM.md §4
    "slash_bps": {
        "MISSED_LEASE": 100,
        "BAD_ATTESTATION": 1000,
        "TRAP_FAILURE": 1000,
        "QOS_CHRONIC": 200,
        "FRAUD": 5000,
    },
    "jail_s": {  # §9 1 h, 24 h, 24 h, 6 h, permanent (0)
        "MISSED_LEASE": 3600,
        "BAD_ATTESTATION": 86400,
        "TRAP_FAILURE": 86400,
        "QOS_CHRONIC": 21600,
        "FRAUD": 0,
    },
    "qos_chronic_windows": 3,  # §9
    "ban_slashes": 3,  # §9 three slashes in 7 days
    "ban_window_s": 7 * 86400,
    "unbonding_s": 7 * 86400,  # §9
    "min_fee_bps": 10000,  # §2
    "max_prompt_bytes": 64 * 1024,  # §2
    "max_circuit_bytes": 256 * 1024,
    "max_output_inline_bytes": 64 * 1024,  # §8
    "max_tokens": 32768,
    "max_runtime_ms": 600_000,
    "max_shots": 1_000_000,
    "max_regions": 16,
    "max_allowlist": 64,
    "default_deadline_blocks": 14400,
    "max_deadline_blocks": 100800,
    "max_open_jobs": 100,
    "max_tier": 3,  # §5 tier 3 highest
}


def _plain(value: object) -> object:
    return dict(value) if isinstance(value, Mapping) else value


def test_defaults_equal_every_spec_number() -> None:
    p = Params.default()
    for key, want in SPEC_DEFAULTS.items():
        assert _plain(getattr(p, key)) == want, key


def test_every_params_field_has_a_spec_default() -> None:
    assert set(Params.default().to_map()) == set(SPEC_DEFAULTS)


def test_minimal_preset_keeps_the_rules_and_shrinks_the_cap() -> None:
    m = Params.minimal()
    assert m.gamma_units < Params.default().gamma_units
    assert m.provider_bps + m.miner_bps + m.fund_bps == 10000


# ---- TOML --------------------------------------------------------------------------------------------


def _toml_of(params: Params) -> str:
    scalars, tables = [], []
    for key, value in params.to_map().items():
        if isinstance(value, dict):
            tables.append(f"[{key}]\n" + "".join(f'"{k}" = {v}\n' for k, v in value.items()))
        elif isinstance(value, list):
            scalars.append(f"{key} = [" + ", ".join(f"[{a}, {b}]" for a, b in value) + "]\n")
        else:
            scalars.append(f"{key} = {value}\n")
    return "".join(scalars) + "\n".join(tables)


def test_an_empty_toml_file_gives_the_spec_defaults() -> None:
    assert params_hash(params_from_toml("")) == params_hash(Params.default())


def test_a_toml_file_restating_every_default_has_the_default_hash() -> None:
    assert params_hash(params_from_toml(_toml_of(Params.default()))) == params_hash(Params.default())


def test_a_params_table_is_read_like_top_level_keys() -> None:
    assert params_from_toml("[params]\ngamma_units = 5\n").gamma_units == 5
    assert params_from_toml("gamma_units = 5\n").gamma_units == 5


def test_a_model_weights_table_replaces_the_default_one_whole() -> None:
    p = params_from_toml('[model_weights]\n"mistral-7b" = 900\n')
    assert dict(p.model_weights) == {"mistral-7b": 900}


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("gama_units = 5\n", "gama_units"),  # unknown key (a typo)
        ('gamma_units = "big"\n', "gamma_units"),  # wrong type
        ("gamma_units = 1.5\n", "gamma_units"),  # a float
        ("gamma_units = -1\n", "gamma_units"),  # negative
        ("max_leases = true\n", "max_leases"),  # bool for int
        ("gamma_units = 0\n", "gamma_units"),  # below its minimum
        ("provider_bps = 8001\n", "provider_bps"),  # splits no longer sum to 10000
        ("miner_bps = 1400\n", "provider_bps"),  # the sum is reported on the split's first key
        ("fund_bps = 20000\n", "fund_bps"),  # above 10000 bps
        ("min_availability_bps = 10001\n", "min_availability_bps"),
        ('[model_weights]\n"llama3-8b" = true\n', "model_weights.llama3-8b"),
        ('[model_weights]\n"llama3-8b" = -3\n', "model_weights.llama3-8b"),
        ("model_weights = 3\n", "model_weights"),
        ("latency_tiers = [[300]]\n", "latency_tiers[0]"),
        ("latency_tiers = [[300, 1.5]]\n", "latency_tiers[0][1]"),
        ("latency_tiers = [[800, 10000], [300, 11500]]\n", "latency_tiers"),  # out of order
        ("[slash_bps]\nMISSED_LEASE = 100\nBAD_ATTESTATION = 1000\nTRAP_FAILURE = 1000\n"
         "QOS_CHRONIC = 200\nFRAUD = 5000\nTYPO = 1\n", "slash_bps.TYPO"),
        ("[slash_bps]\nFRAUD = 5000\n", "slash_bps.BAD_ATTESTATION"),  # reasons missing
        ("[params]\ngamma_units = 5\nmax_tokenz = 3\n", "max_tokenz"),
        ("gamma_units = = 3\n", "<file>"),  # not TOML at all
    ],
)  # fmt: skip
def test_a_bad_params_file_raises_params_error_naming_the_key(text: str, key: str) -> None:
    with pytest.raises(ParamsError) as info:
        params_from_toml(text)
    assert info.value.key == key
    assert key in str(info.value)


def test_an_unknown_key_suggests_the_closest_known_one() -> None:
    with pytest.raises(ParamsError, match="did you mean 'gamma_units'"):
        params_from_toml("gama_units = 5\n")


def test_an_integer_of_2_63_or_more_is_refused() -> None:
    with pytest.raises(ParamsError) as info:
        params_from_mapping({"gamma_units": 2**63})
    assert info.value.key == "gamma_units"


# ---- params_hash ---------------------------------------------------------------------------------------


def _mutations() -> list[tuple[str, dict[str, Any]]]:
    """One valid change per field (split fields move in pairs so they still sum to 10000)."""
    special: dict[str, dict[str, Any]] = {
        "provider_bps": {"provider_bps": 7999, "fund_bps": 501},
        "miner_bps": {"miner_bps": 1499, "fund_bps": 501},
        "fund_bps": {"fund_bps": 502, "provider_bps": 7998},  # not below 500: traps at 500 bps need it
        # the defaults sit on the trap cost rule's edge (trap_bps × min_fee_bps == trap_budget_bps × fund_bps)
        "trap_bps": {"trap_bps": 499},
        "min_fee_bps": {"min_fee_bps": 9999},
        "trap_budget_bps": {"trap_budget_bps": 9999, "trap_bps": 498},
        "latency_tiers": {"latency_tiers": [[300, 11501], [800, 10000]]},
        "availability_tiers": {"availability_tiers": [[9990, 11000], [9900, 10001]]},
        "depth_tiers": {"depth_tiers": [[16, 1000], [33, 1500]]},
        "model_weights": {"model_weights": {"llama3-8b": 1001, "llama3-70b": 6500, "clip-vit-b": 300}},
        "slash_bps": {"slash_bps": {**SPEC_DEFAULTS["slash_bps"], "FRAUD": 4999}},  # type: ignore[dict-item]
        "jail_s": {"jail_s": {**SPEC_DEFAULTS["jail_s"], "FRAUD": 1}},  # type: ignore[dict-item]
        "trap_threshold_bps_by_class": {"trap_threshold_bps_by_class": {"noisy": 9001, "simulator": 9900}},
        "xeb_min_bps_by_class": {"xeb_min_bps_by_class": {"noisy": 7501, "simulator": 9000}},
    }
    out = []
    for key, value in Params.default().to_map().items():
        if key in special:
            out.append((key, special[key]))
        else:
            assert isinstance(value, int)
            out.append((key, {key: value + 1}))
    return out


MUTATIONS = _mutations()


@pytest.mark.parametrize(("key", "change"), MUTATIONS, ids=[k for k, _ in MUTATIONS])
def test_params_hash_changes_when_any_value_changes(key: str, change: dict[str, Any]) -> None:
    changed = params_from_mapping(change)
    assert params_hash(changed) != params_hash(Params.default())


def test_every_single_change_gives_a_distinct_params_hash() -> None:
    hashes = {params_hash(params_from_mapping(change)) for _, change in MUTATIONS}
    assert len(hashes) == len(MUTATIONS)


def test_params_hash_is_stable_for_equal_params() -> None:
    a = params_from_mapping({"gamma_units": 7, "model_weights": {"b": 2, "a": 1}})
    b = params_from_mapping({"model_weights": {"a": 1, "b": 2}, "gamma_units": 7})
    assert params_hash(a) == params_hash(b)
    assert params_hash(Params.default()) == params_hash(Params())
    assert params_hash(params_from_mapping({"gamma_units": 1_000_000})) == params_hash(Params())


def test_overlaying_params_leaves_the_base_unchanged() -> None:
    base = Params.default()
    before = params_hash(base)
    params_from_mapping({"gamma_units": 5}, base=base)
    assert params_hash(base) == before
    assert base.gamma_units == 1_000_000
