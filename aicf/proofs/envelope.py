"""The ProofEnvelope of SPEC §8 and the checks every envelope passes before its body is looked at.

Only a well-formed envelope whose signature verifies and whose lease_id is the task's live lease held by
provider_id changes state; any other is dropped with its code and uses no attempt and slashes nobody.
Checks run in order and the first failure decides:

1. well-formed: version 1, a known kind, 32-byte ids, a map body, a 64-byte signature;
2. the provider's Ed25519 signature over proof_id;
3. a proof_id seen before is DUPLICATE (so a replay after acceptance is reported as such);
4. the lease: the task's lease with this id, held by this provider, LIVE and not expired at `received_at`.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aicf.core.encoding import Encoded, canonical_cbor, tagged_hash
from aicf.core.errors import EncodingError
from aicf.core.ids import proof_id, proof_id_of_encoded
from aicf.core.leases import Lease, LeaseStatus
from aicf.proofs.verdict import Reject, RejectCode

ENVELOPE_VERSION = 1
KINDS = ("AI_V1", "QUANTUM_V1")
ACCEPTANCE_TAG = "aicf/acceptance/v1"
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ProofEnvelope:
    version: int
    kind: str
    task_id: bytes
    lease_id: bytes
    provider_id: bytes
    body: Mapping[str, object]
    sig: bytes
    _proof_id: bytes = field(default=b"", init=False, compare=False, repr=False)
    _body_cbor: bytes = field(default=b"", init=False, compare=False, repr=False)  # set by parse_envelope
    _cbor: bytes = field(default=b"", init=False, compare=False, repr=False)  # the envelope's, once encoded

    @property
    def proof_id(self) -> bytes:
        """H("aicf/proof/v1", ...) over the whole body: computed once per envelope (the body is not changed),
        from the body's encoding when parse_envelope already made it."""
        if not self._proof_id:
            head = (self.version, self.kind, self.task_id, self.lease_id, self.provider_id)
            pid = proof_id_of_encoded(*head, self._body_cbor) if self._body_cbor else proof_id(*head, self.body)
            object.__setattr__(self, "_proof_id", pid)
        return self._proof_id

    def encoded(self) -> bytes:
        """canonical_cbor(self.to_map()), computed once per envelope and around the body's encoding when
        parse_envelope already made it (the envelope is stored with the proof and sent to the chain)."""
        if not self._cbor:
            body = Encoded(self._body_cbor) if self._body_cbor else dict(self.body)
            object.__setattr__(self, "_cbor", canonical_cbor({**self.to_map(), "body": body}))
        return self._cbor

    def to_map(self) -> dict[str, object]:
        return {
            "version": self.version,
            "kind": self.kind,
            "task_id": self.task_id,
            "lease_id": self.lease_id,
            "provider_id": self.provider_id,
            "body": dict(self.body),
            "sig": self.sig,
        }


def _need_bytes(raw: Mapping[str, object], key: str, size: int) -> bytes | Reject:
    value = raw.get(key)
    if not isinstance(value, bytes) or len(value) != size:
        got = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
        return Reject(code=RejectCode.MALFORMED, message=f"envelope.{key}: expected {size} bytes, got {got}")
    return value


def parse_envelope(raw: object) -> ProofEnvelope | Reject:
    """Step 1: the shape. Returns Reject(MALFORMED) naming the field instead of raising."""
    if not isinstance(raw, Mapping):
        return Reject(code=RejectCode.MALFORMED, message=f"envelope: expected a map, got {type(raw).__name__}")
    unknown = set(raw) - {"version", "kind", "task_id", "lease_id", "provider_id", "body", "sig"}
    if unknown:
        return Reject(code=RejectCode.MALFORMED, message=f"envelope: unknown field {sorted(map(str, unknown))[0]!r}")
    if raw.get("version") != ENVELOPE_VERSION or isinstance(raw.get("version"), bool):
        return Reject(code=RejectCode.MALFORMED, message=f"envelope.version: expected 1, got {raw.get('version')!r}")
    kind = raw.get("kind")
    if kind not in KINDS:
        return Reject(code=RejectCode.MALFORMED, message=f"envelope.kind: expected one of {KINDS}, got {kind!r}")
    fields: dict[str, bytes] = {}
    for key, size in (("task_id", 32), ("lease_id", 32), ("provider_id", 32), ("sig", 64)):
        value = _need_bytes(raw, key, size)
        if isinstance(value, Reject):
            return value
        fields[key] = value
    body = raw.get("body")
    if not isinstance(body, Mapping) or not all(isinstance(k, str) for k in body):
        return Reject(code=RejectCode.MALFORMED, message="envelope.body: expected a text-keyed map")
    try:
        encoded = canonical_cbor(body)
    except EncodingError as exc:
        return Reject(code=RejectCode.MALFORMED, message=f"envelope.body: {exc}")
    if len(encoded) > MAX_BODY_BYTES:
        return Reject(
            code=RejectCode.MALFORMED, message=f"envelope.body: {len(encoded)} bytes exceeds {MAX_BODY_BYTES}"
        )
    env = ProofEnvelope(
        version=ENVELOPE_VERSION,
        kind=str(kind),
        task_id=fields["task_id"],
        lease_id=fields["lease_id"],
        provider_id=fields["provider_id"],
        body=dict(body),
        sig=fields["sig"],
    )
    object.__setattr__(env, "_body_cbor", encoded)  # proof_id hashes it instead of encoding the body again
    return env


