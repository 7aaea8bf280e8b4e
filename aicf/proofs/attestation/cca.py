"""Arm CCA attestation tokens: tag 399 {44234: platform token, 44241: realm token}, both COSE_Sign1 ES384.

The realm token is signed by the Realm Attestation Key (RAK) whose raw public point is realm claim 44237; the
platform token is signed by the CCA Platform Attestation Key (CPAK), pinned as a root (SubjectPublicKeyInfo DER);
the platform nonce (claim 10) must be the hash of the RAK under the realm's claim 44240. Tokens carry no validity
time, so `at_time` does not apply.
"""

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from aicf.proofs.attestation.cose import CoseSign1, decode_cbor, parse_cose_sign1, verify_es384
from aicf.proofs.attestation.result import AttestationError, AttestationResult, RejectCode, bad, malformed, unknown_root
from aicf.proofs.attestation.roots import PinnedRoot

CCA_TOKEN_TAG = 399
PLATFORM_TOKEN = 44234
REALM_TOKEN = 44241
CLAIM_NONCE = 10  # platform: challenge (hash of the RAK); realm: the relying party's challenge
REALM_RIM = 44238
REALM_REMS = 44239
REALM_PUB_KEY = 44237
REALM_PUB_KEY_HASH_ALG = 44240
PLATFORM_LIFECYCLE = 2395
HASH_ALGS = {"sha-256": "sha256", "sha-384": "sha384", "sha-512": "sha512"}
LIFECYCLE_SECURED = range(0x3000, 0x3100)  # PSA lifecycle "secured"; anything else is not a production state


@dataclass(frozen=True, slots=True, kw_only=True)
class CcaToken:
    platform: CoseSign1
    realm: CoseSign1
    platform_claims: Mapping[object, object]
    realm_claims: Mapping[object, object]


def _claims(msg: CoseSign1, what: str) -> Mapping[object, object]:
    claims = decode_cbor(msg.payload, what)
    if not isinstance(claims, Mapping):
        raise malformed(f"{what}: claims must be a map")
    return claims


def _bytes_claim(claims: Mapping[object, object], key: int, what: str) -> bytes:
    value = claims.get(key)
    if not isinstance(value, bytes):
        raise malformed(f"{what}: claim {key} must be bytes, got {type(value).__name__}")
    return value


def parse_cca_token(evidence: bytes) -> CcaToken:
    item = decode_cbor(evidence, "CCA token")
    if not isinstance(item, cbor2.CBORTag) or item.tag != CCA_TOKEN_TAG or not isinstance(item.value, Mapping):
        raise malformed(f"CCA token: expected tag {CCA_TOKEN_TAG} around a map")
    if set(item.value) != {PLATFORM_TOKEN, REALM_TOKEN}:
        raise malformed(
            f"CCA token: expected keys {PLATFORM_TOKEN} and {REALM_TOKEN}, got {sorted(map(str, item.value))}"
        )
    platform_raw, realm_raw = item.value[PLATFORM_TOKEN], item.value[REALM_TOKEN]
    if not isinstance(platform_raw, bytes) or not isinstance(realm_raw, bytes):
        raise malformed("CCA token: platform and realm tokens must be byte strings")
    platform = parse_cose_sign1(platform_raw, "CCA platform token", allow_tag=True)
    realm = parse_cose_sign1(realm_raw, "CCA realm token", allow_tag=True)
    return CcaToken(
        platform=platform,
        realm=realm,
        platform_claims=_claims(platform, "CCA platform claims"),
        realm_claims=_claims(realm, "CCA realm claims"),
    )


@functools.lru_cache(maxsize=256)
def _platform_signed_by(platform: CoseSign1, cpak_der: bytes) -> str:
    """ "" if the CPAK signed the platform token, else why not. Memoised: one platform token serves a realm's life."""
    try:
        verify_es384(platform, _cpak(cpak_der, "CCA"), "CCA platform token")
    except AttestationError as exc:
        if exc.code != RejectCode.BAD_ATTESTATION:
            raise
        return exc.message
    return ""


def _cpak(der: bytes, what: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(der)
    except ValueError as exc:
        raise malformed(f"{what}: CPAK does not parse: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise malformed(f"{what}: CPAK must be an EC key")
    return key


def verify_cca(
    evidence: bytes, certs: bytes | tuple[bytes, ...], anchors: tuple[PinnedRoot, ...], at_time: int
) -> AttestationResult:
    """(1) parse both tokens; (2) realm token signed by the RAK it names; (3) platform nonce == hash(RAK);
    (4) platform token signed by a pinned CPAK in force (`certs` may name the CPAK as SPKI DER: it must then be
    pinned). Raises AttestationError.
    """
    token = parse_cca_token(evidence)  # (1)
    rak_raw = _bytes_claim(token.realm_claims, REALM_PUB_KEY, "CCA realm")
    try:
        rak = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP384R1(), rak_raw)
    except ValueError as exc:
        raise bad(f"CCA realm: RAK is not a P-384 point: {exc}") from exc
    verify_es384(token.realm, rak, "CCA realm token")  # (2)
    alg = token.realm_claims.get(REALM_PUB_KEY_HASH_ALG)
    if not isinstance(alg, str) or alg not in HASH_ALGS:
        raise malformed(f"CCA realm: RAK hash algorithm {alg!r}, expected one of {sorted(HASH_ALGS)}")
    want = hashlib.new(HASH_ALGS[alg], rak_raw).digest()  # (3)
    got = _bytes_claim(token.platform_claims, CLAIM_NONCE, "CCA platform")
    if got != want:
        raise bad(f"CCA platform nonce does not bind the RAK: expected 0x{want.hex()}, got 0x{got.hex()}")
    named = certs if isinstance(certs, bytes) else b"".join(certs)
    candidates = anchors
    if named:  # (4)
        candidates = tuple(r for r in anchors if r.der == named)
        if not candidates:
            raise unknown_root("CCA: the CPAK named in certs is not a pinned root in force")
    if not candidates:
        raise unknown_root("CCA: no CPAK is pinned and in force")
    errors: list[str] = []
    for root in candidates:
        if _platform_signed_by(token.platform, root.der):
            errors.append(f"{root.name} v{root.version}")
            continue
        lifecycle = token.platform_claims.get(PLATFORM_LIFECYCLE)
        if not isinstance(lifecycle, int):
            raise malformed("CCA platform: security lifecycle claim must be an integer")
        rems = token.realm_claims.get(REALM_REMS)
        rem_items = tuple(enumerate(r for r in rems if isinstance(r, bytes))) if isinstance(rems, list | tuple) else ()
        return AttestationResult(
            kind="cca",
            measurement=_bytes_claim(token.realm_claims, REALM_RIM, "CCA realm"),
            report_data=_bytes_claim(token.realm_claims, CLAIM_NONCE, "CCA realm"),
            debug=lifecycle not in LIFECYCLE_SECURED,
            public_key=rak_raw,
            extra_measurements=rem_items,
            root_sha256=root.sha256,
        )
    raise bad(f"CCA platform token signature verifies under no pinned CPAK in force (tried {', '.join(errors)})")
