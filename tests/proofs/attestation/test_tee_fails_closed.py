"""Issue 14: attestation fails closed. A `tee_required` job accepts TEE evidence only under an operator policy with
a non-empty measurement allowlist and a minimum TCB; GPU evidence alone never counts (it binds only a nonce the
host chooses). The issue's attack: with no policy set, an SEV-SNP report with measurement 0xEE…, TCB (0,0,0,0)
and VMPL 3 was accepted for a tee_required job with a fabricated output.
"""

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from aicf.core.ids import input_digest, output_digest, provider_id, tee_report_data
from aicf.proofs.ai_v1 import AiAccepted, AiJob, verify_ai_v1
from aicf.proofs.attestation import Policy, make_vendor_roots
from aicf.proofs.attestation.registry import tee_policy_gap
from aicf.proofs.attestation.result import SnpTcb
from aicf.proofs.verdict import Reject, RejectCode

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
