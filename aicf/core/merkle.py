"""The Merkle root of SPEC §1: leaves in list order, pairs left to right, an odd last node carried up."""

import hashlib
from collections.abc import Iterable

from aicf.core.encoding import canonical_cbor, cbor_head, tagged_hash

LEAF_TAG = "aicf/leaf/v1"
NODE_TAG = "aicf/node/v1"
EMPTY_TAG = "aicf/empty/v1"

# H(tag, x) hashes canonical_cbor([tag, x]); the array head and the tag's encoding never change, so they are
# encoded once here. tests/core/test_merkle.py checks these fast forms against `tagged_hash` byte for byte.
LEAF_PREFIX = b"\x82" + canonical_cbor(LEAF_TAG)  # [tag, item]: the item's bytes head follows
_NODE_PREFIX = b"\x83" + canonical_cbor(NODE_TAG) + b"\x58\x20"  # both children are 32-byte hashes
_BYTES32_HEAD = b"\x58\x20"
_sha3 = hashlib.sha3_256


def leaf_hash(item: bytes) -> bytes:
    return _sha3(LEAF_PREFIX + cbor_head(2, len(item)) + item).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    if len(left) == 32 and len(right) == 32:
        return _sha3(_NODE_PREFIX + left + _BYTES32_HEAD + right).digest()
    return tagged_hash(NODE_TAG, left, right)


def root_of_leaf_hashes(level: list[bytes]) -> bytes:
    """The root over already-hashed leaves (settlement hashes its payouts as it builds them)."""
    if not level:
        return tagged_hash(EMPTY_TAG)
    sha3, prefix, head = _sha3, _NODE_PREFIX, _BYTES32_HEAD
    while len(level) > 1:
        if all(len(h) == 32 for h in level):  # leaf and node hashes always are: the pre-encoded form
            paired = [sha3(prefix + level[i] + head + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        else:
            paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])  # an odd last node is carried up unchanged
        level = paired
    return level[0]


def merkle_root(items: Iterable[bytes]) -> bytes:
    """Root over the items' bytes; the root of no items is H("aicf/empty/v1")."""
    return root_of_leaf_hashes([leaf_hash(item) for item in items])
