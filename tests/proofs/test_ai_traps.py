"""AI trap comparisons (SPEC §8): honest answers pass, every kind of wrong answer fails with a specific code.

The pure checks run on vectors and token ids built here; the last tests feed them real model output from the
coordinator's own re-execution (`reexecute_trap`), and skip, naming the package, where a model cannot load.
"""

import math
import os
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aicf.core.ids import output_digest
from aicf.proofs.ai_traps import (
    EMBEDDING_DIMS,
    TrapResult,
    check_embedding_trap,
    check_generation_output,
    check_generation_trap,
    check_output_digest,
    cosine_f64,
    decode_generation_output,
    encode_generation_output,
)
from aicf.proofs.verdict import RejectCode
from aicf.provider.models import ModelUnavailableError, TrapAnswer, reexecute_trap

MIN_BPS = 9900


def vec(values: "np.typing.ArrayLike") -> bytes:
    return bytes(np.asarray(values, dtype="<f4").tobytes())


def gaussian(seed: int, dims: int = EMBEDDING_DIMS) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(dims).astype(np.float32)


def assert_fails(result: TrapResult, code: RejectCode) -> None:
    assert not result.passed
    assert result.code is code, result.message
    reject = result.as_reject()
    assert reject is not None
    assert reject.code is code


# --- embeddings ---------------------------------------------------------------------------------------------


def test_identical_vectors_pass_with_full_cosine() -> None:
    v = vec(gaussian(1))
    result = check_embedding_trap(v, v, MIN_BPS)
    assert result.passed
    assert result.code is None
    assert result.as_reject() is None
    assert result.cosine_bps is not None
    assert result.cosine_bps >= 9999


def test_cosine_is_the_float64_index_order_sum() -> None:
    a, b = gaussian(2), gaussian(3)
    want = sum(float(x) * float(y) for x, y in zip(a, b, strict=True))
    na = sum(float(x) * float(x) for x in a)
    nb = sum(float(y) * float(y) for y in b)
    assert cosine_f64(a.astype(np.float64).tolist(), b.astype(np.float64).tolist()) == want / math.sqrt(na * nb)


def test_threshold_is_inclusive_at_min_cosine_bps() -> None:
    # e0 against (cos θ, sin θ) has cosine exactly cos θ up to float32 rounding; pick θ on each side of 0.99.
    e0 = np.zeros(EMBEDDING_DIMS, dtype=np.float32)
    e0[0] = 1.0
    for cosine, passes in ((0.9905, True), (0.9895, False)):
        other = np.zeros(EMBEDDING_DIMS, dtype=np.float32)
        other[0], other[1] = cosine, math.sqrt(1 - cosine * cosine)
        assert check_embedding_trap(vec(e0), vec(other), MIN_BPS).passed is passes


def test_unrelated_random_vector_fails_as_trap_failure() -> None:
    result = check_embedding_trap(vec(gaussian(4)), vec(gaussian(5)), MIN_BPS)
    assert_fails(result, RejectCode.TRAP_FAILURE)
    assert "expected >= 9900 bps" in result.message


def test_perturbed_vector_fails() -> None:
    base = gaussian(6)
    noise = gaussian(7) * 0.3  # a provider that adds noise instead of running the model
    assert_fails(check_embedding_trap(vec(base), vec(base + noise), MIN_BPS), RejectCode.TRAP_FAILURE)


def test_negated_vector_fails() -> None:
    base = gaussian(8)
    assert_fails(check_embedding_trap(vec(base), vec(-base), MIN_BPS), RejectCode.TRAP_FAILURE)


@pytest.mark.parametrize("size", [0, 4, EMBEDDING_DIMS * 4 - 1, EMBEDDING_DIMS * 4 + 4, EMBEDDING_DIMS * 8])
def test_wrong_length_is_malformed(size: int) -> None:
    result = check_embedding_trap(vec(gaussian(9)), b"\x00" * size, MIN_BPS)
    assert_fails(result, RejectCode.MALFORMED)
    assert f"got {size} bytes" in result.message


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_value_is_malformed(bad: float) -> None:
    values = gaussian(10)
    values[17] = bad
    result = check_embedding_trap(vec(gaussian(10)), vec(values), MIN_BPS)
    assert_fails(result, RejectCode.MALFORMED)
    assert "value 17" in result.message


