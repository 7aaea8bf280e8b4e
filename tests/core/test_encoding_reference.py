"""SPEC §1 checked against independent references: cbor2's canonical mode, hashlib's SHA3-256, hand-built trees.

Nothing here trusts the core's own encoder to compute an expected value: expected bytes come from
`cbor2.dumps(obj, canonical=True)` (the encoder SPEC §1 names) and `hashlib.sha3_256`.
"""

import hashlib
import random
from typing import Any

import cbor2
import pytest
from budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from aicf.core import ids, merkle
from aicf.core.encoding import Encoded, canonical_cbor, encode_fast_int, from_hex, hash_int, tagged_hash, to_hex
from aicf.core.errors import EncodingError
from aicf.core.params import Params, params_hash
from aicf.core.settlement import Payout


def ref_h(tag: str, *fields: object) -> bytes:
    """SPEC §1's H, from cbor2 and hashlib alone."""
    return hashlib.sha3_256(cbor2.dumps([tag, *fields], canonical=True)).digest()


INT64 = st.integers(min_value=-(2**64), max_value=2**64 - 1)
U64 = st.integers(min_value=0, max_value=2**64 - 1)
SCALARS = st.one_of(INT64, st.binary(max_size=300), st.text(max_size=40), st.booleans())
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=30), inner, max_size=6),
    ),
    max_leaves=25,
)


# ---- canonical CBOR ----------------------------------------------------------------------------------


@pytest.mark.slow
@given(VALUES)
def test_canonical_cbor_matches_cbor2_canonical_byte_for_byte(value: object) -> None:
    assert canonical_cbor(value) == cbor2.dumps(value, canonical=True)


@given(VALUES, st.text(max_size=30))
def test_an_encoded_part_is_emitted_as_the_encoding_of_the_value_it_holds(value: object, key: str) -> None:
    whole = {key: value, "list": [value, 1]}
    held = {key: Encoded(canonical_cbor(value)), "list": [Encoded(canonical_cbor(value)), 1]}
    assert canonical_cbor(held) == canonical_cbor(whole)


@pytest.mark.parametrize(
    "n",
    [0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1, -1, -24, -25, -256, -257, -(2**64)],
)
def test_integer_heads_are_shortest_at_every_boundary(n: int) -> None:
    assert canonical_cbor(n) == cbor2.dumps(n, canonical=True)


@pytest.mark.parametrize("length", [0, 23, 24, 255, 256, 65535, 65536])
def test_byte_and_text_lengths_are_shortest_at_every_boundary(length: int) -> None:
    assert canonical_cbor(b"\x01" * length) == cbor2.dumps(b"\x01" * length, canonical=True)
    assert canonical_cbor("a" * length) == cbor2.dumps("a" * length, canonical=True)


def test_map_keys_sort_shorter_first_then_bytewise() -> None:
    # RFC 8949 §4.2.1 as SPEC §1 states it: "b" (1 byte) before "aa", "aa" before "ab".
    assert canonical_cbor({"ab": 3, "b": 1, "aa": 2}) == bytes.fromhex("a3" + "616201" + "62616102" + "62616203")


def test_map_keys_of_24_bytes_and_more_sort_after_shorter_ones() -> None:
    value = {"z" * 23: 1, "a" * 24: 2, "b": 3, "é": 4}
    assert canonical_cbor(value) == cbor2.dumps(value, canonical=True)


@given(st.dictionaries(st.text(max_size=30), SCALARS, max_size=8), st.randoms(use_true_random=False))
def test_a_map_shape_seen_before_encodes_alike_in_any_key_order(value: dict[str, object], rnd: random.Random) -> None:
    # the encoder keeps each shape's canonical key order: a shuffled copy must hit it and still match cbor2
    keys = list(value)
    rnd.shuffle(keys)
    shuffled = {key: value[key] for key in keys}
    assert canonical_cbor(value) == canonical_cbor(shuffled) == cbor2.dumps(value, canonical=True)


def test_subclasses_of_the_admitted_kinds_encode_as_their_base_kind() -> None:
    class Name(str):
        pass

    class Count(int):
        pass

    value = {Name("kind"): Name("ai"), "n": Count(300), "m": {"kind": 1}, "t": (True, False, bytearray(b"x"))}
    plain = {"kind": "ai", "n": 300, "m": {"kind": 1}, "t": [True, False, b"x"]}
    assert canonical_cbor(value) == canonical_cbor(plain) == cbor2.dumps(plain, canonical=True)


