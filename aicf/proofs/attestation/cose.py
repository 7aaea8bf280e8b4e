"""A small COSE_Sign1 verifier (RFC 9052 §4.4) for ES384, enough for AWS Nitro and Arm CCA tokens.

Written on `cryptography` and `cbor2` directly: the signature is raw r||s and covers
`canonical_cbor(["Signature1", protected, external_aad, payload])` with the protected header as its original bytes.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from aicf.core.cbor_limits import EVIDENCE_CBOR_LIMITS, UntrustedCborError
from aicf.proofs.attestation.chain import ecdsa_verify
from aicf.proofs.attestation.result import bad, malformed
from aicf.proofs.untrusted import decode_untrusted

COSE_SIGN1_TAG = 18
ALG_ES384 = -35
ES384_SIG_SIZE = 96
HEADER_ALG = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class CoseSign1:
    protected: bytes
    alg: int
    payload: bytes
    signature: bytes


def decode_cbor(data: bytes, what: str) -> object:
    """Decode exactly one CBOR item; trailing bytes are MALFORMED (cbor2.loads would ignore them)."""
    try:  # a bounded structural scan first: no shared references (tags 28/29), a budget of items and bytes
        return decode_untrusted(data, EVIDENCE_CBOR_LIMITS, what)
    except UntrustedCborError as exc:
        raise malformed(f"{what}: CBOR refused: {exc.reason}") from exc


def parse_cose_sign1(data: bytes, what: str, *, allow_tag: bool) -> CoseSign1:
    """Raises AttestationError(MALFORMED) unless `data` is a COSE_Sign1 with an attached payload and an alg."""
    item = decode_cbor(data, what)
    if isinstance(item, cbor2.CBORTag):
        if not allow_tag or item.tag != COSE_SIGN1_TAG:
            raise malformed(f"{what}: unexpected CBOR tag {item.tag}")
        item = item.value
    if not isinstance(item, list | tuple) or len(item) != 4:
        raise malformed(f"{what}: expected a 4-element COSE_Sign1 array")
    protected, unprotected, payload, signature = item
    if not isinstance(protected, bytes) or not isinstance(payload, bytes) or not isinstance(signature, bytes):
        raise malformed(f"{what}: protected header, payload and signature must be byte strings")
    if not isinstance(unprotected, Mapping):
        raise malformed(f"{what}: unprotected header must be a map, got {type(unprotected).__name__}")
    header = decode_cbor(protected, f"{what} protected header")
    if not isinstance(header, Mapping):
        raise malformed(f"{what}: protected header must be a map")
    alg = header.get(HEADER_ALG)
    if not isinstance(alg, int) or isinstance(alg, bool):
        raise malformed(f"{what}: protected header has no integer alg")
    if HEADER_ALG in unprotected:
        raise malformed(f"{what}: alg must only be in the protected header")
    return CoseSign1(protected=protected, alg=alg, payload=payload, signature=signature)


def sig_structure(msg: CoseSign1, external_aad: bytes = b"") -> bytes:
    return bytes(cbor2.dumps(["Signature1", msg.protected, external_aad, msg.payload], canonical=True))


def verify_es384(msg: CoseSign1, key: ec.EllipticCurvePublicKey, what: str) -> None:
    """Raises AttestationError(BAD_ATTESTATION) unless `msg` is ES384 and its signature verifies under `key`."""
    if msg.alg != ALG_ES384:
        raise bad(f"{what}: alg {msg.alg}, expected {ALG_ES384} (ES384)")
    if not isinstance(key.curve, ec.SECP384R1):
        raise bad(f"{what}: ES384 needs a P-384 key, got {key.curve.name}")
    if len(msg.signature) != ES384_SIG_SIZE:
        raise bad(f"{what}: ES384 signature must be {ES384_SIG_SIZE} bytes, got {len(msg.signature)}")
    r, s = int.from_bytes(msg.signature[:48], "big"), int.from_bytes(msg.signature[48:], "big")
    if not ecdsa_verify(key, r, s, sig_structure(msg), hashes.SHA384()):
        raise bad(f"{what}: COSE_Sign1 signature does not verify")
