"""The cost of checking quantum jobs on their own results, and of AI traps to the fund (issue 14, "Speed").

Run: .venv/bin/python benchmarks/bench_trap_costs.py [--runs N] [--shots S]

1. Per job, the distribution test the verifier runs on the job's own counts (`check_job_results`: stim's exact
   check of a Clifford job, the statevector cross-entropy of a non-Clifford one) beside the reference in the same
   run: the honest simulation of that job alone (stim sampling, or the statevector and its sampling), interleaved
   round by round (benchmarks/reference.py). The ratio says what checking costs relative to doing the work.
2. Trap share of the fund: traps drawn with `draw_trap_input` from a synthetic population of real smollm2 jobs at
   params' trap_bps; what their escrows take from the fund and what the fund earns from the same jobs (its
   fund_bps of every reward), with every job charged its full `max_units_mu` at the reserve fee or above.
   Arithmetic, not timing: no reference is needed.
"""

import argparse
import random
import time
from collections.abc import Callable

import numpy as np
from reference import fmt_ratio, fmt_spread, interleave, load_average, rounds

from aicf.core.params import Params, params_from_mapping
from aicf.core.pricing import reserve_fee
from aicf.core.qasm import clifford_ops, parse_circuit
from aicf.core.requests import validate_request
from aicf.core.types import BPS
from aicf.proofs.quantum_check import check_job_results, statevector
from aicf.provider.quantum_sim import run_batch
from aicf.service.trap_inputs import JobShape, draw_trap_input
from aicf.service.traps import TrapPrompt, traps_due

SEED = b"\x07" * 32
MODEL = "smollm2-135m"


def ghz(n: int) -> bytes:
    gates = "".join(f"cx q[{i}],q[{i + 1}];\n" for i in range(n - 1))
    return (
        f'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[{n}];\ncreg c[{n}];\nh q[0];\n{gates}measure q -> c;\n'.encode()
    )


def layered_t(n: int, layers: int) -> bytes:
    gates = []
    for _ in range(layers):
        gates += [f"t q[{q}];\nh q[{q}];\n" for q in range(n)]
        gates += [f"cx q[{q}],q[{q + 1}];\n" for q in range(0, n - 1, 2)]
    head = f'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[{n}];\ncreg c[{n}];\n'
    return (head + "".join(gates) + "measure q -> c;\n").encode()


def honest_counts(job: bytes, shots: int, seed: int) -> dict[str, int]:
    """The honest simulation of the job alone: stim for a Clifford circuit, else the statevector, sampled."""
    circuit = parse_circuit(job)
    try:
        clifford_ops(circuit)
    except Exception:  # noqa: BLE001 - NotCliffordError: fall back to the statevector
        probs = (np.abs(statevector(circuit)) ** 2).reshape(-1)
        drawn = np.random.default_rng(seed).choice(len(probs), size=shots, p=probs / probs.sum())
        out: dict[str, int] = {}
        for index in drawn:
            bits = format(int(index), f"0{circuit.n_qubits}b")
            out[bits] = out.get(bits, 0) + 1
        return out
    return dict(run_batch([job], [shots], seed)[0])


def per_s(fn: Callable[[], object]) -> Callable[[], float]:
    def timed() -> float:
        t0 = time.perf_counter()
        fn()
        return 1.0 / (time.perf_counter() - t0)  # jobs per second

    return timed


def quantum_rows(runs: int, shots: int, params: Params) -> None:
    noise = BPS - params.trap_threshold_bps_by_class["noisy"]
    xeb = params.xeb_min_bps_by_class["noisy"]
    print(f"### Distribution test per job vs the honest simulation ({shots} shots, {rounds(runs)}, {load_average()})")
    print()
    print("| job | method | check (ms, min / median / max) | honest simulation (ms) | check ÷ simulation (time) |")
    print("|---|---|---:|---:|---:|")
    for label, job in (
        ("GHZ 20 qubits (Clifford)", ghz(20)),
        ("GHZ 100 qubits (Clifford)", ghz(100)),
        ("layered T, 6 qubits × 6", layered_t(6, 6)),
        ("layered T, 10 qubits × 10", layered_t(10, 10)),
        ("layered T, 12 qubits × 12", layered_t(12, 12)),
    ):
        circuit = parse_circuit(job)
        counts = honest_counts(job, shots, 1)
        verdict = check_job_results(circuit, counts, shots, noise, xeb)
        got = interleave(
            runs,
            [
                ("check", per_s(lambda c=circuit, k=counts: check_job_results(c, k, shots, noise, xeb))),
                ("simulate", per_s(lambda j=job: honest_counts(j, shots, 2))),
            ],
        )
        check_ms = [1000 / r for r in got["check"]]
        sim_ms = [1000 / r for r in got["simulate"]]
        print(
            f"| {label} | {verdict.method} ({verdict.code.value}) | {fmt_spread(check_ms)} | {fmt_spread(sim_ms)} "
            f"| {fmt_ratio(check_ms, sim_ms)} |"
        )
    print()


