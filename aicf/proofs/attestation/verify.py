"""The one entry point: evidence, certificates, roots, time and policy in; `AttestationResult` or `Reject` out."""

import binascii
import json
import struct
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from aicf.core.errors import AicfError
from aicf.proofs.attestation.cca import verify_cca
from aicf.proofs.attestation.dcap import verify_sgx, verify_tdx
from aicf.proofs.attestation.nitro import verify_nitro
from aicf.proofs.attestation.nvidia import verify_nvidia_gpu
from aicf.proofs.attestation.result import (
    AttestationError,
    AttestationResult,
    Policy,
    Reject,
    RejectCode,
    bad,
    malformed,
)
from aicf.proofs.attestation.roots import AMD, ARM_CCA, AWS, INTEL, NVIDIA, PinnedRoot, VendorRoots, roots_in_force
from aicf.proofs.attestation.snp import verify_snp

MAX_EVIDENCE_BYTES = 64 * 1024
MAX_CERTS_BYTES = 64 * 1024

Verifier = Callable[[bytes, bytes | tuple[bytes, ...], tuple[PinnedRoot, ...], int], AttestationResult]
VERIFIERS: dict[str, tuple[str, Verifier]] = {  # evidence type (SPEC §8) -> (vendor of its roots, verifier)
    "sev-snp": (AMD, verify_snp),
    "sgx": (INTEL, verify_sgx),
    "tdx": (INTEL, verify_tdx),
    "nitro": (AWS, verify_nitro),
    "nvidia-gpu": (NVIDIA, verify_nvidia_gpu),
    "cca": (ARM_CCA, verify_cca),
}
REVOKED = "Revoked"


def apply_policy(result: AttestationResult, policy: Policy) -> None:
    """Raises AttestationError(BAD_ATTESTATION) when the registry's policy refuses what the evidence proved.

    (a) debug guests only if allowed; (b) measurement on the allowlist; (c) Intel TCB status accepted, never
    Revoked; (d) SEV-SNP reported TCB at least the minimum and VMPL at most the maximum.
    """
    if result.debug and not policy.allow_debug:  # (a)
        raise bad(f"{result.kind}: debug-enabled guest refused by policy")
    if policy.allowed_measurements is not None and result.measurement not in policy.allowed_measurements:  # (b)
        raise bad(f"{result.kind}: measurement 0x{result.measurement.hex()} is not on the allowlist")
    if result.tcb_status and (  # (c)
        result.tcb_status == REVOKED or result.tcb_status not in policy.accepted_tcb_statuses
    ):
        raise bad(
            f"{result.kind}: TCB status {result.tcb_status} (advisories {', '.join(result.advisories) or 'none'})"
            f" not in accepted {sorted(policy.accepted_tcb_statuses - {REVOKED})}"
        )
    snp_tcb, min_tcb = result.snp_tcb, policy.min_snp_tcb  # (d)
    if snp_tcb is not None and min_tcb is not None and not snp_tcb.at_least(min_tcb):
        raise bad(f"{result.kind}: reported TCB {snp_tcb} below the minimum {min_tcb}")
    if result.vmpl is not None and result.vmpl > policy.max_vmpl:
        raise bad(f"{result.kind}: VMPL {result.vmpl} above the maximum {policy.max_vmpl}")


def verify_evidence(
    kind: str,
    evidence: bytes,
    certs: bytes | tuple[bytes, ...],
    roots: VendorRoots,
    at_time: int,
    policy: Policy,
    *,
    height: int | None = None,
) -> AttestationResult | Reject:
    """Verify TEE evidence offline and judge it by policy; never raises.

    `at_time` (unix seconds) is the time the certificates and collateral must be valid at: the inclusion block's
    time. With `height`, only the roots in force at that height count (SPEC §8); without it, every root in `roots`.
    `certs` carries what the evidence does not: the SEV-SNP and GPU chains (DER tuple, PEM or concatenated DER),
    the DCAP collateral (Intel PCS JSON bytes), nothing for Nitro (its chain is inside the document), the pinned
    CPAK is a root for CCA. The SPEC §8 binding is a separate check: `check_binding`.
    """
    try:
        if not isinstance(evidence, bytes):
            raise malformed(f"evidence must be bytes, got {type(evidence).__name__}")
        if kind not in VERIFIERS:
            raise malformed(f"unknown evidence type {kind!r}, expected one of {sorted(VERIFIERS)}")
        if not evidence:
            raise malformed(f"{kind}: empty evidence")
        if len(evidence) > MAX_EVIDENCE_BYTES:
            raise malformed(f"{kind}: evidence of {len(evidence)} bytes exceeds {MAX_EVIDENCE_BYTES}")
        certs_len = len(certs) if isinstance(certs, bytes) else sum(len(c) for c in certs if isinstance(c, bytes))
        if certs_len > MAX_CERTS_BYTES:
            raise malformed(f"{kind}: certificates of {certs_len} bytes exceed {MAX_CERTS_BYTES}")
        vendor, verifier = VERIFIERS[kind]
        in_force = roots if height is None else roots_in_force(roots, height)
        anchors = in_force.for_vendor(vendor)
        result = verifier(evidence, certs, anchors, at_time)
        apply_policy(result, policy)
    except AttestationError as exc:
        return Reject(code=exc.code, message=exc.message)
    except InvalidSignature as exc:
        return Reject(code=RejectCode.BAD_ATTESTATION, message=f"{kind}: signature does not verify ({exc})")
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        OverflowError,
        struct.error,
        binascii.Error,
        json.JSONDecodeError,
        UnicodeDecodeError,
        UnsupportedAlgorithm,
        AicfError,
    ) as exc:
        return Reject(code=RejectCode.MALFORMED, message=f"{kind}: {type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - fail closed: a verifier bug must reject, never accept or escape
        return Reject(code=RejectCode.MALFORMED, message=f"{kind}: unexpected {type(exc).__name__}: {exc}")
    return result


def check_binding(result: AttestationResult, expected_report_data: bytes) -> Reject | None:
    """The SPEC §8 binding: report_data (Nitro: user_data) is `tee_report_data(...)` followed by zero bytes.

    Returns Reject(BAD_ATTESTATION) with expected and actual on a mismatch, None when the work is bound.
    """
    got = result.report_data
    want = expected_report_data + bytes(max(0, len(got) - len(expected_report_data)))
    if len(got) < len(expected_report_data) or got != want:
        return Reject(
            code=RejectCode.BAD_ATTESTATION,
            message=f"{result.kind}: report data does not bind the work: expected 0x{want.hex()}, got 0x{got.hex()}",
        )
    return None
