"""Verdict types of the attestation verifiers (SPEC §8).

A verifier returns an `AttestationResult` or a `Reject`; it never raises. Inside the package a failed check raises
`AttestationError` (code + message with expected and actual), and `verify_evidence` turns it into a `Reject`.
"""

from dataclasses import dataclass
from enum import StrEnum

from aicf.core.errors import AicfError


class RejectCode(StrEnum):
    """The SPEC §8 verdict codes an attestation can earn. STALE_ATTESTATION and UNKNOWN_ROOT slash nobody."""

    BAD_ATTESTATION = "BAD_ATTESTATION"  # signature, chain, binding or policy failure
    STALE_ATTESTATION = "STALE_ATTESTATION"  # a certificate or collateral not valid at the verification time
    UNKNOWN_ROOT = "UNKNOWN_ROOT"  # the chain ends at a root that is not pinned or not in force
    MALFORMED = "MALFORMED"  # truncated, oversized, unparsable, unknown evidence type


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject:
    code: RejectCode
    message: str


class AttestationError(AicfError):
    """A failed attestation check; `verify_evidence` maps it to `Reject(code, message)`."""

    def __init__(self, code: RejectCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code, self.message = code, message


def bad(message: str) -> AttestationError:
    return AttestationError(RejectCode.BAD_ATTESTATION, message)


def stale(message: str) -> AttestationError:
    return AttestationError(RejectCode.STALE_ATTESTATION, message)


def unknown_root(message: str) -> AttestationError:
    return AttestationError(RejectCode.UNKNOWN_ROOT, message)


def malformed(message: str) -> AttestationError:
    return AttestationError(RejectCode.MALFORMED, message)


@dataclass(frozen=True, slots=True, kw_only=True)
class Expiry:
    """One certificate, CRL or signed collateral document and when it stops being valid (SPEC §13 alarm)."""

    what: str
    not_after: int  # unix seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class SnpTcb:
    """The SEV-SNP TCB version: security patch levels of each firmware component (Milan/Genoa layout)."""

    bootloader: int
    tee: int
    snp: int
    microcode: int

    def at_least(self, other: "SnpTcb") -> bool:
        return (
            self.bootloader >= other.bootloader
            and self.tee >= other.tee
            and self.snp >= other.snp
            and self.microcode >= other.microcode
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AttestationResult:
    """What a verified piece of evidence says, in terms every evidence kind shares.

    `measurement` is the launch measurement the allowlist judges (SNP measurement, SGX MRENCLAVE, TDX MRTD, Nitro
    PCR0, GPU: SHA-384 of the measurement record). `report_data` is where the SPEC §8 binding lives (SNP/SGX/TDX
    report_data, Nitro user_data, GPU and CCA nonce/challenge). `tcb_status` is Intel's TCB status or "" where the
    vendor has none; `svns` carries the raw security versions (SNP: bootloader, tee, snp, microcode).
    `expiries` are the certificates and collateral below the pinned root that this verification relied on, each
    named `"<kind> <item>"` with a stable name (no serials or instance ids), for the collateral alarm: empty where
    nothing below the root expires on a time an operator acts on (Nitro: AWS reissues its chain every few hours
    to days; CCA: tokens carry no validity time).
    """

    kind: str
    measurement: bytes
    report_data: bytes
    debug: bool
    tcb_status: str = ""
    advisories: tuple[str, ...] = ()
    snp_tcb: SnpTcb | None = None
    vmpl: int | None = None
    policy: int | None = None
    chip_id: bytes = b""
    pcrs: tuple[tuple[int, bytes], ...] = ()
    public_key: bytes = b""
    nonce: bytes = b""
    extra_measurements: tuple[tuple[int, bytes], ...] = ()
    root_sha256: bytes = b""
    leaf_not_after: int = 0
    expiries: tuple[Expiry, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """The registry's judgement on top of the cryptography.

    `allowed_measurements`: None skips the check (tests of the cryptography alone); an empty set admits nothing,
    on purpose: an empty allowlist is a misconfiguration and must fail closed, not open.
    `accepted_tcb_statuses` applies to Intel's TCB status; "Revoked" is refused whatever the set says.
    `min_snp_tcb`: every SEV-SNP component must be at least this (reported TCB).
    """

    allow_debug: bool = False
    allowed_measurements: frozenset[bytes] | None = None
    accepted_tcb_statuses: frozenset[str] = frozenset({"UpToDate"})
    min_snp_tcb: SnpTcb | None = None
    max_vmpl: int = 3