def test_nan_with_a_custom_payload_is_malformed() -> None:
    raw = bytearray(vec(gaussian(11)))
    raw[0:4] = struct.pack("<I", 0x7FC0DEAD)  # a quiet NaN other than the default one
    assert_fails(check_embedding_trap(vec(gaussian(11)), bytes(raw), MIN_BPS), RejectCode.MALFORMED)


def test_zero_vector_fails() -> None:
    zero = vec(np.zeros(EMBEDDING_DIMS))
    assert_fails(check_embedding_trap(vec(gaussian(12)), zero, MIN_BPS), RejectCode.TRAP_FAILURE)
    assert_fails(check_embedding_trap(zero, vec(gaussian(12)), MIN_BPS), RejectCode.TRAP_FAILURE)


def test_bad_expected_vector_never_passes() -> None:
    assert_fails(check_embedding_trap(b"", vec(gaussian(13)), MIN_BPS), RejectCode.MALFORMED)


def test_extreme_float32_magnitudes_do_not_overflow() -> None:
    big = np.full(EMBEDDING_DIMS, np.finfo(np.float32).max, dtype=np.float32)
    tiny = np.full(EMBEDDING_DIMS, np.finfo(np.float32).smallest_subnormal, dtype=np.float32)
    assert check_embedding_trap(vec(big), vec(tiny), MIN_BPS).passed  # same direction, 10^83 apart in size


@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(1e-3, 1e3))
def test_scaling_a_vector_keeps_it_passing(seed: int, scale: float) -> None:
    base = gaussian(seed)
    scaled = (base * np.float32(scale)).astype(np.float32)
    assert check_embedding_trap(vec(base), vec(scaled), MIN_BPS).passed


@given(a=st.integers(0, 2**32 - 1), b=st.integers(0, 2**32 - 1))
def test_independent_random_vectors_fail(a: int, b: int) -> None:
    if a == b:
        return
    result = check_embedding_trap(vec(gaussian(a)), vec(gaussian(b)), MIN_BPS)
    assert_fails(result, RejectCode.TRAP_FAILURE)


@given(raw=st.binary(max_size=EMBEDDING_DIMS * 4 + 8))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    result = check_embedding_trap(vec(gaussian(14)), raw, MIN_BPS)
    assert result.passed is (result.code is None)


# --- generation ---------------------------------------------------------------------------------------------


def test_equal_token_ids_pass() -> None:
    assert check_generation_trap([7042, 30, 198], [7042, 30, 198]).passed
    assert check_generation_trap([], []).passed


def test_one_different_token_fails_naming_its_position() -> None:
    result = check_generation_trap([7042, 30, 198], [7042, 31, 198])
    assert_fails(result, RejectCode.TRAP_FAILURE)
    assert "token 1 expected 30, got 31" in result.message


@pytest.mark.parametrize("got", [[7042, 30], [7042, 30, 198, 198], []])
def test_shorter_or_longer_output_fails(got: list[int]) -> None:
    assert_fails(check_generation_trap([7042, 30, 198], got), RejectCode.TRAP_FAILURE)


@pytest.mark.parametrize("bad", [-1, 2**32, True, "7042", 1.0, None])
def test_non_token_values_are_malformed(bad: object) -> None:
    assert_fails(check_generation_trap([7042, 30], [7042, bad]), RejectCode.MALFORMED)


def test_generation_output_roundtrips() -> None:
    output = encode_generation_output([7042, 30, 70000], b" Paris.")
    assert decode_generation_output(output) == ((7042, 30, 70000), b" Paris.")
    assert check_generation_output([7042, 30, 70000], b" Paris.", output).passed


def test_same_ids_with_other_text_fail() -> None:
    output = encode_generation_output([7042, 30], b" Lyon.")
    assert_fails(check_generation_output([7042, 30], b" Paris.", output), RejectCode.TRAP_FAILURE)


