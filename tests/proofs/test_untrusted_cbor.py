"""The bounded decoder for CBOR from outside (issue 15): shared-reference bombs, budgets, lying lengths."""

import time

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aicf.core.cbor_limits import (
    ENVELOPE_CBOR_LIMITS,
    EVIDENCE_CBOR_LIMITS,
    CborLimits,
    UntrustedCborError,
    scan_cbor,
)
from aicf.core.encoding import canonical_cbor
from aicf.proofs.untrusted import decode_untrusted


def shared_reference_bomb(levels: int) -> bytes:
    """Each level is a shareable (tag 28) pair of the next level and a sharedref (tag 29) to it: a few bytes a
    level, and the decoded value doubles with every level."""
    inner = b"\xd8\x1c\x82\x00\x00"
    for k in range(levels - 1, -1, -1):
        inner = b"\xd8\x1c\x82" + inner + b"\xd8\x1d" + canonical_cbor(k + 1)
    return inner


def test_the_380_byte_shared_reference_bomb_is_refused_quickly_naming_tag_28() -> None:
    bomb = shared_reference_bomb(60)
    assert 350 <= len(bomb) <= 420
    started = time.perf_counter()
    with pytest.raises(UntrustedCborError, match="CBOR tag 28 is not allowed"):
        decode_untrusted(bomb, ENVELOPE_CBOR_LIMITS, "envelope")
    assert time.perf_counter() - started < 0.05


def test_shared_reference_tags_are_refused_even_when_a_caller_allows_them() -> None:
    limits = CborLimits(allowed_tags=frozenset({28, 29}))
    with pytest.raises(UntrustedCborError, match="tag 29"):
        scan_cbor(b"\xd8\x1d\x00", limits, "x")


def test_the_item_budget_stops_the_scan_before_anything_is_decoded() -> None:
    data = canonical_cbor(list(range(1000)))
    with pytest.raises(UntrustedCborError, match="more than 100 data items"):
        scan_cbor(data, CborLimits(max_items=100), "x")


def test_the_byte_budget_is_checked_first() -> None:
    with pytest.raises(UntrustedCborError, match="at most 10"):
        scan_cbor(canonical_cbor(b"x" * 20), CborLimits(max_bytes=10), "x")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x5b\x7f\xff\xff\xff\xff\xff\xff\xff", "runs past the end"),  # a 2^63-byte string in 9 bytes
        (b"\x9b\x00\x00\x00\x01\x00\x00\x00\x00", "runs past the end"),  # an array of 2^32 items
        (b"\x01\x02", "1 bytes after the CBOR item"),
        (b"\x82\x81\x01", "truncated"),
        (b"\xff", "break"),
        (b"\x1c", "reserved"),
        (b"\x5f\x61a\xff", "definite chunks"),  # a text chunk in an indefinite byte string
        (b"\x81" * 40 + b"\x00", "nested deeper"),
        (b"", "empty"),
        (b"\xc1\x00", "tag 1 is not allowed"),
    ],
)
def test_malformed_or_lying_cbor_is_refused_with_the_rule_it_broke(data: bytes, reason: str) -> None:
    with pytest.raises(UntrustedCborError, match=reason):
        decode_untrusted(data, ENVELOPE_CBOR_LIMITS, "x")


def test_allowed_tags_pass_for_evidence() -> None:
    cose = cbor2.dumps(cbor2.CBORTag(18, [b"\xa0", {}, b"payload", b"sig"]))
    value = decode_untrusted(cose, EVIDENCE_CBOR_LIMITS, "evidence")
    assert isinstance(value, cbor2.CBORTag)
    assert value.tag == 18


values = st.recursive(
    st.integers(-(2**63), 2**63 - 1) | st.binary(max_size=40) | st.text(max_size=20) | st.booleans(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@given(value=values)
def test_every_canonical_value_round_trips_through_the_bounded_decoder(value: object) -> None:
    data = canonical_cbor(value)
    assert canonical_cbor(decode_untrusted(data, ENVELOPE_CBOR_LIMITS, "x")) == data


@given(value=values)
def test_indefinite_length_encodings_scan_like_cbor2_decodes(value: object) -> None:
    data = cbor2.dumps(value)
    assert decode_untrusted(data, ENVELOPE_CBOR_LIMITS, "x") == cbor2.loads(data)


@given(data=st.binary(max_size=64))
def test_arbitrary_bytes_are_decoded_as_cbor2_would_or_refused_with_untrusted_cbor_error(data: bytes) -> None:
    try:
        value = decode_untrusted(data, ENVELOPE_CBOR_LIMITS, "x")
    except UntrustedCborError:
        return
    assert repr(value) == repr(cbor2.loads(data))  # repr: a NaN float is not equal to itself


@given(value=values, cut=st.integers(1, 8))
def test_a_truncated_canonical_item_is_refused(value: object, cut: int) -> None:
    data = canonical_cbor(value)
    if len(data) > cut:
        with pytest.raises(UntrustedCborError):
            scan_cbor(data[:-cut], ENVELOPE_CBOR_LIMITS, "x")