def test_map_shapes_with_long_keys_are_encoded_right_but_not_kept() -> None:
    from aicf.core import encoding

    value = {"k" * 600: 1, "a": b"x"}
    assert canonical_cbor(value) == canonical_cbor(value) == cbor2.dumps(value, canonical=True)
    assert tuple(value) not in encoding._MAP_ORDERS  # a shape's keys are kept only up to 512 bytes
    assert "k" * 600 not in encoding._KEY_CACHE  # nor is a long key's encoding


def test_a_non_text_key_is_refused_even_beside_a_shape_already_seen() -> None:
    canonical_cbor({"a": 1, "b": 2})
    with pytest.raises(EncodingError):
        canonical_cbor({"a": 1, 2: 2})


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (1.0, "$"),
        (None, "$"),
        ([1, 2.5], "$[1]"),
        ({"a": None}, "$.a"),
        ({"a": {"b": [0.0]}}, "$.a.b[0]"),
        ({1: "x"}, "$"),
        ({b"k": 1}, "$"),
        ({"a": {2: 1}}, "$.a"),
        ({1, 2}, "$"),
        (2**64, "$"),
        (-(2**64) - 1, "$"),
    ],
)
def test_values_spec_does_not_admit_raise_encoding_error_naming_the_path(value: object, path: str) -> None:
    with pytest.raises(EncodingError) as info:
        canonical_cbor(value)
    assert info.value.path == path


def test_bool_encodes_as_a_cbor_simple_value_not_an_integer() -> None:
    assert canonical_cbor(True) == b"\xf5"
    assert canonical_cbor(False) == b"\xf4"
    assert canonical_cbor([True, 1]) == cbor2.dumps([True, 1], canonical=True)


# ---- the tagged hash H ---------------------------------------------------------------------------------


@given(st.text(max_size=30), st.lists(SCALARS, max_size=5))
def test_tagged_hash_is_sha3_256_of_the_canonical_array(tag: str, fields: list[Any]) -> None:
    assert tagged_hash(tag, *fields) == ref_h(tag, *fields)


def test_tagged_hash_is_fips_sha3_not_keccak() -> None:
    # canonical_cbor(["a"]) = 0x81 0x61 0x61; the expected digest is FIPS 202 SHA3-256 of those three bytes.
    assert tagged_hash("a") == hashlib.sha3_256(b"\x81\x61\x61").digest()
    assert hashlib.sha3_256(b"").hexdigest().startswith("a7ffc6f8")  # SHA3; Keccak-256("") starts c5d24601


def test_hash_int_reads_big_endian_unsigned() -> None:
    assert hash_int(b"\x00" * 31 + b"\x01") == 1
    assert hash_int(b"\xff" + b"\x00" * 31) == 255 << 248


@given(st.binary(max_size=64))
def test_hex_round_trips_with_a_0x_prefix(raw: bytes) -> None:
    assert to_hex(raw) == "0x" + raw.hex()
    assert from_hex(to_hex(raw)) == raw


# ---- every id of SPEC §1 uses its own tag ------------------------------------------------------------

SPEC_TAGS = [
    "aicf/payload/v1",
    "aicf/task/v1",
    "aicf/provider/v1",
    "aicf/lease/v1",
    "aicf/input/v1",
    "aicf/output/v1",
    "aicf/circuit/v1",
    "aicf/proof/v1",
    "aicf/payout/v1",
    "aicf/evidence/v1",
    "aicf/leaf/v1",
    "aicf/node/v1",
    "aicf/empty/v1",
    "aicf/assign/v1",
    "aicf/claim/v1",
    "aicf/params/v1",
    "aicf/beacon/v1",
    "aicf/tee/v1",
    "aicf/trapseed/v1",
    "aicf/trap/v1",
    "aicf/qtrap/v1",
    "aicf/rpc/v1",
]
B32 = st.binary(min_size=32, max_size=32)


@given(chain_id=INT64, height=INT64, tx_hash=st.binary(max_size=40), caller=st.binary(max_size=40), payload=st.binary())
def test_task_id_fast_path_equals_the_generic_tagged_hash(
    chain_id: int, height: int, tx_hash: bytes, caller: bytes, payload: bytes
) -> None:
    expected = ref_h("aicf/task/v1", chain_id, height, tx_hash, caller, payload)
    assert ids.task_id(chain_id, height, tx_hash, caller, payload) == expected


def test_task_id_of_an_integer_beyond_64_bits_raises_encoding_error() -> None:
    with pytest.raises(EncodingError):
        ids.task_id(2**64, 0, b"", b"", b"")


TASK_FIELD_STRATEGIES = (U64, U64, st.binary(max_size=33), st.binary(max_size=33), st.binary(max_size=80))
TASK_FIELDS = st.tuples(*TASK_FIELD_STRATEGIES)