def sign_envelope(key: Ed25519PrivateKey, env: ProofEnvelope) -> bytes:
    """The provider's signature over proof_id (what the reference providers and tests use)."""
    return key.sign(env.proof_id)


def check_envelope(
    env: ProofEnvelope,
    *,
    provider_key: bytes | None,
    lease: Lease | None,
    received_at: int,
    seen_proof: Callable[[bytes], bool],
) -> Reject | None:
    """Steps 2-4 of the module docstring. `lease` is the task's lease with env.lease_id, if any."""
    pid = env.proof_id
    if provider_key is None:  # (2) an unregistered provider cannot have signed for a lease
        return Reject(code=RejectCode.BAD_SIGNATURE, message=f"provider 0x{env.provider_id.hex()} is not registered")
    try:
        Ed25519PublicKey.from_public_bytes(provider_key).verify(env.sig, pid)
    except (InvalidSignature, ValueError):
        return Reject(code=RejectCode.BAD_SIGNATURE, message=f"signature does not verify over proof 0x{pid.hex()}")
    if seen_proof(pid):  # (3)
        return Reject(code=RejectCode.DUPLICATE, message=f"proof 0x{pid.hex()} was seen before")
    if lease is None or lease.task_id != env.task_id or lease.lease_id != env.lease_id:  # (4)
        return Reject(code=RejectCode.UNKNOWN_LEASE, message=f"no lease 0x{env.lease_id.hex()} for this task")
    if lease.provider_id != env.provider_id:
        return Reject(code=RejectCode.UNKNOWN_LEASE, message="the lease is held by another provider")
    if lease.status is LeaseStatus.EXPIRED:  # SPEC §7: a proof after expiry gets LEASE_EXPIRED, swept or not
        return Reject(code=RejectCode.LEASE_EXPIRED, message=f"the lease expired at {lease.expires_at}")
    if lease.status is not LeaseStatus.LIVE:
        return Reject(code=RejectCode.UNKNOWN_LEASE, message=f"the lease is {lease.status.value}, not LIVE")
    if received_at >= lease.expires_at:
        return Reject(
            code=RejectCode.LEASE_EXPIRED,
            message=f"received at {received_at}, the lease expired at {lease.expires_at}",
        )
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Acceptance:
    """The coordinator's signed acceptance record `acc` (SPEC §8), included on chain with the envelope."""

    proof_id: bytes
    units_mu: int
    lat_bps: int
    avail_bps: int
    accepted_at: int

    def to_map(self) -> dict[str, object]:
        return {
            "proof_id": self.proof_id,
            "units_mu": self.units_mu,
            "lat_bps": self.lat_bps,
            "avail_bps": self.avail_bps,
            "accepted_at": self.accepted_at,
        }

    @property
    def digest(self) -> bytes:
        """What the operator key signs: H("aicf/acceptance/v1", acc)."""
        return tagged_hash(ACCEPTANCE_TAG, self.to_map())


# Acceptances this process signed, (operator public key, digest) -> signature: their inclusion comes back from the
# chain a block later and need not be verified again (Ed25519 in `cryptography` has no batch verification; this
# saves the one verification per included proof instead). Bounded: cleared when full, then simply re-verified.
_SIGNED: dict[tuple[bytes, bytes], bytes] = {}
_SIGNED_MAX = 65_536


def sign_acceptance(operator_key: Ed25519PrivateKey, acc: Acceptance) -> bytes:
    digest = acc.digest
    sig = operator_key.sign(digest)
    if len(_SIGNED) >= _SIGNED_MAX:
        _SIGNED.clear()
    _SIGNED[(operator_key.public_key().public_bytes_raw(), digest)] = sig
    return sig


def verify_acceptance(operator_public_key: bytes, acc: Acceptance, sig: bytes) -> bool:
    """Whether `sig` is the operator's over `acc`: a signature this process made over the same digest with that
    key is known good (Ed25519 signing is deterministic, so a verification would say the same); any other is
    verified."""
    digest = acc.digest
    if _SIGNED.get((operator_public_key, digest)) == sig:
        return True
    try:
        Ed25519PublicKey.from_public_bytes(operator_public_key).verify(sig, digest)
    except (InvalidSignature, ValueError):
        return False
    return True
