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
"""

from collections.abc import Mapping
from dataclasses import dataclass

from aicf.core.ids import input_digest, output_digest, tee_report_data
from aicf.proofs.attestation.registry import tee_policy_gap
from aicf.proofs.attestation.result import AttestationResult, Policy
from aicf.proofs.attestation.result import Reject as AttestationReject
from aicf.proofs.attestation.roots import VendorRoots
from aicf.proofs.attestation.verify import check_binding, verify_evidence
from aicf.proofs.verdict import Reject, RejectCode

MAX_INLINE_OUTPUT = 64 * 1024
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
) -> AiAccepted | Reject:
    """Verify an AI_V1 body against its job; never raises (see the module docstring for the steps)."""
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
    if attestation is None:
        if job.tee_required:
            return Reject(code=RejectCode.BAD_ATTESTATION, message="the job requires a TEE; no attestation given")
    else:
        checked = _check_attestation(attestation, job, digests, provider_id, roots, policy, at_time, height)
        if isinstance(checked, Reject):
            return checked
        result = checked
    return AiAccepted(
        runtime_ms=min(runtime, job.max_runtime_ms),
        tokens=tokens,
        output_digest=digests["output_digest"],
        output=output,
        attestation=result,
    )


def _check_attestation(
    attestation: object,
    job: AiJob,
    digests: Mapping[str, bytes],
    provider_id: bytes,
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
    if isinstance(certs, list):
        if not all(isinstance(c, bytes) for c in certs):
            return _malformed("attestation.certs must be bytes or a list of bytes")
        certs = tuple(c for c in certs if isinstance(c, bytes))
    if not isinstance(certs, bytes | tuple):
        return _malformed("attestation.certs must be bytes or a list of bytes")
    verdict = verify_evidence(kind, evidence, certs, roots, at_time, policy, height=height)
    if isinstance(verdict, AttestationReject):
        return Reject(code=RejectCode(verdict.code.value), message=verdict.message)
    binding = tee_report_data(
        job.task_id, digests["model_digest"], digests["input_digest"], digests["output_digest"], provider_id
    )
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
