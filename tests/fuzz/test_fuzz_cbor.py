"""Issue 15 item 4: the CBOR decoders that read outside input, fuzzed. Each one returns a value or raises its own
specific error (UntrustedCborError, DecodingError, TxError); nothing else escapes, and what decodes is what was sent.

The inputs are arbitrary bytes, cbor2 encodings of arbitrary values (tags, floats, indefinite lengths, shared
references included) and single-byte mutations, truncations and splices of valid encodings."""

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from proofs.test_untrusted_cbor import shared_reference_bomb

from aicf.core.cbor_limits import CborLimits, UntrustedCborError
from aicf.core.chain import TxKind
from aicf.core.encoding import canonical_cbor, decode_canonical
from aicf.core.errors import AicfError, DecodingError
from aicf.core.txs import SignedTx, TxError, check_tx_shape, decode_signed_tx, encode_signed_tx
from aicf.proofs.untrusted import decode_untrusted
from fuzz.scaffold import fuzz_settings, outcome

FUZZ = fuzz_settings(full=3000, fast=50)
PROPERTY = fuzz_settings(full=100, fast=20)
LIMITS = CborLimits(max_bytes=4096, max_items=500, max_depth=8, allowed_tags=frozenset({24}))

leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.binary(max_size=40)
    | st.text(max_size=20)
)
cbor_values = st.recursive(
    leaves,
    lambda kids: (
        st.lists(kids, max_size=5)
        | st.dictionaries(st.text(max_size=8) | st.integers(-5, 5), kids, max_size=5)
        | st.builds(cbor2.CBORTag, st.sampled_from([0, 1, 2, 24, 28, 29, 55799, 2**40]), kids)
    ),
    max_leaves=20,
)
canonical_values = st.recursive(
    st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.binary(max_size=40) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8), kids, max_size=5),
    max_leaves=20,
)


def _encode_any(value: object) -> bytes:
    try:
        return cbor2.dumps(value)
    except (cbor2.CBOREncodeError, ValueError, TypeError, OverflowError):
        return b"\xf6"


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[bytes]) -> bytes:
    """A valid encoding with one of: a flipped byte, a truncation, an inserted byte, a splice of two encodings."""
    data = draw(valid)
    if not data:
        return data
    how = draw(st.sampled_from(["flip", "truncate", "insert", "splice", "as is"]))
    i = draw(st.integers(0, len(data) - 1))
    if how == "flip":
        return data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
    if how == "truncate":
        return data[:i]
    if how == "insert":
        return data[:i] + bytes([draw(st.integers(0, 255))]) + data[i:]
    if how == "splice":
        return data[:i] + draw(valid)[i:]
    return data


untrusted_inputs = st.binary(max_size=200) | mutated(cbor_values.map(_encode_any))
canonical_inputs = st.binary(max_size=200) | mutated(canonical_values.map(canonical_cbor))


@FUZZ
@given(data=untrusted_inputs)
def test_decode_untrusted_returns_a_value_or_refuses_with_a_reason(data: bytes) -> None:
    value = outcome(lambda: decode_untrusted(data, LIMITS, "envelope"), UntrustedCborError)
    if isinstance(value, UntrustedCborError):
        assert value.what == "envelope"
        assert value.reason
        return
    assert len(data) <= LIMITS.max_bytes
    assert repr(cbor2.loads(data)) == repr(value)  # the scan let through one item, read as cbor2 reads it (repr: NaN)


@PROPERTY
@given(depth=st.integers(1, 40))
def test_shared_reference_bombs_of_any_depth_are_refused_by_the_scan(depth: int) -> None:
    with pytest.raises(UntrustedCborError, match="tag 28 is not allowed"):
        decode_untrusted(shared_reference_bomb(depth), CborLimits(), "envelope")


@FUZZ
@given(data=canonical_inputs)
def test_decode_canonical_accepts_only_what_it_reencodes_byte_for_byte(data: bytes) -> None:
    value = outcome(lambda: decode_canonical(data, max_items=500, max_depth=8), DecodingError)
    if isinstance(value, DecodingError):
        assert value.where.startswith("cbor")
        assert value.reason
        return
    assert canonical_cbor(value) == data


@PROPERTY
@given(value=canonical_values)
def test_every_canonical_value_decodes_to_itself(value: object) -> None:
    assert decode_canonical(canonical_cbor(value), max_items=10_000, max_depth=64) == value


bodies = st.dictionaries(st.sampled_from(["amount", "task_id", "to", "request", "x"]), canonical_values, max_size=4)
txs = st.builds(
    SignedTx,
    chain_id=st.integers(0, 2**64 - 1),
    public_key=st.binary(max_size=40),
    nonce=st.integers(0, 2**64 - 1),
    kind=st.sampled_from(list(TxKind)),
    body=bodies,
    sig=st.binary(max_size=70),
)
tx_inputs = st.binary(max_size=300) | mutated(txs.map(encode_signed_tx)) | mutated(canonical_values.map(canonical_cbor))


@FUZZ
@given(data=tx_inputs)
def test_decode_signed_tx_returns_a_transaction_or_a_tx_error(data: bytes) -> None:
    tx = outcome(lambda: decode_signed_tx(data), TxError)
    if isinstance(tx, TxError):
        assert str(tx)
        return
    assert encode_signed_tx(tx) == data
    shape = outcome(lambda: check_tx_shape(tx), AicfError)  # a shape refusal is a specific error with a message
    assert shape is None or str(shape)
    tx.tx_hash()
    tx.signing_digest()
