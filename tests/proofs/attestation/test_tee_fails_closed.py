"""Issue 14: attestation fails closed. A `tee_required` job accepts TEE evidence only under an operator policy with
a non-empty measurement allowlist and a minimum TCB; GPU evidence alone never counts (it binds only a nonce the
host chooses). The issue's attack: with no policy set, an SEV-SNP report with measurement 0xEE…, TCB (0,0,0,0)
and VMPL 3 was accepted for a tee_required job with a fabricated output.
"""

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from aicf.core.ids import input_digest, output_digest, provider_id, tee_report_data
from aicf.proofs.ai_v1 import AiAccepted, AiJob, gpu_evidence_digest, verify_ai_v1
from aicf.proofs.attestation import NVIDIA, PinnedRoot, Policy, make_vendor_roots
from aicf.proofs.attestation.registry import tee_policy_gap
from aicf.proofs.attestation.result import SnpTcb
from aicf.proofs.verdict import Reject, RejectCode
from proofs.attestation.conftest import CA_KEY_USAGE

PROVIDER = provider_id(b"\x07" * 32)
MODEL_DIGEST = b"\x33" * 32
JOB = AiJob(
    task_id=b"\x11" * 32, model="smollm2-135m", prompt=b"2+2=", max_runtime_ms=5000, max_tokens=16, tee_required=True
)
AT = 1_767_225_600
GOOD_MEASUREMENT = b"\x11" * 48
OPERATOR = Policy(allowed_measurements=frozenset({GOOD_MEASUREMENT}), min_snp_tcb=SnpTcb(bootloader=3, tee=0, snp=8,
                  microcode=115), max_vmpl=0)  # fmt: skip
FABRICATED = b"a fabricated answer"


def _body(attestation: dict[str, object]) -> dict[str, object]:
    return {
        "model_id": JOB.model,
        "model_digest": MODEL_DIGEST,
        "input_digest": input_digest(JOB.prompt),
        "output_digest": output_digest(FABRICATED),
        "output": FABRICATED,
        "qos": {"runtime_ms": 120, "tokens": 1},
        "attestation": attestation,
    }


def _bound() -> bytes:
    return tee_report_data(JOB.task_id, MODEL_DIGEST, input_digest(JOB.prompt), output_digest(FABRICATED), PROVIDER)


def _snp(test_amd: Any, snp_report: Callable[..., bytes], **report: Any) -> dict[str, object]:
    evidence = snp_report(test_amd.vcek_key, report_data=_bound(), chip_id=test_amd.chip_id, **report)
    return {"type": "sev-snp", "evidence": evidence, "certs": [test_amd.vcek, test_amd.ask, test_amd.ark]}


def _verify(test_amd: Any, attestation: dict[str, object], policy: Policy, job: AiJob = JOB) -> AiAccepted | Reject:
    return verify_ai_v1(
        _body(attestation),
        job,
        provider_id=PROVIDER,
        model_digests={JOB.model: MODEL_DIGEST},
        roots=make_vendor_roots((test_amd.root,)),
        policy=policy,
        at_time=AT,
        height=10,
    )


# the issue's measurement and VMPL; the TCB is the test VCEK's own (a report must match its key certificate)
ISSUE_REPORT = {"measurement": b"\xee" * 48, "vmpl": 3}


def test_the_issues_snp_report_is_not_accepted_for_a_tee_job_without_an_operator_policy(
    test_amd: Any, snp_report: Callable[..., bytes]
) -> None:
    out = _verify(test_amd, _snp(test_amd, snp_report, **ISSUE_REPORT), Policy())  # the verifier's default
    assert isinstance(out, Reject), out
    assert out.code is RejectCode.UNVERIFIABLE  # the operator's gap, not the provider's fault: no slash, requeue
    assert "measurement allowlist" in out.message


