"""Every id of SPEC §1, each `H` with its own tag so no two uses can collide."""

import hashlib
from collections.abc import Mapping

from aicf.core.encoding import canonical_cbor, encode_fast_bytes, encode_fast_int, tagged_hash

TASK_TAG = "aicf/task/v1"
PAYLOAD_TAG = "aicf/payload/v1"
PROVIDER_TAG = "aicf/provider/v1"
LEASE_TAG = "aicf/lease/v1"
INPUT_TAG = "aicf/input/v1"
OUTPUT_TAG = "aicf/output/v1"
CIRCUIT_TAG = "aicf/circuit/v1"
PROOF_TAG = "aicf/proof/v1"
PAYOUT_TAG = "aicf/payout/v1"
EVIDENCE_TAG = "aicf/evidence/v1"
CLAIM_TAG = "aicf/claim/v1"
PARAMS_TAG = "aicf/params/v1"
BEACON_TAG = "aicf/beacon/v1"
TEE_TAG = "aicf/tee/v1"
TRAPSEED_TAG = "aicf/trapseed/v1"


_PAYLOAD_PREFIX = b"\x82" + canonical_cbor(PAYLOAD_TAG)


def payload_hash(payload: bytes) -> bytes:
    """H("aicf/payload/v1", payload), with the constant prefix pre-encoded (one per enqueue)."""
    return hashlib.sha3_256(_PAYLOAD_PREFIX + encode_fast_bytes(payload)).digest()


_TASK_PREFIX = b"\x86" + canonical_cbor(TASK_TAG)  # [tag, 5 fields]: the head and the tag never change


def task_id(chain_id: int, height: int, tx_hash: bytes, caller: bytes, payload: bytes) -> bytes:
    """task_id = H("aicf/task/v1", chain_id, height, tx_hash, caller, payload); caller is raw address bytes.

    The hot path of enqueue: the array head and tag are pre-encoded; a test pins it to `tagged_hash`.
    Integers outside 0..2^64 fall back to the generic encoder (negative ones encode as CBOR negative
    integers; ones beyond 64 bits raise EncodingError).
    """
    if not (0 <= chain_id < 2**64 and 0 <= height < 2**64):
        return tagged_hash(TASK_TAG, chain_id, height, tx_hash, caller, payload)
    return hashlib.sha3_256(
        b"".join(
            (
                _TASK_PREFIX,
                encode_fast_int(chain_id),
                encode_fast_int(height),
                encode_fast_bytes(tx_hash),
                encode_fast_bytes(caller),
                encode_fast_bytes(payload),
            )
        )
    ).digest()


def provider_id(ed25519_public_key: bytes) -> bytes:
    return tagged_hash(PROVIDER_TAG, ed25519_public_key)


def lease_id(task: bytes, provider: bytes, attempt: int) -> bytes:
    """Attempts count from 0."""
    return tagged_hash(LEASE_TAG, task, provider, attempt)


def input_digest(prompt: bytes) -> bytes:
    return tagged_hash(INPUT_TAG, prompt)


def output_digest(output: bytes) -> bytes:
    return tagged_hash(OUTPUT_TAG, output)


def circuit_digest(circuit: bytes) -> bytes:
    return tagged_hash(CIRCUIT_TAG, circuit)


def proof_id(version: int, kind: str, task: bytes, lease: bytes, provider: bytes, body: Mapping[str, object]) -> bytes:
    return tagged_hash(PROOF_TAG, version, kind, task, lease, provider, body)


_PROOF_PREFIX = b"\x87" + canonical_cbor(PROOF_TAG)


def proof_id_of_encoded(version: int, kind: str, task: bytes, lease: bytes, provider: bytes, body_cbor: bytes) -> bytes:
    """`proof_id` of a body already in canonical CBOR (parse_envelope encodes it to check its size): a list's
    encoding is its head followed by its items' encodings, so the body need not be encoded again."""
    items = b"".join(canonical_cbor(x) for x in (version, kind, task, lease, provider))
    return hashlib.sha3_256(_PROOF_PREFIX + items + body_cbor).digest()


_PAYOUT_PREFIX = b"\x83" + canonical_cbor(PAYOUT_TAG)


def payout_id_prefix(epoch: int) -> bytes:
    """The bytes payout_id hashes before a 32-byte task id: settlement hashes a million ids per epoch."""
    return _PAYOUT_PREFIX + encode_fast_int(epoch) + b"\x58\x20"


def payout_id(epoch: int, task: bytes) -> bytes:
    """H("aicf/payout/v1", epoch, task_id); on settlement's hot path, so the constant prefix is pre-encoded."""
    if not 0 <= epoch < 2**64:
        return tagged_hash(PAYOUT_TAG, epoch, task)
    return hashlib.sha3_256(_PAYOUT_PREFIX + encode_fast_int(epoch) + encode_fast_bytes(task)).digest()


def evidence_hash(evidence: Mapping[str, object]) -> bytes:
    return tagged_hash(EVIDENCE_TAG, evidence)


def claim_id(provider: bytes, nonce: int) -> bytes:
    return tagged_hash(CLAIM_TAG, provider, nonce)


def beacon_of(parent_beacon: bytes, height: int) -> bytes:
    """The devnet beacon (SPEC §10). Predictable: for tests only."""
    return tagged_hash(BEACON_TAG, parent_beacon, height)


def tee_report_data(task: bytes, model_digest: bytes, input_dig: bytes, output_dig: bytes, provider: bytes) -> bytes:
    """The 32 bytes a TEE report must carry (followed by zero bytes) to bind the work (SPEC §8)."""
    return tagged_hash(TEE_TAG, task, model_digest, input_dig, output_dig, provider)


def trap_seed_commitment(seed: bytes) -> bytes:
    return tagged_hash(TRAPSEED_TAG, seed)
