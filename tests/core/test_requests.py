"""Requests (SPEC §2): the request map, its limits (each refused with RequestError naming the field), escrow."""

from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aicf.core.errors import RequestError
from aicf.core.ids import payload_hash, task_id
from aicf.core.params import Params, params_from_mapping
from aicf.core.requests import build_request_map, make_receipt, validate_request

P = Params.default()
PRICE = 10000
DEPTH = 5  # what the stub circuit parser reports


def depth_of(circuit: bytes) -> int:
    return DEPTH


def ai(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "kind": "ai",
        "model": "llama3-8b",
        "prompt": b"hello",
        "max_tokens": 256,
        "max_runtime_ms": 10_000,
        "fee_per_unit": 20_000,
        "tier": 0,
    }
    base.update(changes)
    return base


def quantum(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {"kind": "quantum", "circuit": b"OPENQASM 2.0;", "shots": 1000, "fee_per_unit": 60_000}
    base["tier"] = 1
    base.update(changes)
    return base


def validate(request: dict[str, object], params: Params = P, price: int = PRICE) -> Any:
    return validate_request(request, params, price, depth_of)


def rejects(request: dict[str, object], field: str, params: Params = P, price: int = PRICE) -> RequestError:
    with pytest.raises(RequestError) as info:
        validate(request, params, price)
    assert info.value.field == field
    assert field in str(info.value)
    return info.value


# ---- each SPEC §2 limit, just inside and just outside --------------------------------------------------


def test_a_prompt_of_64_kib_is_accepted_and_one_byte_more_is_refused() -> None:
    validate(ai(prompt=b"x" * 65536))
    rejects(ai(prompt=b"x" * 65537), "prompt")


def test_a_circuit_of_256_kib_is_accepted_and_one_byte_more_is_refused() -> None:
    validate(quantum(circuit=b"x" * 262144))
    rejects(quantum(circuit=b"x" * 262145), "circuit")


def test_max_tokens_above_32768_is_refused() -> None:
    validate(ai(max_tokens=32768))
    rejects(ai(max_tokens=32769), "max_tokens")


@pytest.mark.parametrize("runtime", [0, 600_001])
def test_max_runtime_ms_outside_1_to_600000_is_refused(runtime: int) -> None:
    rejects(ai(max_runtime_ms=runtime), "max_runtime_ms")


@pytest.mark.parametrize("runtime", [1, 600_000])
def test_max_runtime_ms_at_its_bounds_is_accepted(runtime: int) -> None:
    validate(ai(max_runtime_ms=runtime))


@pytest.mark.parametrize("shots", [0, 1_000_001])
def test_shots_outside_1_to_a_million_is_refused(shots: int) -> None:
    rejects(quantum(shots=shots), "shots")


def test_shots_at_their_bounds_are_accepted_when_the_cap_allows() -> None:
    validate(quantum(shots=1))
    validate(quantum(shots=500_000))  # 500_000 × 1000 mu = 5×10^8 ≤ Γ × 1000


def test_an_unknown_model_is_refused_naming_the_known_ones() -> None:
    error = rejects(ai(model="gpt-17"), "model")
    assert "llama3-8b" in str(error)


def test_an_unknown_key_is_refused_naming_it() -> None:
    rejects(ai(temperature=1), "temperature")
    rejects(quantum(model="llama3-8b"), "model")  # an AI key on a quantum request


def test_a_missing_key_is_refused_naming_it() -> None:
    request = ai()
    del request["max_tokens"]
    rejects(request, "max_tokens")


def test_an_unknown_kind_is_refused() -> None:
    rejects(ai(kind="video"), "kind")


@pytest.mark.parametrize("value", [-1, 2**63, True, "5"])
def test_integers_must_be_non_negative_and_below_2_63(value: object) -> None:
    rejects(ai(max_tokens=value), "max_tokens")


def test_a_fee_below_the_reserve_is_refused() -> None:
    # reserve = base_rate × price_bps × min_fee_bps // 10^8: 15000 for AI at price 1.0, 30000 at 2.0
    validate(ai(fee_per_unit=15000))
    rejects(ai(fee_per_unit=14999), "fee_per_unit")
    validate(ai(fee_per_unit=30000), price=20000)
    rejects(ai(fee_per_unit=29999), "fee_per_unit", price=20000)
    validate(quantum(fee_per_unit=50000))
    rejects(quantum(fee_per_unit=49999), "fee_per_unit")


def test_the_reserve_follows_min_fee_bps() -> None:
    half = params_from_mapping({"min_fee_bps": 5000})
    validate(ai(fee_per_unit=7500), params=half)
    rejects(ai(fee_per_unit=7499), "fee_per_unit", params=half)


def test_max_units_above_gamma_times_1000_is_refused() -> None:
    tiny = params_from_mapping({"gamma_units": 1})  # cap 1000 mu
    validate(quantum(shots=1), params=tiny)  # 1 × 1000 mu = cap
    rejects(quantum(shots=2), "max_units_mu", params=tiny)
    # AI: 1000 ms of llama3-8b at the best multipliers is 1265 mu
    rejects(ai(max_runtime_ms=1000), "max_units_mu", params=tiny)
    validate(ai(max_runtime_ms=790), params=tiny)  # 790 × 1000 × 11500 × 11000 // 10^11 = 999
    validate(quantum(shots=1_000_000))  # depth 5: 10^6 × 1000 mu = 10^9 = Γ × 1000 by default
    with pytest.raises(RequestError) as info:  # depth 40: 10^6 × 2000 mu > 10^9
        validate_request(quantum(shots=1_000_000), P, PRICE, lambda circuit: 40)
    assert info.value.field == "max_units_mu"


def test_deadline_blocks_above_100800_is_refused() -> None:
    validate(ai(deadline_blocks=100800))
    rejects(ai(deadline_blocks=100801), "deadline_blocks")


def test_more_than_16_regions_is_refused() -> None:
    validate(ai(regions=[f"r{i:02}" for i in range(16)]))
    rejects(ai(regions=[f"r{i:02}" for i in range(17)]), "regions")


def test_more_than_64_allowlisted_providers_is_refused() -> None:
    validate(ai(allowlist=[bytes([i]) * 32 for i in range(64)]))
    rejects(ai(allowlist=[bytes([i]) * 32 for i in range(65)]), "allowlist")


def test_duplicate_regions_or_providers_are_refused() -> None:
    rejects(ai(regions=["eu", "eu"]), "regions")
    rejects(ai(allowlist=[b"\x01" * 32, b"\x01" * 32]), "allowlist")


def test_a_tier_above_three_is_refused() -> None:
    validate(ai(tier=3))
    rejects(ai(tier=4), "tier")


def test_a_circuit_that_does_not_parse_is_refused_by_its_parser() -> None:
    def broken(circuit: bytes) -> int:
        raise RequestError("circuit", "line 1: expected OPENQASM 2.0")

    with pytest.raises(RequestError) as info:
        validate_request(quantum(), P, PRICE, broken)
    assert info.value.field == "circuit"


# ---- the request map -----------------------------------------------------------------------------------


def test_keys_at_their_default_are_omitted_from_the_map() -> None:
    request = ai(deadline_blocks=14400, tee="optional", regions=[], allowlist=[])
    assert build_request_map(request, P) == ai()


def test_non_default_optional_keys_are_kept_with_lists_sorted() -> None:
    ids = [b"\x02" * 32, b"\x01" * 32]
    rmap = build_request_map(ai(deadline_blocks=10, tee="required", regions=["us", "eu"], allowlist=ids), P)
    assert rmap["deadline_blocks"] == 10
    assert rmap["tee"] == "required"
    assert rmap["regions"] == ["eu", "us"]
    assert rmap["allowlist"] == [b"\x01" * 32, b"\x02" * 32]


def test_the_payload_is_the_canonical_cbor_of_the_map() -> None:
    valid = validate(ai(regions=["us", "eu"]))
    assert valid.payload == cbor2.dumps(dict(valid.request_map), canonical=True)


def test_the_receipt_carries_spec_ids() -> None:
    valid = validate(ai())
    receipt = make_receipt(valid, chain_id=1337, height=9, tx_hash=b"\x11" * 32, caller=b"\x22" * 20)
    assert receipt.task_id == task_id(1337, 9, b"\x11" * 32, b"\x22" * 20, valid.payload)
    assert receipt.payload_hash == payload_hash(valid.payload)
    assert (receipt.kind, receipt.max_units_mu, receipt.escrow) == ("ai", valid.max_units_mu, valid.escrow)


# ---- max units and escrow ------------------------------------------------------------------------------

WEIGHTS = {"llama3-8b": 1000, "llama3-70b": 6500, "clip-vit-b": 300}


@given(st.sampled_from(sorted(WEIGHTS)), st.integers(1, 600_000), st.integers(15_000, 10**9))
def test_ai_max_units_and_escrow_follow_the_spec_formulas(model: str, runtime: int, fee: int) -> None:
    valid = validate(ai(model=model, max_runtime_ms=runtime, fee_per_unit=fee))
    max_units = runtime * WEIGHTS[model] * 11500 * 11000 // 10**11
    assert valid.max_units_mu == max_units
    assert valid.escrow == fee * max_units // 1000


@given(st.integers(1, 500_000), st.sampled_from([(5, 1000), (16, 1000), (17, 1500), (32, 1500), (33, 2000)]))
def test_quantum_max_units_and_escrow_follow_the_spec_formulas(shots: int, depth_weight: tuple[int, int]) -> None:
    depth, weight = depth_weight
    valid = validate_request(quantum(shots=shots), P, PRICE, lambda circuit: depth)
    assert valid.max_units_mu == shots * weight
    assert valid.escrow == 60_000 * shots * weight // 1000
    assert valid.depth == depth
