"""The registry's roots and policy as the verifiers take them (SPEC §8; docs/ROOTS.md).

`TrustAnchors` is what judges one piece of evidence: the roots in force at its inclusion height and the policy of
each evidence kind in force there. A policy version is stored as the canonical CBOR of its policy map:

    {"allow_debug": bool, "accepted_tcb_statuses": [text, …], "max_vmpl": uint,
     "allowed_measurements": [bytes, …]   (absent: not checked; present and empty: admits nothing),
     "min_snp_tcb": {"bootloader", "tee", "snp", "microcode": uint}   (absent: no minimum)}

Lists are sorted, so one policy has one encoding. Pure: bytes and values in, values out.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import cbor2
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_der_public_key

from aicf.core.encoding import canonical_cbor
from aicf.core.errors import AicfError
from aicf.proofs.attestation.chain import load_cert
from aicf.proofs.attestation.result import AttestationError, Policy, SnpTcb
from aicf.proofs.attestation.roots import ARM_CCA, VENDORS, VendorRoots, VendorRootsError, make_vendor_roots

# Intel's TCB statuses (PCS tcbInfo); "Revoked" is refused whatever a policy says.
TCB_STATUSES = frozenset(
    {
        "UpToDate",
        "SWHardeningNeeded",
        "ConfigurationNeeded",
        "ConfigurationAndSWHardeningNeeded",
        "OutOfDate",
        "OutOfDateConfigurationNeeded",
    }
)
MAX_MEASUREMENT_BYTES = 64
MAX_MEASUREMENTS = 1024
SNP_TCB_FIELDS = ("bootloader", "tee", "snp", "microcode")
POLICY_KEYS = frozenset({"allow_debug", "accepted_tcb_statuses", "max_vmpl", "allowed_measurements", "min_snp_tcb"})
# Evidence kinds that prove the CPU side ran the work (issue 14). NVIDIA GPU evidence is not one: it binds only a
# nonce the host chooses, so it counts only together with CPU TEE evidence that binds it.
CPU_TEE_KINDS = ("sev-snp", "tdx", "sgx", "nitro", "cca")
GPU_ALONE = "GPU evidence alone binds only a nonce the host chooses; it counts only beside CPU TEE evidence"


def tee_policy_gap(kind: str, policy: Policy | None) -> str | None:
    """Why `policy` cannot admit `kind` evidence for a `tee_required` job, or None when it can (issue 14: fail
    closed). It needs a non-empty measurement allowlist and a minimum TCB: SEV-SNP's `min_snp_tcb`; for SGX and TDX
    Intel's TCB status (a non-empty `accepted_tcb_statuses`: the platform's TCB is judged against Intel's current
    levels). Nitro and CCA evidence carry no TCB version a policy can bound: their allowlist (PCR0, the realm
    initial measurement) is the whole check."""
    if kind not in CPU_TEE_KINDS:
        return f"{kind}: {GPU_ALONE}" if kind == "nvidia-gpu" else f"{kind!r} is not a CPU TEE evidence kind"
    if policy is None or policy.allowed_measurements is None:
        return f"{kind}: the operator policy has no measurement allowlist"
    if not policy.allowed_measurements:
        return f"{kind}: the operator policy has an empty measurement allowlist (it admits nothing)"
    if kind == "sev-snp" and policy.min_snp_tcb is None:
        return f"{kind}: the operator policy has no minimum TCB (min_snp_tcb)"
    if kind in ("sgx", "tdx") and not policy.accepted_tcb_statuses - {"Revoked"}:
        return f"{kind}: the operator policy accepts no TCB status (no minimum TCB)"
    return None


def admitted_tee_kinds(policies: Mapping[str, Policy]) -> tuple[str, ...]:
    """The CPU TEE evidence kinds whose policy in force can admit evidence for a `tee_required` job."""
    return tuple(k for k in CPU_TEE_KINDS if tee_policy_gap(k, policies.get(k)) is None)


class PolicyFormatError(AicfError):
    """A policy map that is not one (unknown key, wrong type, value out of range); `field` names the key."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"attestation policy: {field}: {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustAnchors:
    """The roots in force at one height and the policy in force there per evidence kind."""

    roots: VendorRoots = field(default_factory=lambda: make_vendor_roots(()))
    policies: Mapping[str, Policy] = field(default_factory=dict)

    def policy_for(self, kind: str, default: Policy) -> Policy:
        """The registry's policy for `kind`, or `default` when the registry holds none in force for it."""
        return self.policies.get(kind, default)


def check_root_der(vendor: str, der: bytes) -> None:
    """Raises VendorRootsError unless `der` is what a root of `vendor` must be: a DER certificate, or for arm-cca a
    DER SubjectPublicKeyInfo (its platform key has no public root certificate)."""
    if vendor not in VENDORS:
        raise VendorRootsError(f"unknown vendor {vendor!r}, expected one of {sorted(VENDORS)}")
    if not der:
        raise VendorRootsError("empty DER")
    if vendor == ARM_CCA:
        try:
            load_der_public_key(der)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise VendorRootsError(
                f"an arm-cca root is a DER SubjectPublicKeyInfo; this one does not parse: {exc}"
            ) from exc
        return
    try:
        load_cert(der)
    except AttestationError as exc:
        raise VendorRootsError(f"not a DER certificate: {exc.message}") from exc


def policy_map(policy: Policy) -> dict[str, object]:
    """The policy map of `policy` (module docstring); canonical_cbor of it is what the store keeps."""
    out: dict[str, object] = {
        "allow_debug": policy.allow_debug,
        "accepted_tcb_statuses": sorted(policy.accepted_tcb_statuses),
        "max_vmpl": policy.max_vmpl,
    }
    if policy.allowed_measurements is not None:
        out["allowed_measurements"] = sorted(policy.allowed_measurements)
    if policy.min_snp_tcb is not None:
        tcb = policy.min_snp_tcb
        out["min_snp_tcb"] = {"bootloader": tcb.bootloader, "tee": tcb.tee, "snp": tcb.snp, "microcode": tcb.microcode}
    return out


def encode_policy(policy: Policy) -> bytes:
    """Raises PolicyFormatError if the policy is out of range (`check_policy`)."""
    check_policy(policy)
    return canonical_cbor(policy_map(policy))


def check_policy(policy: Policy) -> None:
    """Raises PolicyFormatError, naming the field, on a policy the registry must not hold."""
    if not 0 <= policy.max_vmpl <= 3:
        raise PolicyFormatError("max_vmpl", f"must be 0..3, got {policy.max_vmpl}")
    unknown = sorted(policy.accepted_tcb_statuses - TCB_STATUSES)
    if unknown:
        raise PolicyFormatError(
            "accepted_tcb_statuses",
            f"unknown status {unknown[0]!r} (Revoked is always refused); known: {sorted(TCB_STATUSES)}",
        )
    if policy.allowed_measurements is not None:
        if len(policy.allowed_measurements) > MAX_MEASUREMENTS:
            raise PolicyFormatError("allowed_measurements", f"at most {MAX_MEASUREMENTS} entries")
        for m in sorted(policy.allowed_measurements):
            if not 1 <= len(m) <= MAX_MEASUREMENT_BYTES:
                raise PolicyFormatError(
                    "allowed_measurements", f"a measurement is 1..{MAX_MEASUREMENT_BYTES} bytes, got {len(m)}"
                )
    tcb = policy.min_snp_tcb
    if tcb is not None:
        for name in SNP_TCB_FIELDS:
            value = getattr(tcb, name)
            if not isinstance(value, int) or not 0 <= value <= 255:
                raise PolicyFormatError(f"min_snp_tcb.{name}", f"must be 0..255, got {value!r}")


def decode_policy(raw: bytes) -> Policy:
    """The Policy stored as `raw`. Raises PolicyFormatError on bytes that are not a policy map."""
    try:
        value: object = cbor2.loads(raw)
    except (cbor2.CBORDecodeError, ValueError) as exc:
        raise PolicyFormatError("policy", f"not CBOR: {exc}") from exc
    if not isinstance(value, dict):
        raise PolicyFormatError("policy", "must be a map")
    unknown = sorted(str(k) for k in set(value) - POLICY_KEYS)
    if unknown:
        raise PolicyFormatError(unknown[0], "unknown key")
    debug = value.get("allow_debug")
    if not isinstance(debug, bool):
        raise PolicyFormatError("allow_debug", "must be a bool")
    statuses = value.get("accepted_tcb_statuses")
    if not isinstance(statuses, list) or not all(isinstance(s, str) for s in statuses):
        raise PolicyFormatError("accepted_tcb_statuses", "must be a list of text")
    vmpl = value.get("max_vmpl")
    if isinstance(vmpl, bool) or not isinstance(vmpl, int):
        raise PolicyFormatError("max_vmpl", "must be an integer")
    measurements: frozenset[bytes] | None = None
    if "allowed_measurements" in value:
        listed = value["allowed_measurements"]
        if not isinstance(listed, list) or not all(isinstance(m, bytes) for m in listed):
            raise PolicyFormatError("allowed_measurements", "must be a list of bytes")
        measurements = frozenset(m for m in listed if isinstance(m, bytes))
    min_tcb: SnpTcb | None = None
    if "min_snp_tcb" in value:
        tcb = value["min_snp_tcb"]
        if not isinstance(tcb, dict) or set(tcb) != set(SNP_TCB_FIELDS):
            raise PolicyFormatError("min_snp_tcb", f"must be a map of {', '.join(SNP_TCB_FIELDS)}")
        parts = [tcb[k] for k in SNP_TCB_FIELDS]
        if not all(isinstance(p, int) and not isinstance(p, bool) for p in parts):
            raise PolicyFormatError("min_snp_tcb", "every part must be an integer")
        min_tcb = SnpTcb(bootloader=int(parts[0]), tee=int(parts[1]), snp=int(parts[2]), microcode=int(parts[3]))
    policy = Policy(
        allow_debug=debug,
        allowed_measurements=measurements,
        accepted_tcb_statuses=frozenset(s for s in statuses if isinstance(s, str)),
        min_snp_tcb=min_tcb,
        max_vmpl=vmpl,
    )
    check_policy(policy)
    return policy
