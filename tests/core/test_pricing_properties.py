"""SPEC §3 and §5 arithmetic: units, reward, split, price clamp, treasury income, budget throttle.

Expected values come from the SPEC formulas written out again here (with `fractions.Fraction` and
`math.floor` where SPEC says "rounds toward −∞"), never from the functions under test.
"""

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aicf.core.params import Params, params_from_mapping
from aicf.core.pricing import (
    ai_max_units,
    ai_units,
    availability_multiplier_bps,
    budget_throttled,
    charged_of,
    depth_weight_milli,
    latency_bps,
    next_price,
    quantum_max_units,
    quantum_units,
    reserve_fee,
    reward_of,
    split_reward,
    treasury_income,
)

P = Params.default()
AMOUNT = st.integers(0, 2**63 - 1)


# ---- split (SPEC §3) -----------------------------------------------------------------------------------


@given(AMOUNT)
def test_split_parts_sum_to_reward_and_none_is_negative(reward: int) -> None:
    parts = split_reward(reward, P)
    assert parts.provider + parts.miner + parts.fund == reward
    assert min(parts.provider, parts.miner, parts.fund) >= 0


@given(AMOUNT)
def test_split_floors_provider_and_miner_and_gives_the_dust_to_the_fund(reward: int) -> None:
    parts = split_reward(reward, P)
    assert parts.provider == math.floor(Fraction(reward * 8000, 10000))
    assert parts.miner == math.floor(Fraction(reward * 1500, 10000))
    assert parts.fund == reward - parts.provider - parts.miner


@given(AMOUNT, st.integers(0, 10000), st.integers(0, 10000))
def test_split_conserves_the_reward_under_any_valid_split_params(
    reward: int, provider_bps: int, miner_bps: int
) -> None:
    miner_bps = min(miner_bps, 10000 - provider_bps)
    params = params_from_mapping(
        {
            "provider_bps": provider_bps,
            "miner_bps": miner_bps,
            "fund_bps": 10000 - provider_bps - miner_bps,
            "trap_bps": 0,  # a fund split below trap_bps cannot pay its traps (the trap cost rule)
        }
    )
    parts = split_reward(reward, params)
    assert parts.provider + parts.miner + parts.fund == reward
    assert min(parts.provider, parts.miner, parts.fund) >= 0


def test_one_mu_dust_goes_to_the_fund() -> None:
    # STYLE §5's sample vector: 1 mu of AI at price 1.0 is 15 µANM -> 12 / 2 / 1.
    reward = reward_of(1, 15000, 10000)
    parts = split_reward(reward, P)
    assert (reward, parts.provider, parts.miner, parts.fund) == (15, 12, 2, 1)


# ---- units (SPEC §3) -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p95_ms", "bps"), [(0, 11500), (300, 11500), (301, 10000), (800, 10000), (801, 8000), (10**9, 8000)]
)
def test_latency_multiplier_tiers_match_spec(p95_ms: int, bps: int) -> None:
    assert latency_bps(p95_ms, P) == bps


@pytest.mark.parametrize(
    ("availability", "bps"), [(10000, 11000), (9990, 11000), (9989, 10000), (9900, 10000), (9899, 9000), (0, 9000)]
)
def test_availability_multiplier_tiers_match_spec(availability: int, bps: int) -> None:
    assert availability_multiplier_bps(availability, P) == bps


@pytest.mark.parametrize(("depth", "milli"), [(0, 1000), (16, 1000), (17, 1500), (32, 1500), (33, 2000), (10**6, 2000)])
def test_depth_weight_tiers_match_spec(depth: int, milli: int) -> None:
    assert depth_weight_milli(depth, P) == milli


@given(st.integers(0, 10**7), st.integers(0, 10**4), st.integers(0, 20000), st.integers(0, 20000))
def test_ai_units_is_the_spec_formula_floored(runtime: int, weight: int, lat: int, avail: int) -> None:
    assert ai_units(runtime, weight, lat, avail) == math.floor(Fraction(runtime * weight * lat * avail, 10**11))


@given(
    st.lists(st.integers(0, 10**7), min_size=2, max_size=2),
    st.lists(st.integers(0, 10**4), min_size=2, max_size=2),
    st.lists(st.integers(0, 2000), min_size=2, max_size=2),
    st.lists(st.integers(0, 10000), min_size=2, max_size=2),
)
def test_ai_units_are_monotone_in_runtime_weight_latency_and_availability(
    runtimes: list[int], weights: list[int], p95s: list[int], avails: list[int]
) -> None:
    # More runtime, a heavier model, a lower p95 latency or a higher availability never pays fewer units.
    r0, r1 = sorted(runtimes)
    w0, w1 = sorted(weights)
    slow, fast = sorted(p95s, reverse=True)
    a0, a1 = sorted(avails)

    def units(r: int, w: int, p95: int, a: int) -> int:
        return ai_units(r, w, latency_bps(p95, P), availability_multiplier_bps(a, P))

    assert units(r0, w0, slow, a0) <= units(r1, w0, slow, a0)
    assert units(r0, w0, slow, a0) <= units(r0, w1, slow, a0)
    assert units(r0, w0, slow, a0) <= units(r0, w0, fast, a0)
    assert units(r0, w0, slow, a0) <= units(r0, w0, slow, a1)