@given(TASK_FIELDS, TASK_FIELDS)
def test_distinct_fields_give_distinct_task_ids(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    assert (ids.task_id(*a) == ids.task_id(*b)) == (a == b)


@given(TASK_FIELDS, st.integers(0, 4), st.data())
def test_changing_any_one_field_changes_the_task_id(fields: tuple[Any, ...], index: int, data: st.DataObject) -> None:
    other = data.draw(TASK_FIELD_STRATEGIES[index].filter(lambda v: v != fields[index]))
    changed = list(fields)
    changed[index] = other
    assert ids.task_id(*fields) != ids.task_id(*changed)


def test_caller_bytes_are_hashed_raw_not_as_hex_text() -> None:
    caller = bytes.fromhex("b2a5e5fe3fec82eeda5d18d7aad24c15fc0233b5")
    assert ids.task_id(1, 2, b"t", caller, b"p") == ref_h("aicf/task/v1", 1, 2, b"t", caller, b"p")
    assert ids.task_id(1, 2, b"t", caller, b"p") != ref_h("aicf/task/v1", 1, 2, b"t", to_hex(caller), b"p")


@given(B32, B32, B32, st.integers(0, 2**63 - 1), st.binary(max_size=40))
def test_every_id_function_is_h_with_its_spec_tag(a: bytes, b: bytes, c: bytes, n: int, raw: bytes) -> None:
    body = {"x": n, "y": raw}
    assert ids.payload_hash(raw) == ref_h("aicf/payload/v1", raw)
    assert ids.provider_id(raw) == ref_h("aicf/provider/v1", raw)
    assert ids.lease_id(a, b, n) == ref_h("aicf/lease/v1", a, b, n)
    assert ids.input_digest(raw) == ref_h("aicf/input/v1", raw)
    assert ids.output_digest(raw) == ref_h("aicf/output/v1", raw)
    assert ids.circuit_digest(raw) == ref_h("aicf/circuit/v1", raw)
    assert ids.proof_id(1, "AI_V1", a, b, c, body) == ref_h("aicf/proof/v1", 1, "AI_V1", a, b, c, body)
    assert ids.proof_id_of_encoded(1, "AI_V1", a, b, c, canonical_cbor(body)) == ids.proof_id(1, "AI_V1", a, b, c, body)
    assert ids.payout_id(n, a) == ref_h("aicf/payout/v1", n, a)
    assert ids.evidence_hash(body) == ref_h("aicf/evidence/v1", body)
    assert ids.claim_id(a, n) == ref_h("aicf/claim/v1", a, n)
    assert ids.beacon_of(a, n) == ref_h("aicf/beacon/v1", a, n)
    assert ids.tee_report_data(a, b, c, a, b) == ref_h("aicf/tee/v1", a, b, c, a, b)
    assert ids.trap_seed_commitment(raw) == ref_h("aicf/trapseed/v1", raw)


def test_params_hash_is_h_over_the_whole_params_map() -> None:
    p = Params.default()
    assert params_hash(p) == ref_h("aicf/params/v1", p.to_map())


@given(st.lists(SCALARS, min_size=1, max_size=4))
def test_ids_with_different_tags_never_collide_for_the_same_fields(fields: list[Any]) -> None:
    digests = {ref_h(tag, *fields) for tag in SPEC_TAGS}
    assert len(digests) == len(SPEC_TAGS)
    # and the core's tag constants are exactly SPEC's strings, one per use
    core_tags = [getattr(ids, n) for n in dir(ids) if n.endswith("_TAG")]
    core_tags += [merkle.LEAF_TAG, merkle.NODE_TAG, merkle.EMPTY_TAG]
    assert len(core_tags) == len(set(core_tags))
    assert set(core_tags) <= set(SPEC_TAGS)


def test_devnet_genesis_beacon_hashes_from_32_zero_bytes() -> None:
    assert ids.beacon_of(b"\x00" * 32, 1) == ref_h("aicf/beacon/v1", b"\x00" * 32, 1)


# ---- Merkle root ---------------------------------------------------------------------------------------


def ref_leaf(item: bytes) -> bytes:
    return ref_h("aicf/leaf/v1", item)


def ref_node(left: bytes, right: bytes) -> bytes:
    return ref_h("aicf/node/v1", left, right)


def test_merkle_root_of_no_items_is_h_of_the_empty_tag() -> None:
    assert merkle.merkle_root([]) == ref_h("aicf/empty/v1")
    assert merkle.merkle_root([]) == hashlib.sha3_256(cbor2.dumps(["aicf/empty/v1"])).digest()


def test_merkle_root_of_one_item_is_its_leaf_hash() -> None:
    assert merkle.merkle_root([b"a"]) == ref_leaf(b"a")


def test_merkle_root_of_two_items_is_their_node() -> None:
    assert merkle.merkle_root([b"a", b"b"]) == ref_node(ref_leaf(b"a"), ref_leaf(b"b"))


def test_merkle_root_of_three_items_carries_the_odd_leaf_up_unchanged() -> None:
    a, b, c = (ref_leaf(x) for x in (b"a", b"b", b"c"))
    assert merkle.merkle_root([b"a", b"b", b"c"]) == ref_node(ref_node(a, b), c)


def test_merkle_root_of_five_items_carries_the_odd_node_up_twice() -> None:
    a, b, c, d, e = (ref_leaf(x) for x in (b"a", b"b", b"c", b"d", b"e"))
    assert merkle.merkle_root([b"a", b"b", b"c", b"d", b"e"]) == ref_node(ref_node(ref_node(a, b), ref_node(c, d)), e)


def test_merkle_root_depends_on_item_order() -> None:
    assert merkle.merkle_root([b"a", b"b"]) != merkle.merkle_root([b"b", b"a"])


def test_merkle_empty_item_is_not_the_empty_list() -> None:
    assert merkle.merkle_root([b""]) != merkle.merkle_root([])


def ref_root(items: list[bytes]) -> bytes:
    level = [ref_leaf(i) for i in items]
    if not level:
        return ref_h("aicf/empty/v1")
    while len(level) > 1:
        nxt = [ref_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


@given(st.lists(st.binary(max_size=40), max_size=40))
def test_merkle_root_matches_a_reference_built_from_cbor2(items: list[bytes]) -> None:
    assert merkle.merkle_root(items) == ref_root(items)


@given(st.binary(max_size=300))
def test_leaf_hash_fast_path_equals_tagged_hash(item: bytes) -> None:
    assert merkle.leaf_hash(item) == ref_leaf(item)


@given(st.binary(max_size=40), st.binary(max_size=40))
def test_node_hash_equals_tagged_hash_for_any_child_lengths(left: bytes, right: bytes) -> None:
    assert merkle.node_hash(left, right) == ref_node(left, right)


@given(B32, B32)
def test_node_hash_fast_path_equals_tagged_hash_for_32_byte_children(left: bytes, right: bytes) -> None:
    assert merkle.node_hash(left, right) == ref_node(left, right)


# ---- the payout encoding fast path -------------------------------------------------------------------

AMOUNT = st.integers(0, 2**63 - 1)


@given(
    st.tuples(B32, B32, B32, B32, B32, B32),
    st.tuples(AMOUNT, AMOUNT, AMOUNT, AMOUNT, AMOUNT, AMOUNT, AMOUNT, AMOUNT, AMOUNT),
)
def test_payout_encode_fast_path_equals_canonical_cbor_of_its_map(
    id_fields: tuple[bytes, ...], amounts: tuple[int, ...]
) -> None:
    pid, task, prov, miner, proof, ph = id_fields
    epoch, units, rate, price, reward, provider, miner_share, fund, charged = amounts
    payout = Payout(
        payout_id=pid,
        epoch=epoch,
        task_id=task,
        provider_id=prov,
        miner_id=miner,
        proof_id=proof,
        units_mu=units,
        base_rate=rate,
        price_bps=price,
        reward=reward,
        provider=provider,
        miner=miner_share,
        fund=fund,
        charged=charged,
        params_hash=ph,
    )
    assert payout.encode() == cbor2.dumps(payout.to_map(), canonical=True)
    assert payout.encode() == canonical_cbor(payout.to_map())


def test_payout_map_has_exactly_the_spec_fields() -> None:
    spec = {
        "payout_id",
        "epoch",
        "task_id",
        "provider_id",
        "miner_id",
        "proof_id",
        "units_mu",
        "base_rate",
        "price_bps",
        "reward",
        "provider",
        "miner",
        "fund",
        "charged",
        "params_hash",
    }
    assert set(Payout._fields) == spec


@given(INT64, st.binary(max_size=40))
def test_payout_id_fast_path_equals_the_generic_tagged_hash(epoch: int, task: bytes) -> None:
    assert ids.payout_id(epoch, task) == ref_h("aicf/payout/v1", epoch, task)


@given(st.integers(0, 2**64 - 1))
def test_fast_integer_encoding_equals_cbor2(n: int) -> None:
    assert encode_fast_int(n) == cbor2.dumps(n, canonical=True)


@pytest.mark.slow
@settings(max_examples=examples(400))
@given(VALUES)
def test_canonical_cbor_matches_cbor2_over_many_values(value: object) -> None:
    assert canonical_cbor(value) == cbor2.dumps(value, canonical=True)
