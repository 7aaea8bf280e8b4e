"""The proof verifier the coordinator calls after the envelope checks: AI_V1 or QUANTUM_V1 by kind.

It only composes `aicf.proofs`: every verdict comes from evidence the verifiers check themselves. TEE evidence is
judged by `trust`: the registry's roots and per-kind policies in force at `height` (aicf.service.trust); quantum
bodies by `params`, the params in force (trap_k, the device class's thresholds), which the caller passes; a kind
with no policy in the registry is judged by the verifier's own `policy`. With a `watch`, accepted TEE evidence
leaves the expiry of the collateral and certificates it relied on there (aicf.service.collateral).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aicf.core.chain import Job
from aicf.core.params import Params
from aicf.core.records import LeaseRecord
from aicf.proofs.ai_v1 import AiAccepted, AiJob, verify_ai_v1
from aicf.proofs.attestation.registry import TrustAnchors
from aicf.proofs.attestation.result import Policy
from aicf.proofs.envelope import ProofEnvelope
from aicf.proofs.quantum import VerdictCode, quantum_shape_error, verify_quantum_body
from aicf.proofs.quantum_device import check_device_cert, pinned_devices
from aicf.proofs.verdict import Reject, RejectCode
from aicf.service.collateral import CollateralWatch


@dataclass(frozen=True, slots=True, kw_only=True)
class BodyAccepted:
    """What a verified body says, for the units formula and the ResultRecord."""

    output_digest: bytes
    runtime_ms: int = 0  # AI: min(reported, max_runtime_ms)
    tokens: int = 0
    units_mu: int | None = None  # quantum: the verifier's own units (quality from the traps)
    quality_bps: int = 0
    attested: str = ""  # the evidence type that verified, if any


class ProofVerifier(Protocol):
    def verify(
        self,
        env: ProofEnvelope,
        job: Job,
        request: Mapping[str, object],
        lease: LeaseRecord,
        at_time: int,
        height: int,
        trust: TrustAnchors,
        params: Params,
    ) -> BodyAccepted | Reject: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class StandardVerifier:
    model_digests: Mapping[str, bytes]
    trap_seed: Callable[[int], bytes]  # s_E for an epoch
    policy: Policy = field(default_factory=Policy)  # for an evidence kind the registry holds no policy for
    watch: CollateralWatch | None = None  # records what accepted TEE evidence relied on, for the collateral alarm

    def verify(
        self,
        env: ProofEnvelope,
        job: Job,
        request: Mapping[str, object],
        lease: LeaseRecord,
        at_time: int,
        height: int,
        trust: TrustAnchors,
        params: Params,
    ) -> BodyAccepted | Reject:
        if job.kind == "ai":
            if env.kind != "AI_V1":
                return Reject(code=RejectCode.MALFORMED, message=f"an ai job needs an AI_V1 proof, got {env.kind}")
            prompt = request.get("prompt")
            ai_job = AiJob(
                task_id=job.task_id,
                model=job.model,
                prompt=prompt if isinstance(prompt, bytes) else b"",
                max_runtime_ms=_int(request.get("max_runtime_ms")),
                max_tokens=_int(request.get("max_tokens")),
                tee_required=job.tee_required,
            )
            out = verify_ai_v1(
                env.body,
                ai_job,
                provider_id=env.provider_id,
                model_digests=self.model_digests,
                roots=trust.roots,
                policy=trust.policy_for(_evidence_kind(env.body), self.policy),
                at_time=at_time,
                height=height,
                gpu_policy=trust.policy_for("nvidia-gpu", self.policy),
            )
            if isinstance(out, Reject):
                return out
            if self.watch is not None:
                for result in (out.attestation, out.gpu_attestation):
                    if result is not None:
                        self.watch.record(result.kind, result.expiries)
            return _ai_accepted(out)
        if env.kind != "QUANTUM_V1":
            return Reject(code=RejectCode.MALFORMED, message=f"a quantum job needs a QUANTUM_V1 proof, got {env.kind}")
        if (shape := quantum_shape_error(env.body, params.trap_k)) is not None:
            return Reject(code=RejectCode.MALFORMED, message=shape)
        device = check_device_cert(env.body, pinned_devices(trust.roots), lease.lease_id)  # fails closed
        if isinstance(device, Reject):
            return device
        circuit = request.get("circuit")
        verdict = verify_quantum_body(
            env.body,
            circuit if isinstance(circuit, bytes) else b"",
            _int(request.get("shots")),
            self.trap_seed(lease.epoch),
            job.task_id,
            params,
            device.device_class,
        )
        if verdict.code is not VerdictCode.ACCEPT:
            return Reject(code=RejectCode(verdict.code.value), message=verdict.message)
        digest = env.body.get("circuit_digest")
        return BodyAccepted(
            output_digest=digest if isinstance(digest, bytes) else b"",
            units_mu=verdict.units_mu,
            quality_bps=verdict.quality_bps,
        )


def _evidence_kind(body: Mapping[str, object]) -> str:
    """The attestation type an AI_V1 body claims ("" without one); verify_ai_v1 checks the rest."""
    attestation = body.get("attestation")
    kind = attestation.get("type") if isinstance(attestation, Mapping) else None
    return kind if isinstance(kind, str) else ""


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _ai_accepted(out: AiAccepted) -> BodyAccepted:
    return BodyAccepted(
        output_digest=out.output_digest,
        runtime_ms=out.runtime_ms,
        tokens=out.tokens,
        attested=out.attestation.kind if out.attestation is not None else "",
    )
