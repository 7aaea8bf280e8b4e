"""Quantum benchmarks (issue 6): trap derivation and QUANTUM_V1 verification time per quantum job.

Run: .venv/bin/python benchmarks/bench_quantum.py [--repeat N]
For each job size (qubits × depth, default shots 1000) it derives the batch of k + 1 circuits (what the coordinator
does once per lease), runs it on the stim reference executor (what an honest provider does), and verifies the body
(what every verifier does: rebuild the traps from the seed, recompute each certain bitstring with stim, count).
Prints a markdown table of the median times in milliseconds.
"""

import argparse
import statistics
import time
from collections.abc import Callable

from aicf.core.params import Params
from aicf.proofs.quantum import derive_batch, verify_quantum_body
from aicf.provider.quantum_sim import quantum_body, run_batch

SIZES = ((5, 5), (20, 20), (50, 100), (128, 256), (32, 1024))  # (qubits, depth); the last two at MAX_VOLUME


def job_circuit(n: int, d: int) -> bytes:
    """Depth exactly d on n qubits: `h q;` layers alternating with a layer of cx pairs (or `h q;` alone where the
    cx layers would not fit the 256 KiB circuit limit, as for the largest job)."""
    lines = ['OPENQASM 2.0;\ninclude "qelib1.inc";', f"qreg q[{n}];", f"creg c[{n}];"]
    brickwork = n >= 2 and n * d <= 20_000
    for layer in range(d):
        if layer % 2 == 0 or not brickwork:
            lines.append("h q;")
        else:
            lines += [f"cx q[{i}],q[{i + 1}];" for i in range(0, n - 1, 2)]
            if n % 2:
                lines.append(f"h q[{n - 1}];")
    lines.append("measure q -> c;")
    return "\n".join(lines).encode()


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--shots", type=int, default=1000)
    args = parser.parse_args()
    params = Params.default()
    seed, task = b"\x01" * 32, b"\x02" * 32
    print(f"k = {params.trap_k} traps, {args.shots} job shots, median of {args.repeat} runs")
    print()
    print(
        "| job (qubits × depth) | derive batch (ms) | honest stim run (ms) | verify body (ms) | verdict | quality_bps |"
    )
    print("|---|---:|---:|---:|---|---:|")
    for n, d in SIZES:
        job = job_circuit(n, d)
        batch = derive_batch(job, args.shots, seed, task, params)
        if batch.job_depth != d:
            raise SystemExit(f"benchmark circuit has depth {batch.job_depth}, wanted {d}")
        repeat = args.repeat if n * d <= 5000 else max(1, args.repeat // 5)
        derive_ms = median_ms(lambda: derive_batch(job, args.shots, seed, task, params), repeat)  # noqa: B023
        results = run_batch(batch.circuits, batch.shots, 1)
        run_ms = median_ms(lambda: run_batch(batch.circuits, batch.shots, 1), repeat)  # noqa: B023
        body = quantum_body(batch.circuits, batch.shots, args.shots, results)
        verdict = verify_quantum_body(body, job, args.shots, seed, task, params)
        verify_ms = median_ms(lambda: verify_quantum_body(body, job, args.shots, seed, task, params), repeat)  # noqa: B023
        print(
            f"| {n} × {d} | {derive_ms:.1f} | {run_ms:.1f} | {verify_ms:.1f} | {verdict.code.value} "
            f"| {verdict.quality_bps} |"
        )


if __name__ == "__main__":
    main()