@pytest.mark.parametrize(
    "output",
    [
        b"",
        b"\xa0",  # empty map
        encode_generation_output([1, 2], b"x") + b"\x00",  # trailing byte
        encode_generation_output([1, 2], b"x")[:-1],  # truncated
        bytes.fromhex("a2") + b"\x64text" + b"\x41x" + b"\x69token_ids" + b"\x82\x18\x01\x02",  # non-shortest 1
        bytes.fromhex("a2") + b"\x69token_ids" + b"\x80" + b"\x64text" + b"\x40",  # keys out of order
        bytes.fromhex("a2") + b"\x64text" + b"\x40" + b"\x69token_ids" + b"\x81\x1b" + (2**32).to_bytes(8, "big"),
        bytes.fromhex("a2") + b"\x64text" + b"\x40" + b"\x69token_ids" + b"\x9f\x01\xff",  # indefinite array
        bytes.fromhex("a2") + b"\x64text" + b"\x40" + b"\x69token_ids" + b"\x9a\xff\xff\xff\xff",  # huge count
        bytes.fromhex("a2") + b"\x64text" + b"\x60" + b"\x69token_ids" + b"\x80",  # text as a text string
    ],
)
def test_malformed_generation_output_is_rejected(output: bytes) -> None:
    assert isinstance(decode_generation_output(output), str)
    assert_fails(check_generation_output([1, 2], b"x", output), RejectCode.MALFORMED)


@given(raw=st.binary(max_size=64))
def test_arbitrary_generation_output_never_raises(raw: bytes) -> None:
    decoded = decode_generation_output(raw)
    if not isinstance(decoded, str):
        assert encode_generation_output(*decoded) == raw


@given(ids=st.lists(st.integers(0, 2**32 - 1), max_size=40), text=st.binary(max_size=40))
def test_any_generation_roundtrips(ids: list[int], text: bytes) -> None:
    assert decode_generation_output(encode_generation_output(ids, text)) == (tuple(ids), text)


# --- output digest ------------------------------------------------------------------------------------------


def test_output_digest_matches() -> None:
    output = encode_generation_output([1], b"a")
    assert check_output_digest(output, output_digest(output)).passed


def test_output_digest_mismatch_names_both_digests() -> None:
    output = encode_generation_output([1], b"a")
    claimed = output_digest(b"something else")
    result = check_output_digest(output, claimed)
    assert_fails(result, RejectCode.DIGEST_MISMATCH)
    assert output_digest(output).hex() in result.message
    assert claimed.hex() in result.message


# --- with the real models -----------------------------------------------------------------------------------


def _reexecute(model: str, prompt: bytes, max_tokens: int) -> TrapAnswer:
    try:
        return reexecute_trap(model, prompt, max_tokens)
    except ModelUnavailableError as exc:
        if os.environ.get("AICF_REQUIRE_MODELS") == "1":  # CI: a model that cannot load is a failure
            pytest.fail(f"{model} cannot load here: {exc} (AICF_REQUIRE_MODELS=1)")
        pytest.skip(f"{model} cannot load here: {exc}")


def test_real_embedding_trap_passes_honest_and_fails_cheats() -> None:
    answer = _reexecute("minilm-l6-v2", b"A man is playing a guitar on stage.", 0)
    honest = _reexecute("minilm-l6-v2", b"A man is playing a guitar on stage.", 0)
    assert check_embedding_trap(answer.output, honest.output, MIN_BPS).passed
    other = _reexecute("minilm-l6-v2", b"The committee approved the budget.", 0)
    assert_fails(check_embedding_trap(answer.output, other.output, MIN_BPS), RejectCode.TRAP_FAILURE)
    random = vec(gaussian(15))
    assert_fails(check_embedding_trap(answer.output, random, MIN_BPS), RejectCode.TRAP_FAILURE)
    assert_fails(check_embedding_trap(answer.output, answer.output[:-4], MIN_BPS), RejectCode.MALFORMED)
    assert check_output_digest(honest.output, output_digest(answer.output)).passed


@pytest.mark.slow
def test_real_generation_trap_passes_honest_and_fails_cheats() -> None:
    answer = _reexecute("smollm2-135m", b"The capital of France is", 8)
    honest = _reexecute("smollm2-135m", b"The capital of France is", 8)
    assert check_generation_output(answer.token_ids, answer.text, honest.output).passed
    assert check_output_digest(honest.output, output_digest(answer.output)).passed
    forged = encode_generation_output([(t + 1) % 49152 for t in answer.token_ids], answer.text)
    assert_fails(check_generation_output(answer.token_ids, answer.text, forged), RejectCode.TRAP_FAILURE)
    short = encode_generation_output(answer.token_ids[:-1], answer.text)
    assert_fails(check_generation_output(answer.token_ids, answer.text, short), RejectCode.TRAP_FAILURE)
