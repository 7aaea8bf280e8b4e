"""Vendor roots and attestation policy as the registry stores them (SPEC §8; docs/ROOTS.md).

Plain records: the store keeps them, the service checks and turns them into the verifier's `PinnedRoot`s and
`Policy`s (aicf.proofs.attestation). A root version is in force at height h when
`activation_height <= h < expiry_height` (no expiry height: from activation on); the policy of an evidence kind
in force at h is its highest version whose activation height is at most h.
"""

from dataclasses import dataclass

ROOT = "root"
POLICY = "policy"


@dataclass(frozen=True, slots=True, kw_only=True)
class RootRecord:
    """One version of one vendor root. `der`: the root certificate (arm-cca: the pinned CPAK's
    SubjectPublicKeyInfo); `sha256`: SHA-256 of `der`; `added_height`/`added_at`: the head and the time when
    the operator added it."""

    vendor: str
    name: str
    version: int
    der: bytes
    sha256: bytes
    activation_height: int
    expiry_height: int | None
    added_height: int
    added_at: int

    def is_in_force(self, height: int) -> bool:
        return self.activation_height <= height and (self.expiry_height is None or height < self.expiry_height)


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyRecord:
    """One version of the attestation policy of one evidence kind ("sev-snp", "tdx", …). `policy` is the
    canonical CBOR of the policy map (docs/ROOTS.md)."""

    kind: str
    version: int
    activation_height: int
    policy: bytes
    added_height: int
    added_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustChange:
    """A row of the trust transition table: every change to roots or policy, in order. `what` is ROOT or
    POLICY; `action` "add", "retire" (a root's expiry height set or lowered) or "set" (a policy version)."""

    what: str
    action: str
    subject: str  # "amd/ARK-Milan v2", "sev-snp v3"
    detail: str
    height: int  # the head when the change was made
    time: int
    seq: int = 0  # the store's order; 0 until stored
