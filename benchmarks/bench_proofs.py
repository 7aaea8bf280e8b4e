"""Proof verification benchmarks (issue 6): AI_V1 envelope + body per second (no TEE), quantum verification per
job, and the coordinator's AI trap cost (re-execution per model, then the comparison).

Run: .venv/bin/python benchmarks/bench_proofs.py [--seconds S] [--models minilm-l6-v2,smollm2-135m]
TEE evidence verification rates (Nitro, SEV-SNP, DCAP, NVIDIA) are measured by benchmarks/bench_attestation.py.
Prints a markdown table.
"""

import argparse
import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from aicf.core.ids import input_digest, output_digest, provider_id
from aicf.core.leases import Lease, LeaseStatus
from aicf.core.params import Params
from aicf.proofs.ai_traps import check_embedding_trap, check_generation_output
from aicf.proofs.ai_v1 import AiJob, verify_ai_v1
from aicf.proofs.attestation.result import Policy
from aicf.proofs.attestation.roots import make_vendor_roots
from aicf.proofs.envelope import ProofEnvelope, check_envelope, parse_envelope, sign_envelope
from aicf.proofs.quantum import derive_batch, verify_quantum_body
from aicf.provider.quantum_sim import quantum_body, run_batch

sys.path.insert(0, str(Path(__file__).parent))
from bench_quantum import job_circuit


def rate(fn: Callable[[], object], seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def ai_v1_rate(seconds: float) -> float:
    key = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    pid = provider_id(public)
    task, lid, digest = b"\x01" * 32, b"\x02" * 32, b"\x5a" * 32
    prompt, output = b"A man is playing a guitar on stage.", struct.pack("<384f", *([0.05] * 384))
    body = {
        "model_id": "minilm-l6-v2",
        "model_digest": digest,
        "input_digest": input_digest(prompt),
        "output_digest": output_digest(output),
        "output": output,
        "qos": {"runtime_ms": 40, "tokens": 0},
    }
    env = ProofEnvelope(version=1, kind="AI_V1", task_id=task, lease_id=lid, provider_id=pid, body=body, sig=b"")
    raw = {**env.to_map(), "sig": sign_envelope(key, env)}
    lease = Lease(
        lease_id=lid, task_id=task, provider_id=pid, attempt=0, granted_at=0, expires_at=60, status=LeaseStatus.LIVE
    )
    job = AiJob(
        task_id=task, model="minilm-l6-v2", prompt=prompt, max_runtime_ms=2000, max_tokens=0, tee_required=False
    )
    roots, policy = make_vendor_roots(()), Policy()

    def once() -> None:
        parsed = parse_envelope(raw)
        assert isinstance(parsed, ProofEnvelope)
        assert (
            check_envelope(parsed, provider_key=public, lease=lease, received_at=10, seen_proof=lambda _: False) is None
        )
        verdict = verify_ai_v1(
            parsed.body,
            job,
            provider_id=pid,
            model_digests={"minilm-l6-v2": digest},
            roots=roots,
            policy=policy,
            at_time=10,
            height=1,
        )
        assert not hasattr(verdict, "code"), verdict

    once()
    return rate(once, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--models", default="minilm-l6-v2,smollm2-135m")
    args = parser.parse_args()
    params = Params.default()
    print("| what | measure |")
    print("|---|---:|")
    print(f"| AI_V1 envelope (Ed25519 over proof_id) + body, no TEE | {ai_v1_rate(args.seconds):,.0f} /s |")
    seed, task = b"\x01" * 32, b"\x02" * 32
    for n, d in ((5, 5), (20, 20)):
        job = job_circuit(n, d)
        batch = derive_batch(job, 1000, seed, task, params)
        qbody = quantum_body(batch.circuits, batch.shots, 1000, run_batch(batch.circuits, batch.shots, 1))
        ms = median_ms(lambda: verify_quantum_body(qbody, job, 1000, seed, task, params), 5)  # noqa: B023
        print(f"| QUANTUM_V1 verify, {n} × {d} job, k = {params.trap_k} traps, 1000 shots | {ms:.1f} ms/job |")
    vec = struct.pack("<384f", *([0.05] * 384))
    cmp_us = median_ms(lambda: check_embedding_trap(vec, vec, params.embedding_cosine_min_bps), 50) * 1000
    print(f"| AI trap comparison, embedding cosine (float64, 384 dims) | {cmp_us:.0f} µs |")
    from aicf.provider.models import ModelUnavailableError, reexecute_trap, runner
    from aicf.provider.trap_corpus import DEFAULT_CORPUS

    for model in [m for m in args.models.split(",") if m]:
        case = next((c for c in DEFAULT_CORPUS if c.model == model), None)
        if case is None:
            continue
        try:
            t0 = time.perf_counter()
            runner(model).load()
            load_s = time.perf_counter() - t0
        except ModelUnavailableError as exc:
            print(f"| AI trap re-execution, {model} | unavailable: {exc.reason} |")
            continue
        answer = reexecute_trap(model, case.prompt, case.max_tokens)
        ms = median_ms(lambda: reexecute_trap(model, case.prompt, case.max_tokens), 3)  # noqa: B023
        print(f"| AI trap re-execution, {model} (load {load_s:.1f} s once) | {ms:.0f} ms/trap |")
        if answer.kind == "generation":
            us = median_ms(lambda: check_generation_output(answer.token_ids, answer.text, answer.output), 50) * 1000  # noqa: B023
            print(f"| AI trap comparison, {model} token ids | {us:.0f} µs |")


if __name__ == "__main__":
    main()