def real_jobs(rng: random.Random, n: int, floor: int) -> list[JobShape]:
    out = []
    for _ in range(n):
        words = rng.choice([rng.randint(3, 12), rng.randint(12, 60)])
        out.append(
            JobShape(
                prompt=b"w " * words,
                max_tokens=rng.choice([16, 32, 64, 128, 256, 512]),
                max_runtime_ms=rng.choice([5_000, 10_000, 20_000, 30_000, 60_000]),
                fee_per_unit=rng.choice([floor, floor, 2 * floor, rng.randint(floor, 10 * floor)]),
            )
        )
    return out


def fund_rows(params: Params, ordinary: int) -> None:
    params = params_from_mapping({"model_weights": {MODEL: 100}}, params)
    price = params.price_initial_bps
    floor = reserve_fee(params.base_rate_ai, price, params)
    jobs = real_jobs(random.Random(14), ordinary, floor)  # noqa: S311 - a seeded population
    corpus = [TrapPrompt(model=MODEL, prompt=j.prompt, max_tokens=16) for j in jobs[:100]]
    due = traps_due(ordinary, params)
    traps = [draw_trap_input(SEED, n, MODEL, corpus, jobs[:512], jobs[:512], floor) for n in range(due)]

    def escrow_and_reward(body: dict[str, object]) -> tuple[int, int]:
        valid = validate_request({"kind": "ai", **body}, params, price, lambda _: 1)
        reward = valid.max_units_mu * params.base_rate_ai * price // (1000 * BPS)
        return valid.escrow, reward

    ordinary_pairs = [escrow_and_reward({"model": MODEL, "prompt": j.prompt, "max_tokens": j.max_tokens,
                                         "max_runtime_ms": j.max_runtime_ms, "fee_per_unit": j.fee_per_unit,
                                         "tier": 0}) for j in jobs]  # fmt: skip
    trap_pairs = [escrow_and_reward(t.body()) for t in traps if t is not None]
    ordinary_charged = sum(e for e, _ in ordinary_pairs)
    trap_charged = sum(e for e, _ in trap_pairs)
    fund_income = sum(r for _, r in ordinary_pairs + trap_pairs) * params.fund_bps // BPS
    print(f"### Trap share of the fund (trap_bps {params.trap_bps}, fund_bps {params.fund_bps}, {ordinary} ordinary "
          f"jobs, every job charged its full max_units_mu)")  # fmt: skip
    print()
    print("| traps | fund pays for traps (µANM) | ordinary jobs charged (µANM) | traps ÷ ordinary | fund income from "
          "these jobs' rewards (µANM) | traps ÷ fund income |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {len(trap_pairs)} | {trap_charged:,} | {ordinary_charged:,} | {trap_charged / ordinary_charged:.1%} "
          f"| {fund_income:,} | {trap_charged / fund_income:.0%} |")  # fmt: skip
    print()

    # With the trap budget (docs/TRAPS.md): the due traps are funded in order while the fund's share of the rewards
    # (the ordinary jobs', then each funded trap's own) pays them.
    def share(reward: int) -> int:
        return reward * params.fund_bps // BPS * params.trap_budget_bps // BPS

    budget = share(sum(r for _, r in ordinary_pairs))
    funded = spent = 0
    for escrow, reward in trap_pairs:
        if spent + escrow > budget:
            break
        funded, spent, budget = funded + 1, spent + escrow, budget + share(reward)
    realised = funded * BPS // (ordinary + funded) if ordinary + funded else 0
    print(f"With the trap budget (trap_budget_bps {params.trap_budget_bps}, no top-up):")
    print()
    print("| traps due | traps the budget pays | realised trap rate (bps) | fund pays for traps (µANM) "
          "| trap budget (µANM) |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|")
    print(f"| {len(trap_pairs)} | {funded} | {realised} | {spent:,} | {budget:,} |")
    print()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shots", type=int, default=1000)
    parser.add_argument("--ordinary", type=int, default=1900)
    parser.add_argument("--skip-quantum", action="store_true")
    args = parser.parse_args(argv)
    params = Params.default()
    if not args.skip_quantum:
        quantum_rows(args.runs, args.shots, params)
    fund_rows(params, args.ordinary)


if __name__ == "__main__":
    main()
