"""The AI_V1 body verifier (SPEC §8), run after the envelope checks of `aicf.proofs.envelope`.

Checks in order; the first failure decides, and nothing unchecked counts as passed:

1. shape: model_id text, model_digest / input_digest / output_digest 32 bytes, output bytes (required when
   the output is at most 64 KiB; a larger one is declared by `output_size`), qos {runtime_ms, tokens} as
   non-negative integers (a float, NaN or negative value is MALFORMED), attestation {type, evidence, certs};
2. the model is the job's model and its digest the one the registry pins for it (DIGEST_MISMATCH);
3. input_digest is H("aicf/input/v1", prompt) of the job's own prompt (DIGEST_MISMATCH);
4. output_digest is H("aicf/output/v1", output) of the output carried (DIGEST_MISMATCH);
5. attestation: required by the job or not, present evidence is verified to a root in force at the inclusion
   height, at the inclusion block's time, judged by the registry's policy, and its report data must bind
   this task, model, input, output and provider (BAD_ATTESTATION / STALE_ATTESTATION / UNKNOWN_ROOT).
   (5a) For a `tee_required` job that policy must qualify (`tee_policy_gap`: a non-empty measurement allowlist and
   a minimum TCB), else UNVERIFIABLE; NVIDIA GPU evidence alone is BAD_ATTESTATION.
   (5b) GPU evidence counts only beside CPU TEE evidence that binds it: `attestation.gpu = {evidence, certs}`,
   its SPDM requester nonce the work binding, and the CPU report_data the binding followed by
   `H("aicf/teegpu/v1", gpu evidence)` instead of the first 32 zero bytes.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from aicf.core.encoding import tagged_hash
from aicf.core.ids import input_digest, output_digest, tee_report_data
from aicf.proofs.attestation.registry import tee_policy_gap
from aicf.proofs.attestation.result import AttestationResult, Policy
from aicf.proofs.attestation.result import Reject as AttestationReject
from aicf.proofs.attestation.roots import VendorRoots
from aicf.proofs.attestation.verify import check_binding, verify_evidence
from aicf.proofs.verdict import Reject, RejectCode

MAX_INLINE_OUTPUT = 64 * 1024
GPU_TAG = "aicf/teegpu/v1"  # not a SPEC tag (issue 14): binds GPU evidence into the CPU TEE report
# How far a runtime claim may exceed the time the coordinator observed between the lease grant and the proof
# (docs/DECISIONS.md "Runtimes that were measured"). The grant time is stored in whole seconds, so the observed
# span is already up to 1 s long; the rest covers a provider clock that runs a little fast.
RUNTIME_SLACK_MS = 2000
BODY_KEYS = frozenset(
    {"model_id", "model_digest", "input_digest", "output_digest", "output", "output_size", "qos", "attestation"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AiJob:
    """What the verifier needs to know of the job, from the store."""

    task_id: bytes
    model: str
    prompt: bytes
    max_runtime_ms: int
    max_tokens: int
    tee_required: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AiAccepted:
    runtime_ms: int  # min(reported, max_runtime_ms)
    tokens: int
    output_digest: bytes
    output: bytes | None
    attestation: AttestationResult | None
    gpu_attestation: AttestationResult | None = None  # (5b) GPU evidence the CPU evidence binds


def gpu_evidence_digest(evidence: bytes) -> bytes:
    """What CPU TEE evidence binds of the GPU evidence beside it (5b): H("aicf/teegpu/v1", evidence)."""
    return tagged_hash(GPU_TAG, evidence)


def _malformed(message: str) -> Reject:
    return Reject(code=RejectCode.MALFORMED, message=f"AI_V1 body: {message}")


def _digest(body: Mapping[str, object], key: str) -> bytes | Reject:
    value = body.get(key)
    if not isinstance(value, bytes) or len(value) != 32:
        return _malformed(f"{key} must be 32 bytes, got {type(value).__name__}")
    return value


def _count(qos: Mapping[str, object], key: str) -> int | Reject:
    value = qos.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        return _malformed(f"qos.{key} must be a non-negative integer, got {value!r}")
    return value


def verify_ai_v1(
    body: Mapping[str, object],
    job: AiJob,
    *,
    provider_id: bytes,
    model_digests: Mapping[str, bytes],
    roots: VendorRoots,
    policy: Policy,
    at_time: int,
    height: int,
    gpu_policy: Policy | None = None,
) -> AiAccepted | Reject:
    """Verify an AI_V1 body against its job; never raises (see the module docstring for the steps).
    `gpu_policy` judges GPU evidence carried beside CPU TEE evidence (default: `Policy()`)."""
    unknown = set(body) - BODY_KEYS
    if unknown:  # (1)
        return _malformed(f"unknown field {sorted(unknown)[0]!r}")
    model = body.get("model_id")
    if not isinstance(model, str):
        return _malformed(f"model_id must be text, got {type(model).__name__}")
    digests: dict[str, bytes] = {}
    for key in ("model_digest", "input_digest", "output_digest"):
        got = _digest(body, key)
        if isinstance(got, Reject):
            return got
        digests[key] = got
    output = body.get("output")
    if output is not None and not isinstance(output, bytes):
        return _malformed(f"output must be bytes, got {type(output).__name__}")
    if output is None:
        size = body.get("output_size")
        if isinstance(size, bool) or not isinstance(size, int) or size <= MAX_INLINE_OUTPUT:
            return _malformed(f"output is required when it is at most {MAX_INLINE_OUTPUT} bytes")
    qos = body.get("qos")
    if not isinstance(qos, Mapping):
        return _malformed("qos must be a map {runtime_ms, tokens}")
    runtime = _count(qos, "runtime_ms")
    if isinstance(runtime, Reject):
        return runtime
    tokens = _count(qos, "tokens")
    if isinstance(tokens, Reject):
        return tokens
    if tokens > job.max_tokens:
        return _malformed(f"qos.tokens {tokens} exceeds the job's max_tokens {job.max_tokens}")
    if model != job.model:  # (2)
        return Reject(code=RejectCode.DIGEST_MISMATCH, message=f"model_id: expected {job.model!r}, got {model!r}")
    pinned = model_digests.get(job.model)
    if pinned is None or pinned != digests["model_digest"]:
        want = "none pinned" if pinned is None else f"0x{pinned.hex()}"
        return Reject(
            code=RejectCode.DIGEST_MISMATCH,
            message=f"model_digest: expected {want}, got 0x{digests['model_digest'].hex()}",
        )
    want_input = input_digest(job.prompt)  # (3)
    if digests["input_digest"] != want_input:
        return Reject(
            code=RejectCode.DIGEST_MISMATCH,
            message=f"input_digest: expected 0x{want_input.hex()}, got 0x{digests['input_digest'].hex()}",
        )
    if output is not None:  # (4)
        want_output = output_digest(output)
        if digests["output_digest"] != want_output:
            return Reject(
                code=RejectCode.DIGEST_MISMATCH,
                message=f"output_digest: expected 0x{want_output.hex()}, got 0x{digests['output_digest'].hex()}",
            )
    attestation = body.get("attestation")  # (5)
    result: AttestationResult | None = None
    gpu_result: AttestationResult | None = None
    if attestation is None:
        if job.tee_required:
            return Reject(code=RejectCode.BAD_ATTESTATION, message="the job requires a TEE; no attestation given")
    else:
        binding = tee_report_data(
            job.task_id, digests["model_digest"], digests["input_digest"], digests["output_digest"], provider_id
        )
        checked = _check_attestation(attestation, job, binding, roots, policy, at_time, height)
        if isinstance(checked, Reject):
            return checked
        gpu = attestation.get("gpu") if isinstance(attestation, Mapping) else None
        if gpu is not None:  # (5b)
            gpu_checked = _check_gpu(gpu, binding, roots, gpu_policy or Policy(), at_time, height)
            if isinstance(gpu_checked, Reject):
                return gpu_checked
            gpu_result = gpu_checked
        result = checked
    return AiAccepted(
        runtime_ms=min(runtime, job.max_runtime_ms),
        tokens=tokens,
        output_digest=digests["output_digest"],
        output=output,
        attestation=result,
        gpu_attestation=gpu_result,
    )


def _certs(certs: object, what: str) -> bytes | tuple[bytes, ...] | Reject:
    if isinstance(certs, list):
        if not all(isinstance(c, bytes) for c in certs):
            return _malformed(f"{what} must be bytes or a list of bytes")
        return tuple(c for c in certs if isinstance(c, bytes))
    if not isinstance(certs, bytes):
        return _malformed(f"{what} must be bytes or a list of bytes")
    return certs


def _check_gpu(
    gpu: object, binding: bytes, roots: VendorRoots, policy: Policy, at_time: int, height: int
) -> AttestationResult | Reject:
    """(5b) NVIDIA GPU evidence beside CPU TEE evidence: verified to a pinned root, judged by its policy, its SPDM
    requester nonce the work binding (the CPU report binds this evidence's digest, checked in (5))."""
    if not isinstance(gpu, Mapping) or not isinstance(gpu.get("evidence"), bytes):
        return _malformed("attestation.gpu must be a map {evidence (bytes), certs}")
    evidence = gpu.get("evidence")
    certs = _certs(gpu.get("certs", b""), "attestation.gpu.certs")
    if isinstance(certs, Reject) or not isinstance(evidence, bytes):
        return certs if isinstance(certs, Reject) else _malformed("attestation.gpu.evidence must be bytes")
    verdict = verify_evidence("nvidia-gpu", evidence, certs, roots, at_time, policy, height=height)
    if isinstance(verdict, AttestationReject):
        return Reject(code=RejectCode(verdict.code.value), message=f"GPU evidence: {verdict.message}")
    unbound = check_binding(verdict, binding)
    if unbound is not None:
        return Reject(code=RejectCode(unbound.code.value), message=f"GPU evidence: {unbound.message}")
    return verdict


def _check_attestation(
    attestation: object,
    job: AiJob,
    binding: bytes,
    roots: VendorRoots,
    policy: Policy,
    at_time: int,
    height: int,
) -> AttestationResult | Reject:
    if not isinstance(attestation, Mapping):
        return _malformed("attestation must be a map {type, evidence, certs}")
    kind, evidence, certs = attestation.get("type"), attestation.get("evidence"), attestation.get("certs", b"")
    if not isinstance(kind, str) or not isinstance(evidence, bytes):
        return _malformed("attestation needs type (text) and evidence (bytes)")
    if job.tee_required and (gap := tee_policy_gap(kind, policy)) is not None:  # (5a) fail closed, issue 14
        if kind == "nvidia-gpu":  # the provider's choice: evidence that cannot prove the work ran in a TEE
            return Reject(code=RejectCode.BAD_ATTESTATION, message=f"the job requires a TEE: {gap}")
        return Reject(  # the operator's gap, not the provider's fault: no slash, the job requeues
            code=RejectCode.UNVERIFIABLE, message=f"the job requires a TEE, and no operator policy admits it: {gap}"
        )
    gpu = attestation.get("gpu")
    if gpu is not None and kind == "nvidia-gpu":
        return _malformed("attestation.gpu rides beside CPU TEE evidence, not beside GPU evidence")
    parsed = _certs(certs, "attestation.certs")
    if isinstance(parsed, Reject):
        return parsed
    verdict = verify_evidence(kind, evidence, parsed, roots, at_time, policy, height=height)
    if isinstance(verdict, AttestationReject):
        return Reject(code=RejectCode(verdict.code.value), message=verdict.message)
    if isinstance(gpu, Mapping) and isinstance(gpu.get("evidence"), bytes):  # (5b) the CPU report binds the GPU's
        gpu_evidence = gpu.get("evidence")
        binding += gpu_evidence_digest(gpu_evidence if isinstance(gpu_evidence, bytes) else b"")
    unbound = check_binding(verdict, binding)
    if unbound is not None:
        return Reject(code=RejectCode(unbound.code.value), message=unbound.message)
    return verdict


def check_runtime_claim(claimed_ms: int, observed_ms: int, slack_ms: int = RUNTIME_SLACK_MS) -> Reject | None:
    """A provider cannot have run longer than the coordinator saw its lease open: a claim above the observed span
    plus the slack is RUNTIME_MISMATCH (slashed as FRAUD); within it, pay follows min(claimed, observed)."""
    if claimed_ms > observed_ms + slack_ms:
        return Reject(
            code=RejectCode.RUNTIME_MISMATCH,
            message=f"qos.runtime_ms {claimed_ms} exceeds the {observed_ms} ms observed between the lease grant and "
            f"the proof by more than the {slack_ms} ms slack",
        )
    return None
