"""One frozen `Params` holding every default of SPEC (§15), loaded from TOML, hashed into `params_hash`.

A params file lists only the keys it changes; every other key keeps SPEC's default. An unknown key, a
value of the wrong type or a value out of range raises `ParamsError` naming the key, so a typo in a
config never silently falls back to a default.
"""

import copy
import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType

from aicf.core.encoding import tagged_hash
from aicf.core.errors import ParamsError
from aicf.core.types import BPS, MAX_AMOUNT

PARAMS_TAG = "aicf/params/v1"
SLASH_REASONS = ("MISSED_LEASE", "BAD_ATTESTATION", "TRAP_FAILURE", "QOS_CHRONIC", "FRAUD")

Tiers = tuple[tuple[int, int], ...]  # (threshold, value) pairs, checked in order; the first that holds wins


def _frozen(d: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(d))


@dataclass(frozen=True, slots=True, kw_only=True)
class Params:
    # Treasury slice and split (SPEC §3)
    block_mint_bps: int = 150
    fee_share_bps: int = 200
    provider_bps: int = 8000
    miner_bps: int = 1500
    fund_bps: int = 500
    # Pricing (SPEC §3)
    base_rate_ai: int = 15000  # µANM per unit
    base_rate_quantum: int = 50000
    model_weights: Mapping[str, int] = field(
        default_factory=lambda: _frozen({"llama3-8b": 1000, "llama3-70b": 6500, "clip-vit-b": 300})
    )
    latency_tiers: Tiers = ((300, 11500), (800, 10000))  # p95 ms <= threshold -> bps
    latency_else_bps: int = 8000
    availability_tiers: Tiers = ((9990, 11000), (9900, 10000))  # availability_bps >= threshold -> bps
    availability_else_bps: int = 9000
    depth_tiers: Tiers = ((16, 1000), (32, 1500))  # depth <= threshold -> weight milli
    depth_else_milli: int = 2000
    # Epochs, caps and price (SPEC §5)
    gamma_units: int = 1_000_000
    epoch_seconds: int = 86400
    price_initial_bps: int = 10000
    price_min_bps: int = 5000
    price_max_bps: int = 20000
    price_step_div: int = 8  # the price moves at most m // 8 per epoch, by m*(D-1000Γ) // (8000Γ)
    carry_promote_batches: int = 7  # a job carried by this many batches sorts as class 4
    throttle_div: int = 100_000  # no new leases while T < Γ × base_rate_ai × price_bps // throttle_div
    # Chain (SPEC §10)
    finality_depth: int = 6
    # Matching, leases, QoS (SPEC §6, §7, §3)
    min_stake: int = 1
    max_leases: int = 4
    max_draws: int = 16
    bucket_burst_factor: int = 10  # burst = factor × Γ/1000 mu; refill Γ × 1000 per day
    lease_ttl_s: int = 60
    heartbeat_interval_s: int = 20
    heartbeat_grace_intervals: int = 3
    max_attempts: int = 3
    backoff_base_s: int = 5
    backoff_max_s: int = 300
    qos_window_s: int = 3600
    min_availability_bps: int = 9900
    # Traps (SPEC §8)
    trap_bps: int = 500
    trap_k: int = 8
    trap_min_shots: int = 100
    trap_shots_div: int = 100
    trap_threshold_bps: int = 9000
    embedding_cosine_min_bps: int = 9900
    audit_bps: int = 100  # issue 14: the share of ordinary AI jobs re-executed, drawn from s_E (docs/TRAPS.md)
    # The trap budget (docs/TRAPS.md "The trap budget"): the share of the fund's split that may pay for traps, and
    # the balance trap funding never takes the fund below (µANM)
    trap_budget_bps: int = 10000
    trap_fund_floor: int = 0
    # Per quantum device class (SPEC §8 "per device class"; the class is the operator's pin, docs/QUANTUM.md §4):
    # the trap quality a proof needs, and the job's normalised cross-entropy F_obs / F_ideal in bps
    trap_threshold_bps_by_class: Mapping[str, int] = field(
        default_factory=lambda: _frozen({"noisy": 9000, "simulator": 9900})
    )
    xeb_min_bps_by_class: Mapping[str, int] = field(default_factory=lambda: _frozen({"noisy": 7500, "simulator": 9000}))
    # Slashing (SPEC §9)
    slash_bps: Mapping[str, int] = field(
        default_factory=lambda: _frozen(
            {"MISSED_LEASE": 100, "BAD_ATTESTATION": 1000, "TRAP_FAILURE": 1000, "QOS_CHRONIC": 200, "FRAUD": 5000}
        )
    )
    jail_s: Mapping[str, int] = field(  # 0 = permanent
        default_factory=lambda: _frozen(
            {"MISSED_LEASE": 3600, "BAD_ATTESTATION": 86400, "TRAP_FAILURE": 86400, "QOS_CHRONIC": 21600, "FRAUD": 0}
        )
    )
    qos_chronic_windows: int = 3
    ban_slashes: int = 3
    ban_window_s: int = 7 * 86400
    unbonding_s: int = 7 * 86400
    # Requests (SPEC §2)
    min_fee_bps: int = 10000
    max_prompt_bytes: int = 64 * 1024
    max_circuit_bytes: int = 256 * 1024
    max_output_inline_bytes: int = 64 * 1024
    max_tokens: int = 32768
    max_runtime_ms: int = 600_000
    max_shots: int = 1_000_000
    max_regions: int = 16
    max_allowlist: int = 64
    default_deadline_blocks: int = 14400
    max_deadline_blocks: int = 100800
    max_open_jobs: int = 100
    max_tier: int = 3

    def __post_init__(self) -> None:
        _validate(self)

    @staticmethod
    def default() -> "Params":
        """SPEC's numbers."""
        return Params()

    @staticmethod
    def minimal() -> "Params":
        """Short epochs and tiny caps, for tests (the consensus-specs 'minimal' preset plays this part)."""
        return Params(gamma_units=1000, epoch_seconds=60)

    def device_classes(self) -> tuple[str, ...]:
        return tuple(sorted(self.trap_threshold_bps_by_class))

    def weight_milli(self, model: str) -> int | None:
        return self.model_weights.get(model)

    def base_rate(self, kind: str) -> int:
        return self.base_rate_ai if kind == "ai" else self.base_rate_quantum

    @property
    def gamma_mu(self) -> int:
        return self.gamma_units * 1000

    def to_map(self) -> dict[str, object]:
        """The text-keyed map of the whole object, as hashed by `params_hash`."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Mapping):
                out[f.name] = dict(value)
            elif isinstance(value, tuple):
                out[f.name] = [list(pair) for pair in value]
            else:
                out[f.name] = value
        return out


def params_hash(params: Params) -> bytes:
    return tagged_hash(PARAMS_TAG, params.to_map())


_FIELDS = {f.name: f for f in fields(Params)}
_MAPPING_FIELDS = {"model_weights", "slash_bps", "jail_s", "trap_threshold_bps_by_class", "xeb_min_bps_by_class"}
_TIER_FIELDS = {"latency_tiers", "availability_tiers", "depth_tiers"}


def _check_int(key: str, value: object) -> int:
    # bool is an int subclass in Python; a config `true` for a count is a typo, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamsError(key, f"expected an integer, got {type(value).__name__} {value!r}")
    if not 0 <= value < MAX_AMOUNT:
        raise ParamsError(key, f"must be >= 0 and < 2^63, got {value}")
    return value


def _coerce(key: str, value: object) -> object:
    if key in _MAPPING_FIELDS:
        if not isinstance(value, Mapping):
            raise ParamsError(key, f"expected a table of name = integer, got {type(value).__name__}")
        return _frozen({str(k): _check_int(f"{key}.{k}", v) for k, v in value.items()})
    if key in _TIER_FIELDS:
        if not isinstance(value, list | tuple):
            raise ParamsError(key, f"expected a list of [threshold, value] pairs, got {type(value).__name__}")
        pairs: list[tuple[int, int]] = []
        for i, pair in enumerate(value):
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise ParamsError(f"{key}[{i}]", f"expected a [threshold, value] pair, got {pair!r}")
            pairs.append((_check_int(f"{key}[{i}][0]", pair[0]), _check_int(f"{key}[{i}][1]", pair[1])))
        return tuple(pairs)
    return _check_int(key, value)


def _validate(p: Params) -> None:
    for key in (
        "provider_bps", "miner_bps", "fund_bps", "block_mint_bps", "fee_share_bps", "min_availability_bps", "audit_bps",
        "trap_budget_bps",
    ):  # fmt: skip
        if getattr(p, key) > BPS:
            raise ParamsError(key, f"must be at most {BPS} bps, got {getattr(p, key)}")
    if p.provider_bps + p.miner_bps + p.fund_bps != BPS:
        raise ParamsError(
            "provider_bps",
            f"provider + miner + fund must be {BPS} bps, got {p.provider_bps + p.miner_bps + p.fund_bps}",
        )
    for key in ("epoch_seconds", "gamma_units", "price_step_div", "heartbeat_interval_s", "max_attempts", "min_stake"):
        if getattr(p, key) < 1:
            raise ParamsError(key, f"must be at least 1, got {getattr(p, key)}")
    if p.trap_bps >= BPS:
        raise ParamsError("trap_bps", f"must be below {BPS} bps, got {p.trap_bps}")
    if p.trap_bps * p.min_fee_bps > p.trap_budget_bps * p.fund_bps:
        raise ParamsError("trap_bps", trap_cost_reason(p))
    if not 0 < p.price_min_bps <= p.price_initial_bps <= p.price_max_bps:
        raise ParamsError("price_initial_bps", "need 0 < price_min_bps <= price_initial_bps <= price_max_bps")
    for key in _TIER_FIELDS:
        thresholds = [t for t, _ in getattr(p, key)]
        ordered = sorted(thresholds, reverse=key == "availability_tiers")
        if thresholds != ordered or len(set(thresholds)) != len(thresholds):
            raise ParamsError(key, f"thresholds must be strictly ordered, got {thresholds}")
    if not p.model_weights:
        raise ParamsError("model_weights", "at least one model is needed")
    for table in ("slash_bps", "jail_s"):
        unknown = set(getattr(p, table)) - set(SLASH_REASONS)
        missing = set(SLASH_REASONS) - set(getattr(p, table))
        if unknown:
            raise ParamsError(
                f"{table}.{sorted(unknown)[0]}", f"unknown slash reason; known: {', '.join(SLASH_REASONS)}"
            )
        if missing:
            raise ParamsError(f"{table}.{sorted(missing)[0]}", "missing slash reason")
    for table in ("slash_bps", "trap_threshold_bps_by_class", "xeb_min_bps_by_class"):
        for name, bps in getattr(p, table).items():
            if bps > BPS:
                raise ParamsError(f"{table}.{name}", f"must be at most {BPS} bps, got {bps}")
    if not p.trap_threshold_bps_by_class:
        raise ParamsError("trap_threshold_bps_by_class", "at least one device class is needed")
    if set(p.xeb_min_bps_by_class) != set(p.trap_threshold_bps_by_class):
        odd = sorted(set(p.xeb_min_bps_by_class) ^ set(p.trap_threshold_bps_by_class))[0]
        raise ParamsError(
            "xeb_min_bps_by_class", f"device class {odd!r} must be in both trap_threshold_bps_by_class and this table"
        )


def trap_cost_reason(p: Params) -> str:
    """Why `p` is refused by the trap cost rule (docs/TRAPS.md "The trap budget"): traps are trap_bps of all AI
    jobs and each is charged at least the reserve (min_fee_bps of its reward), so they cost the fund at least
    trap_bps × min_fee_bps / 10^4 bps of all rewards, while its trap budget is trap_budget_bps of its fund_bps
    split, trap_budget_bps × fund_bps / 10^4 bps of all rewards."""
    return (
        f"traps would cost the fund more than its trap budget: trap_bps × min_fee_bps = {p.trap_bps} × "
        f"{p.min_fee_bps} = {p.trap_bps * p.min_fee_bps} is above trap_budget_bps × fund_bps = {p.trap_budget_bps} × "
        f"{p.fund_bps} = {p.trap_budget_bps * p.fund_bps}; lower trap_bps or raise fund_bps or trap_budget_bps"
    )


def coerce_params_changes(data: Mapping[str, object]) -> dict[str, object]:
    """Each key known and each value of its type, exactly as a params file is read; raises ParamsError naming
    the key. The whole object's rules (splits summing to 10000 bps…) are checked when the changes are applied."""
    changes: dict[str, object] = {}
    for key, value in data.items():
        if key not in _FIELDS:
            close = difflib.get_close_matches(key, _FIELDS, n=1)
            raise ParamsError(key, "unknown key" + (f" (did you mean {close[0]!r}?)" if close else ""))
        changes[key] = _coerce(key, value)
    return changes


def params_from_mapping(data: Mapping[str, object], base: Params | None = None) -> Params:
    """Overlay `data` on `base` (SPEC defaults when None). Raises ParamsError naming the offending key."""
    changes = coerce_params_changes(data)
    start = base if base is not None else Params()
    if not changes:
        return start
    # A table such as model_weights replaces the default one whole: a model the config leaves out is not served.
    updated = copy.copy(start)
    for key, value in changes.items():
        object.__setattr__(updated, key, value)
    _validate(updated)
    return updated


def params_from_toml(text: str) -> Params:
    """Parse a params TOML document. A [params] table is accepted as well as keys at the top level."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ParamsError("<file>", f"not valid TOML: {exc}") from None
    if set(data) == {"params"} and isinstance(data["params"], dict):
        data = data["params"]
    return params_from_mapping(data)
