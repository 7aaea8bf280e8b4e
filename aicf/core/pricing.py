"""Units, reward, split and the epoch price clamp (SPEC §2, §3, §5). Integer arithmetic, divisions last."""

from dataclasses import dataclass

from aicf.core.params import Params, Tiers
from aicf.core.types import BPS, MicroAnm, MilliUnits

_UNITS_DIVISOR = 10**11  # ms → s (1000) × bps (10^4) × bps (10^4) ÷ milli (1000)


def _tier_at_most(tiers: Tiers, value: int, otherwise: int) -> int:
    for threshold, result in tiers:
        if value <= threshold:
            return result
    return otherwise


def _tier_at_least(tiers: Tiers, value: int, otherwise: int) -> int:
    for threshold, result in tiers:
        if value >= threshold:
            return result
    return otherwise


def latency_bps(p95_latency_ms: int, params: Params) -> int:
    """≤ 300 ms → 11500, ≤ 800 → 10000, else 8000 (by default)."""
    return _tier_at_most(params.latency_tiers, p95_latency_ms, params.latency_else_bps)


def availability_multiplier_bps(availability_bps: int, params: Params) -> int:
    """≥ 9990 → 11000, ≥ 9900 → 10000, else 9000 (by default)."""
    return _tier_at_least(params.availability_tiers, availability_bps, params.availability_else_bps)


def depth_weight_milli(depth: int, params: Params) -> int:
    """≤ 16 → 1000, ≤ 32 → 1500, else 2000 (by default)."""
    return _tier_at_most(params.depth_tiers, depth, params.depth_else_milli)


def ai_units(runtime_ms: int, weight_milli: int, lat_bps: int, avail_bps: int) -> MilliUnits:
    """units_mu = runtime_ms × weight_milli × lat_bps × avail_bps // 10^11."""
    return MilliUnits(runtime_ms * weight_milli * lat_bps * avail_bps // _UNITS_DIVISOR)


def quantum_units(shots: int, depth_milli: int, quality_bps: int) -> MilliUnits:
    """units_mu = shots × depth_weight_milli × quality_bps // 10000."""
    return MilliUnits(shots * depth_milli * quality_bps // BPS)


def ai_max_units(max_runtime_ms: int, weight_milli: int, params: Params) -> MilliUnits:
    """The most an AI job can be charged: its runtime cap at the best QoS multipliers (SPEC §2)."""
    best_lat = max([b for _, b in params.latency_tiers] + [params.latency_else_bps])
    best_avail = max([b for _, b in params.availability_tiers] + [params.availability_else_bps])
    return ai_units(max_runtime_ms, weight_milli, best_lat, best_avail)


def quantum_max_units(shots: int, depth: int, params: Params) -> MilliUnits:
    """shots × depth_weight_milli: perfect trap quality (SPEC §2)."""
    return MilliUnits(shots * depth_weight_milli(depth, params))


def reward_of(units_mu: int, base_rate: int, price_bps: int) -> MicroAnm:
    """reward = units_mu × base_rate × price_bps // (1000 × 10000)."""
    return MicroAnm(units_mu * base_rate * price_bps // (1000 * BPS))


@dataclass(frozen=True, slots=True, kw_only=True)
class RewardSplit:
    provider: MicroAnm
    miner: MicroAnm
    fund: MicroAnm


def split_reward(reward: int, params: Params) -> RewardSplit:
    """Floor each share; the fund takes the rounding dust, so the three parts always sum to `reward`."""
    provider = reward * params.provider_bps // BPS
    miner = reward * params.miner_bps // BPS
    return RewardSplit(provider=MicroAnm(provider), miner=MicroAnm(miner), fund=MicroAnm(reward - provider - miner))


def charged_of(fee_per_unit: int, units_mu: int) -> MicroAnm:
    """What a requester pays for `units_mu`: fee_per_unit × units_mu // 1000 (SPEC §2)."""
    return MicroAnm(fee_per_unit * units_mu // 1000)


def reserve_fee(base_rate: int, price_bps: int, params: Params) -> int:
    """The lowest fee_per_unit accepted: base_rate × price_bps × min_fee_bps // 10^8 (SPEC §2)."""
    return base_rate * price_bps * params.min_fee_bps // (BPS * BPS)


def treasury_income(issuance: int, fees: int, params: Params) -> MicroAnm:
    """issuance × 150 // 10000 + fees × 200 // 10000 (SPEC §3)."""
    return MicroAnm(issuance * params.block_mint_bps // BPS + fees * params.fee_share_bps // BPS)


def next_price(price_bps: int, demand_mu: int, gamma_units: int, params: Params) -> int:
    """The price clamp of SPEC §5.

    step = (m × (D_mu − 1000Γ)) // (8000Γ); the move is held within ±m//8 and the result within [5000, 20000].
    """
    m = price_bps
    div = params.price_step_div
    step = (m * (demand_mu - 1000 * gamma_units)) // (div * 1000 * gamma_units)
    moved = min(m + m // div, max(m - m // div, m + step))
    return max(params.price_min_bps, min(params.price_max_bps, moved))


def budget_throttled(treasury: int, price_bps: int, params: Params) -> bool:
    """No new leases while T < Γ × base_rate_ai × price_bps // 10^5 (a tenth of a full epoch's AI outlay)."""
    return treasury < params.gamma_units * params.base_rate_ai * price_bps // params.throttle_div
