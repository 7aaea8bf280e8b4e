"""Verdicts of SPEC §8: `Accept` or `Reject(code)`, and which rejections slash.

Drop codes (MALFORMED, BAD_SIGNATURE, UNKNOWN_LEASE, LEASE_EXPIRED, DUPLICATE) change no state, use no
attempt and slash nobody. STALE_ATTESTATION and UNKNOWN_ROOT reject without a slash (the provider may be
right and our collateral old). The rest reject the proof and slash with evidence.
"""

from dataclasses import dataclass
from enum import StrEnum


class RejectCode(StrEnum):
    MALFORMED = "MALFORMED"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    UNKNOWN_LEASE = "UNKNOWN_LEASE"
    LEASE_EXPIRED = "LEASE_EXPIRED"
    DUPLICATE = "DUPLICATE"
    DIGEST_MISMATCH = "DIGEST_MISMATCH"
    BAD_ATTESTATION = "BAD_ATTESTATION"
    STALE_ATTESTATION = "STALE_ATTESTATION"
    UNKNOWN_ROOT = "UNKNOWN_ROOT"
    TRAP_FAILURE = "TRAP_FAILURE"
    UNVERIFIABLE = "UNVERIFIABLE"  # not a SPEC code: the verifier could not judge; no slash, the job requeues
    # not SPEC codes (issue 14): the provider claimed work it did not do; slashed as FRAUD
    RUNTIME_MISMATCH = "RUNTIME_MISMATCH"  # AI runtime_ms above what the coordinator observed, plus the slack
    IMPOSSIBLE_RESULT = "IMPOSSIBLE_RESULT"  # a quantum result the job's own circuit cannot produce
    AUDIT_MISMATCH = "AUDIT_MISMATCH"  # not a SPEC code: a sampled AI job re-executed to another output (issue 14)
    # not SPEC codes (issue 14): a quantum proof's device certificate (aicf.proofs.quantum_device)
    UNPINNED_DEVICE = "UNPINNED_DEVICE"  # no certificate, or a device with no pinned key: no slash, like UNKNOWN_ROOT
    BAD_DEVICE_CERT = "BAD_DEVICE_CERT"  # a pinned device's certificate whose signature does not verify


DROP_CODES = frozenset(
    {
        RejectCode.MALFORMED,
        RejectCode.BAD_SIGNATURE,
        RejectCode.UNKNOWN_LEASE,
        RejectCode.LEASE_EXPIRED,
        RejectCode.DUPLICATE,
    }
)
# The slash reason (SPEC §9) a rejection earns; DIGEST_MISMATCH is a provider claiming work it did not do.
SLASH_FOR = {
    RejectCode.BAD_ATTESTATION: "BAD_ATTESTATION",
    RejectCode.TRAP_FAILURE: "TRAP_FAILURE",
    RejectCode.DIGEST_MISMATCH: "FRAUD",
    RejectCode.RUNTIME_MISMATCH: "FRAUD",
    RejectCode.IMPOSSIBLE_RESULT: "FRAUD",
    RejectCode.AUDIT_MISMATCH: "TRAP_FAILURE",  # a trap chosen after the fact; the model may not be bit-stable
    RejectCode.BAD_DEVICE_CERT: "BAD_ATTESTATION",  # results a pinned device did not sign
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject:
    code: RejectCode
    message: str

    @property
    def is_drop(self) -> bool:
        """A drop changes no state: the envelope never reached a live lease."""
        return self.code in DROP_CODES

    @property
    def slash_reason(self) -> str | None:
        return SLASH_FOR.get(self.code)
