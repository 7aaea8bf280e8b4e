"""Offline TEE attestation verifiers (SPEC §8): SEV-SNP, Intel DCAP (SGX/TDX), AWS Nitro, NVIDIA GPU, Arm CCA.

Evidence, certificates, pinned roots, the verification time and the policy are all arguments; nothing here reads
a clock, a file or the network. `verify_evidence` returns an `AttestationResult` or a `Reject` and never raises.
"""

from aicf.proofs.attestation.alarms import (
    Expiry,
    ExpiryAlarm,
    certificate_expiries,
    collateral_expiries,
    expiring_within,
    root_expiries,
)
from aicf.proofs.attestation.result import AttestationResult, Policy, Reject, RejectCode, SnpTcb
from aicf.proofs.attestation.roots import (
    AMD,
    ARM_CCA,
    AWS,
    INTEL,
    NVIDIA,
    PinnedRoot,
    VendorRoots,
    VendorRootsError,
    make_vendor_roots,
    roots_in_force,
    rotate_root,
)
from aicf.proofs.attestation.verify import VERIFIERS, apply_policy, check_binding, verify_evidence

__all__ = [
    "AMD",
    "ARM_CCA",
    "AWS",
    "INTEL",
    "NVIDIA",
    "VERIFIERS",
    "AttestationResult",
    "Expiry",
    "ExpiryAlarm",
    "PinnedRoot",
    "Policy",
    "Reject",
    "RejectCode",
    "SnpTcb",
    "VendorRoots",
    "VendorRootsError",
    "apply_policy",
    "certificate_expiries",
    "check_binding",
    "collateral_expiries",
    "expiring_within",
    "make_vendor_roots",
    "root_expiries",
    "roots_in_force",
    "rotate_root",
    "verify_evidence",
]