def test_the_issues_snp_report_is_bad_attestation_under_an_operator_policy(
    test_amd: Any, snp_report: Callable[..., bytes]
) -> None:
    out = _verify(test_amd, _snp(test_amd, snp_report, **ISSUE_REPORT), OPERATOR)
    assert isinstance(out, Reject), out
    assert out.code is RejectCode.BAD_ATTESTATION
    assert "allowlist" in out.message


def test_an_allowed_snp_report_at_the_minimum_tcb_is_accepted_under_an_operator_policy(
    test_amd: Any, snp_report: Callable[..., bytes]
) -> None:
    out = _verify(test_amd, _snp(test_amd, snp_report, measurement=GOOD_MEASUREMENT), OPERATOR)
    assert isinstance(out, AiAccepted), out
    above = replace(OPERATOR, min_snp_tcb=SnpTcb(bootloader=3, tee=0, snp=9, microcode=115))
    low = _verify(test_amd, _snp(test_amd, snp_report, measurement=GOOD_MEASUREMENT), above)
    assert isinstance(low, Reject)
    assert low.code is RejectCode.BAD_ATTESTATION
    assert "below the minimum" in low.message


@pytest.mark.parametrize(
    ("policy", "gap"),
    [
        (Policy(), "no measurement allowlist"),
        (replace(OPERATOR, allowed_measurements=frozenset()), "empty measurement allowlist"),
        (replace(OPERATOR, min_snp_tcb=None), "no minimum TCB"),
    ],
)
def test_a_policy_without_an_allowlist_or_a_minimum_tcb_does_not_qualify(policy: Policy, gap: str) -> None:
    found = tee_policy_gap("sev-snp", policy)
    assert found is not None
    assert gap in found
    assert tee_policy_gap("sev-snp", OPERATOR) is None
    intel = Policy(allowed_measurements=frozenset({GOOD_MEASUREMENT}))  # TCB: Intel's status, UpToDate by default
    assert tee_policy_gap("tdx", intel) is None
    min_tcb = tee_policy_gap("tdx", replace(intel, accepted_tcb_statuses=frozenset()))
    assert min_tcb is not None
    assert "minimum TCB" in min_tcb


def test_gpu_evidence_alone_never_satisfies_a_tee_job(test_amd: Any) -> None:
    assert tee_policy_gap("nvidia-gpu", OPERATOR) is not None
    out = _verify(test_amd, {"type": "nvidia-gpu", "evidence": b"\x01" * 64, "certs": b""}, OPERATOR)
    assert isinstance(out, Reject), out
    assert out.code is RejectCode.BAD_ATTESTATION
    assert "CPU TEE" in out.message


def test_evidence_on_a_job_that_does_not_require_a_tee_is_still_judged_by_its_policy(
    test_amd: Any, snp_report: Callable[..., bytes]
) -> None:
    optional = replace(JOB, tee_required=False)
    out = _verify(test_amd, _snp(test_amd, snp_report, **ISSUE_REPORT), OPERATOR, optional)
    assert isinstance(out, Reject)
    assert out.code is RejectCode.BAD_ATTESTATION


# --- GPU evidence beside CPU TEE evidence that binds it (5b) -------------------------------------------------


def _p384_cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey,
               ca: bool) -> bytes:  # fmt: skip
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2025, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2030, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(CA_KEY_USAGE, critical=True)
    return builder.sign(issuer_key, hashes.SHA384()).public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def test_gpu() -> tuple[ec.EllipticCurvePrivateKey, bytes, bytes, PinnedRoot]:
    """A fake NVIDIA device chain: a P-384 root CA and a GPU leaf it signed."""
    root_key, leaf_key = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
    root = _p384_cert("NVIDIA Test Root", root_key, "NVIDIA Test Root", root_key, ca=True)
    leaf = _p384_cert("GH100 Test FMC", leaf_key, "NVIDIA Test Root", root_key, ca=False)
    return leaf_key, leaf, root, PinnedRoot(vendor=NVIDIA, name="NVIDIA Test Root", version=1, der=root,
                                            activation_height=0)  # fmt: skip


