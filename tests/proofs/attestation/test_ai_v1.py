"""The AI_V1 body verifier: digests bind the job's own prompt and the returned output, and TEE evidence
must verify to a root in force and bind this task, model, input, output and provider (SPEC §8)."""

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from aicf.core.ids import input_digest, output_digest, provider_id, tee_report_data
from aicf.proofs.ai_v1 import AiAccepted, AiJob, verify_ai_v1
from aicf.proofs.attestation import Policy, VendorRoots, make_vendor_roots
from aicf.proofs.verdict import Reject, RejectCode

PROVIDER = provider_id(b"\x07" * 32)
MODEL_DIGEST = b"\x33" * 32
JOB = AiJob(
    task_id=b"\x11" * 32, model="smollm2-135m", prompt=b"2+2=", max_runtime_ms=5000, max_tokens=16, tee_required=False
)
AT = 1_767_225_600  # 2026-01-01: inside the test chain's validity
PERMISSIVE = Policy(allow_debug=False, allowed_measurements=None)


def body(**changes: object) -> dict[str, object]:
    out: dict[str, object] = {
        "model_id": JOB.model,
        "model_digest": MODEL_DIGEST,
        "input_digest": input_digest(JOB.prompt),
        "output_digest": output_digest(b"4"),
        "output": b"4",
        "qos": {"runtime_ms": 120, "tokens": 1},
    }
    out.update(changes)
    return out


def verify(b: dict[str, object], job: AiJob = JOB, roots: VendorRoots | None = None, height: int = 10) -> object:
    return verify_ai_v1(
        b,
        job,
        provider_id=PROVIDER,
        model_digests={JOB.model: MODEL_DIGEST},
        roots=roots if roots is not None else make_vendor_roots(()),
        policy=PERMISSIVE,
        at_time=AT,
        height=height,
    )


def code_of(out: object) -> RejectCode:
    assert isinstance(out, Reject), out
    return out.code


def test_honest_body_is_accepted_with_runtime_capped_at_the_jobs_maximum() -> None:
    out = verify(body(qos={"runtime_ms": 9000, "tokens": 1}))
    assert isinstance(out, AiAccepted)
    assert out.runtime_ms == JOB.max_runtime_ms
    assert out.output == b"4"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"output_digest": output_digest(b"5")}, "output_digest: expected"),
        ({"input_digest": input_digest(b"other prompt")}, "input_digest: expected"),
        ({"model_digest": b"\x34" * 32}, "model_digest: expected"),
        ({"model_id": "llama3-8b"}, "model_id: expected 'smollm2-135m'"),
    ],
)
def test_digest_that_does_not_match_the_job_is_digest_mismatch(change: dict[str, object], needle: str) -> None:
    out = verify(body(**change))
    assert code_of(out) is RejectCode.DIGEST_MISMATCH
    assert isinstance(out, Reject)
    assert needle in out.message


@pytest.mark.parametrize(
    "change",
    [
        {"qos": {"runtime_ms": float("nan"), "tokens": 1}},
        {"qos": {"runtime_ms": -1, "tokens": 1}},
        {"qos": {"runtime_ms": 1.5, "tokens": 1}},
        {"qos": {"runtime_ms": True, "tokens": 1}},
        {"qos": {"runtime_ms": 10, "tokens": 17}},
        {"qos": "fast"},
        {"output": None},
        {"output": "4"},
        {"output_digest": b"\x00" * 31},
        {"model_id": 7},
        {"extra": 1},
        {"attestation": {"type": "nitro"}},
        {"attestation": {"type": "nitro", "evidence": b"x", "certs": [1]}},
    ],
)
def test_malformed_bodies_are_rejected_never_raised(change: dict[str, object]) -> None:
    b = body(**change)
    if change.get("output", "") is None:
        del b["output"]
    assert code_of(verify(b)) is RejectCode.MALFORMED


def test_large_output_may_be_left_out_when_its_size_is_declared() -> None:
    b = body(output_size=64 * 1024 + 1)
    del b["output"]
    out = verify(b)
    assert isinstance(out, AiAccepted)
    assert out.output is None


def test_tee_required_without_evidence_is_bad_attestation() -> None:
    assert code_of(verify(body(), replace(JOB, tee_required=True))) is RejectCode.BAD_ATTESTATION


def _bound(provider: bytes = PROVIDER) -> bytes:
    return tee_report_data(JOB.task_id, MODEL_DIGEST, input_digest(JOB.prompt), output_digest(b"4"), provider)


def test_nitro_evidence_binding_the_work_is_accepted(test_nitro: Any, nitro_doc_of: Callable[..., bytes]) -> None:
    doc = nitro_doc_of(test_nitro, user_data=_bound())
    out = verify(body(attestation={"type": "nitro", "evidence": doc}), roots=make_vendor_roots((test_nitro.root,)))
    assert isinstance(out, AiAccepted)
    assert out.attestation is not None
    assert out.attestation.kind == "nitro"


def test_evidence_bound_to_another_provider_is_bad_attestation(
    test_nitro: Any, nitro_doc_of: Callable[..., bytes]
) -> None:
    doc = nitro_doc_of(test_nitro, user_data=_bound(provider_id(b"\x08" * 32)))
    out = verify(body(attestation={"type": "nitro", "evidence": doc}), roots=make_vendor_roots((test_nitro.root,)))
    assert code_of(out) is RejectCode.BAD_ATTESTATION
    assert isinstance(out, Reject)
    assert "does not bind the work" in out.message


def test_evidence_judged_by_roots_in_force_at_its_inclusion_height(
    test_nitro: Any, nitro_doc_of: Callable[..., bytes]
) -> None:
    late = replace(test_nitro.root, activation_height=100)
    doc = nitro_doc_of(test_nitro, user_data=_bound())
    b = body(attestation={"type": "nitro", "evidence": doc})
    assert code_of(verify(b, roots=make_vendor_roots((late,)), height=99)) is RejectCode.UNKNOWN_ROOT
    assert isinstance(verify(b, roots=make_vendor_roots((late,)), height=100), AiAccepted)


def test_unknown_evidence_type_is_malformed() -> None:
    assert code_of(verify(body(attestation={"type": "sgx2", "evidence": b"x"}))) is RejectCode.MALFORMED