@given(
    st.lists(st.integers(0, 10**6), min_size=2, max_size=2),
    st.lists(st.integers(0, 200), min_size=2, max_size=2),
    st.lists(st.integers(0, 10000), min_size=2, max_size=2),
)
def test_quantum_units_are_monotone_in_shots_depth_and_quality(
    shots: list[int], depths: list[int], qualities: list[int]
) -> None:
    s0, s1 = sorted(shots)
    d0, d1 = sorted(depths)
    q0, q1 = sorted(qualities)

    def units(s: int, d: int, q: int) -> int:
        return quantum_units(s, depth_weight_milli(d, P), q)

    assert units(s0, d0, q0) <= units(s1, d0, q0)
    assert units(s0, d0, q0) <= units(s0, d1, q0)
    assert units(s0, d0, q0) <= units(s0, d0, q1)
    assert units(s0, d0, q0) == math.floor(Fraction(s0 * depth_weight_milli(d0, P) * q0, 10000))


@given(st.integers(1, 600000), st.sampled_from(sorted(P.model_weights.values())))
def test_ai_max_units_is_runtime_cap_at_the_best_multipliers(max_runtime: int, weight: int) -> None:
    assert ai_max_units(max_runtime, weight, P) == max_runtime * weight * 11500 * 11000 // 10**11
    # the cap is never below what any QoS could earn in the same runtime
    assert ai_max_units(max_runtime, weight, P) >= ai_units(max_runtime, weight, 11500, 11000)


@given(st.integers(1, 10**6), st.integers(0, 100))
def test_quantum_max_units_is_shots_times_depth_weight(shots: int, depth: int) -> None:
    expected = shots * (1000 if depth <= 16 else 1500 if depth <= 32 else 2000)
    assert quantum_max_units(shots, depth, P) == expected
    assert quantum_max_units(shots, depth, P) >= quantum_units(shots, depth_weight_milli(depth, P), 10000)


# ---- reward, charge, reserve, income (SPEC §2, §3) ------------------------------------------------------


@given(st.integers(0, 10**12), st.sampled_from([15000, 50000]), st.integers(0, 20000))
def test_reward_is_the_spec_formula_floored(units: int, base_rate: int, price: int) -> None:
    assert reward_of(units, base_rate, price) == math.floor(Fraction(units * base_rate * price, 1000 * 10000))


@given(st.integers(0, 10**12), st.integers(0, 10**12))
def test_charged_is_fee_times_units_over_1000(fee: int, units: int) -> None:
    assert charged_of(fee, units) == fee * units // 1000


@pytest.mark.parametrize(("base_rate", "price", "reserve"), [(15000, 10000, 15000), (50000, 20000, 100000)])
def test_reserve_fee_by_default_equals_what_the_treasury_pays_per_unit(
    base_rate: int, price: int, reserve: int
) -> None:
    assert reserve_fee(base_rate, price, P) == reserve


@given(AMOUNT, AMOUNT)
def test_treasury_income_is_the_mint_and_fee_slices(issuance: int, fees: int) -> None:
    assert treasury_income(issuance, fees, P) == issuance * 150 // 10000 + fees * 200 // 10000


def test_budget_throttle_starts_below_a_tenth_of_a_full_epochs_ai_outlay() -> None:
    floor_t = 1_000_000 * 15000 * 10000 // 10**5
    assert budget_throttled(floor_t - 1, 10000, P)
    assert not budget_throttled(floor_t, 10000, P)


# ---- the price clamp (SPEC §5) -------------------------------------------------------------------------


def ref_next_price(m: int, demand_mu: int, gamma: int) -> int:
    step = math.floor(Fraction(m * (demand_mu - 1000 * gamma), 8000 * gamma))
    return min(20000, max(5000, min(m + m // 8, max(m - m // 8, m + step))))


PRICE = st.integers(5000, 20000)
GAMMA = st.integers(1, 10**7)


@given(st.integers(0, 10**6), st.integers(0, 10**15), GAMMA)
def test_next_price_matches_the_spec_formula(m: int, demand: int, gamma: int) -> None:
    assert next_price(m, demand, gamma, P) == ref_next_price(m, demand, gamma)


@given(st.integers(0, 10**6), st.integers(0, 10**15), GAMMA)
def test_next_price_stays_within_5000_and_20000(m: int, demand: int, gamma: int) -> None:
    assert 5000 <= next_price(m, demand, gamma, P) <= 20000


@given(PRICE, st.integers(0, 10**15), GAMMA)
def test_next_price_moves_at_most_an_eighth(m: int, demand: int, gamma: int) -> None:
    assert abs(next_price(m, demand, gamma, P) - m) <= m // 8


@given(PRICE, st.integers(0, 10**15), st.integers(0, 10**15), GAMMA)
def test_next_price_is_monotone_in_demand(m: int, d0: int, d1: int, gamma: int) -> None:
    lo, hi = sorted((d0, d1))
    assert next_price(m, lo, gamma, P) <= next_price(m, hi, gamma, P)


@given(PRICE, GAMMA)
def test_price_holds_at_exactly_full_demand(m: int, gamma: int) -> None:
    assert next_price(m, 1000 * gamma, gamma, P) == m


def test_price_step_rounds_toward_minus_infinity_for_negative_numerators() -> None:
    # step = 10000 × (1000 − 10^6) // (8 × 10^6) = floor(−1248.75) = −1249; truncation would give −1248.
    assert next_price(10000, 1000, 1000, P) == 8751
    # one mu short of full demand: the step is floor(-tiny) = -1, never 0
    assert next_price(10000, 1000 * 1000 - 1, 1000, P) == 9999


@given(PRICE, GAMMA)
def test_price_falls_by_exactly_an_eighth_with_no_demand(m: int, gamma: int) -> None:
    assert next_price(m, 0, gamma, P) == max(5000, m - m // 8)


@given(PRICE, GAMMA)
def test_price_rises_by_exactly_an_eighth_at_double_demand_or_more(m: int, gamma: int) -> None:
    assert next_price(m, 2000 * gamma, gamma, P) == min(20000, m + m // 8)