def _gpu_evidence(key: ec.EllipticCurvePrivateKey, nonce: bytes) -> bytes:
    """An SPDM 1.1 GET_MEASUREMENTS request and its signed MEASUREMENTS response, one DMTF measurement block."""
    request = bytes([0x11, 0xE0, 0x01, 0xFF]) + nonce + b"\x00"
    value = b"\x42" * 48
    block = bytes([0x01]) + len(value).to_bytes(2, "little") + value
    record = bytes([0x01, 0x01]) + len(block).to_bytes(2, "little") + block
    response = bytes([0x11, 0x60, 0x00, 0x00, 0x01]) + len(record).to_bytes(3, "little") + record
    response += b"\x07" * 32 + (0).to_bytes(2, "little")  # responder nonce, no opaque data
    signed = request + response
    r, s = decode_dss_signature(key.sign(signed, ec.ECDSA(hashes.SHA384())))
    return signed + r.to_bytes(48, "big") + s.to_bytes(48, "big")


def _with_gpu(
    test_amd: Any, snp_report: Callable[..., bytes], test_gpu: Any, *, cpu_binds_gpu: bool = True,
    gpu_nonce: bytes | None = None,
) -> tuple[dict[str, object], Any]:  # fmt: skip
    leaf_key, leaf, root, pinned = test_gpu
    gpu = _gpu_evidence(leaf_key, _bound() if gpu_nonce is None else gpu_nonce)
    data = _bound() + (gpu_evidence_digest(gpu) if cpu_binds_gpu else bytes(32))
    cpu = snp_report(test_amd.vcek_key, report_data=data, chip_id=test_amd.chip_id, measurement=GOOD_MEASUREMENT)
    attestation: dict[str, object] = {
        "type": "sev-snp", "evidence": cpu, "certs": [test_amd.vcek, test_amd.ask, test_amd.ark],
        "gpu": {"evidence": gpu, "certs": [leaf, root]},
    }  # fmt: skip
    roots = make_vendor_roots((test_amd.root, pinned))
    return attestation, roots


def _verify_with(attestation: dict[str, object], roots: Any) -> AiAccepted | Reject:
    return verify_ai_v1(
        _body(attestation),
        JOB,
        provider_id=PROVIDER,
        model_digests={JOB.model: MODEL_DIGEST},
        roots=roots,
        policy=OPERATOR,
        at_time=AT,
        height=10,
    )


def test_gpu_evidence_counts_beside_cpu_evidence_that_binds_it(
    test_amd: Any, snp_report: Callable[..., bytes], test_gpu: Any
) -> None:
    attestation, roots = _with_gpu(test_amd, snp_report, test_gpu)
    out = _verify_with(attestation, roots)
    assert isinstance(out, AiAccepted), out
    assert out.attestation is not None
    assert out.attestation.kind == "sev-snp"
    assert out.gpu_attestation is not None
    assert out.gpu_attestation.kind == "nvidia-gpu"


def test_gpu_evidence_the_cpu_report_does_not_bind_is_bad_attestation(
    test_amd: Any, snp_report: Callable[..., bytes], test_gpu: Any
) -> None:
    attestation, roots = _with_gpu(test_amd, snp_report, test_gpu, cpu_binds_gpu=False)
    out = _verify_with(attestation, roots)
    assert isinstance(out, Reject)
    assert out.code is RejectCode.BAD_ATTESTATION
    assert "does not bind the work" in out.message


def test_gpu_evidence_with_another_nonce_is_bad_attestation(
    test_amd: Any, snp_report: Callable[..., bytes], test_gpu: Any
) -> None:
    attestation, roots = _with_gpu(test_amd, snp_report, test_gpu, gpu_nonce=b"\x99" * 32)  # a nonce the host chose
    out = _verify_with(attestation, roots)
    assert isinstance(out, Reject)
    assert out.code is RejectCode.BAD_ATTESTATION
    assert out.message.startswith("GPU evidence:")
