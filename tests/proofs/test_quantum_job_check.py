"""Issue 14: a quantum job is checked on its own results, not only through its traps.

The issue's attack: a provider simulated the Clifford traps with stim and answered three Bell-state jobs with the
impossible outcome {"01": n}; all were accepted and paid. Here every such answer is refused: impossible outcomes
(exactly, by stim, for Clifford jobs; by a statevector for small non-Clifford ones) are IMPOSSIBLE_RESULT, slashed as
FRAUD, and possible outcomes in the wrong proportions fail a distribution test (TRAP_FAILURE).
"""

import math
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import stim
from budget import examples

from aicf.core.params import Params
from aicf.core.qasm import Angle, Gate, NotCliffordError, clifford_ops, parse_circuit
from aicf.proofs.quantum import QuantumBatch, QuantumVerdict, VerdictCode, derive_batch, verify_quantum_body
from aicf.proofs.quantum_check import JobCheckCode, check_job_results, gate_matrix, statevector
from aicf.proofs.verdict import Reject, RejectCode
from aicf.provider.quantum_sim import SimMode, SimOptions, quantum_body, run_batch

P = Params()
SEED = b"\x5e" * 32
TASK = b"\x7a" * 32
SHOTS = 1000
BELL = b'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n'
# non-Clifford, 2 qubits: P(00) = cos²(π/8) ≈ 0.854, P(11) ≈ 0.146, P(01) = P(10) = 0
HTH = (
    b'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'
    b"h q[0];\nt q[0];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n"
)
NOISE = 10_000 - P.trap_threshold_bps


def _verify(job: bytes, results: list[dict[str, int]], batch: QuantumBatch) -> QuantumVerdict:
    body = quantum_body(batch.circuits, batch.shots, SHOTS, results)
    return verify_quantum_body(body, job, SHOTS, SEED, TASK, P)


def _run(job: bytes, mode: SimMode = SimMode.HONEST, flip_bps: int = 0) -> tuple[QuantumBatch, list[dict[str, int]]]:
    batch = derive_batch(job, SHOTS, SEED, TASK, P)
    options = SimOptions(mode=mode, job_circuit=job, readout_flip_bps=flip_bps)
    return batch, [dict(r) for r in run_batch(batch.circuits, batch.shots, 7, options)]


def test_the_issues_bell_job_answered_01_with_simulated_traps_is_impossible_result() -> None:
    batch, results = _run(BELL, SimMode.FAKE_JOB)
    assert results[batch.job_index] == {"01": SHOTS}
    verdict = _verify(BELL, results, batch)
    assert verdict.code is VerdictCode.IMPOSSIBLE_RESULT, verdict
    assert verdict.quality_bps == 10_000  # the traps alone would have passed
    assert "'01'×1000" in verdict.message
    assert "parity of qubits [0, 1] must be 0" in verdict.message
    reject = Reject(code=RejectCode(verdict.code.value), message="")
    assert reject.slash_reason == "FRAUD"


def test_an_honest_bell_job_is_accepted_and_so_is_a_noisy_honest_one() -> None:
    batch, results = _run(BELL)
    assert _verify(BELL, results, batch).code is VerdictCode.ACCEPT
    batch, noisy = _run(BELL, flip_bps=100)
    assert _verify(BELL, noisy, batch).code is VerdictCode.ACCEPT


def test_a_bell_job_answered_with_only_00_fails_the_distribution_test() -> None:
    batch, results = _run(BELL)
    results[batch.job_index] = {"00": SHOTS}  # possible, but a Bell pair gives 11 half the time
    verdict = _verify(BELL, results, batch)
    assert verdict.code is VerdictCode.TRAP_FAILURE
    assert verdict.message.startswith("job results: qubit 1 is free")


def test_impossible_outcomes_within_the_noise_budget_are_tolerated_beyond_it_are_not() -> None:
    bell = parse_circuit(BELL)
    within = {"00": 480, "11": 470, "01": 50}  # 5 % impossible: readout noise
    assert check_job_results(bell, within, 1000, NOISE).code is JobCheckCode.OK
    beyond = {"00": 440, "11": 440, "01": 120}  # 12 %
    assert check_job_results(bell, beyond, 1000, NOISE).code is JobCheckCode.IMPOSSIBLE


def _sample(job: bytes, shots: int, seed: int) -> dict[str, int]:
    circuit = parse_circuit(job)
    probs = (np.abs(statevector(circuit)) ** 2).reshape(-1)
    rng = np.random.default_rng(seed)
    drawn = rng.choice(len(probs), size=shots, p=probs / probs.sum())
    out: dict[str, int] = {}
    for index in drawn:
        bits = format(int(index), f"0{circuit.n_qubits}b")  # qubit 0 is the most significant axis
        out[bits] = out.get(bits, 0) + 1
    return out


def test_a_small_non_clifford_job_is_checked_by_a_statevector() -> None:
    batch = derive_batch(HTH, SHOTS, SEED, TASK, P)  # stim cannot run the job: answer the batch by hand
    traps = [{t.expected: n} for t, n in zip(batch.traps, batch.shots, strict=False)]
    results: list[dict[str, int]] = []
    for o in batch.order:
        results.append({} if o == 0 else traps[o - 1])
    results[batch.job_index] = _sample(HTH, SHOTS, 3)
    assert _verify(HTH, results, batch).code is VerdictCode.ACCEPT
    results[batch.job_index] = {"00": 500, "11": 500}  # possible outcomes, wrong proportions
    verdict = _verify(HTH, results, batch)
    assert verdict.code is VerdictCode.TRAP_FAILURE
    assert "cross-entropy" in verdict.message
    results[batch.job_index] = {"00": 500, "01": 500}
    verdict = _verify(HTH, results, batch)
    assert verdict.code is VerdictCode.IMPOSSIBLE_RESULT
    assert "probability" in verdict.message


def test_a_wide_non_clifford_job_is_left_to_its_traps() -> None:
    gates = "h q[0];\nt q[0];\n" + "".join(f"cx q[{i}],q[{i + 1}];\n" for i in range(13))
    wide = f'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[14];\ncreg c[14];\n{gates}measure q -> c;\n'.encode()
    check = check_job_results(parse_circuit(wide), {"01" * 7: 10}, 10, NOISE)
    assert check.code is JobCheckCode.UNCHECKED


def test_the_statevector_puts_every_trap_on_its_certain_bitstring() -> None:
    for job in (BELL, HTH):
        batch = derive_batch(job, 10, SEED, TASK, P)
        for trap in batch.traps:
            probs = np.abs(statevector(trap.circuit)) ** 2
            index = tuple(int(b) for b in trap.expected)
            assert probs[index] == pytest.approx(1.0)


H = Fraction(1, 2)
CLIFFORD_GATES: list[tuple[str, tuple[Angle, ...]]] = [
    ("id", ()), ("x", ()), ("y", ()), ("z", ()), ("h", ()), ("s", ()), ("sdg", ()), ("sx", ()), ("sxdg", ()),
    ("cx", ()), ("cy", ()), ("cz", ()), ("swap", ()), ("rx", (Angle(pi=H),)), ("ry", (Angle(pi=Fraction(1)),)),
    ("rz", (Angle(pi=-H),)), ("u3", (Angle(pi=H), Angle(pi=Fraction(1)), Angle(pi=-H))),
    ("crz", (Angle(pi=Fraction(1)),)), ("cp", (Angle(pi=Fraction(1)),)), ("rzz", (Angle(pi=H),)),
    ("rxx", (Angle(pi=H),)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "params"), CLIFFORD_GATES, ids=[g[0] for g in CLIFFORD_GATES])
def test_gate_matrices_agree_with_stim_up_to_a_global_phase(name: str, params: tuple[Angle, ...]) -> None:
    n = 2 if name in ("cx", "cy", "cz", "swap", "crz", "cp", "rzz", "rxx") else 1
    gate = Gate(name=name, params=params, qubits=tuple(range(n)))
    circuit = parse_circuit(b'OPENQASM 2.0;\ninclude "qelib1.inc";\n' + f"qreg q[{n}];\ncreg c[1];\n".encode()
                            + b"measure q[0] -> c[0];\n")  # fmt: skip
    try:
        ops = clifford_ops(replace(circuit, ops=(gate,)))
    except NotCliffordError:
        pytest.skip(f"{name} is not Clifford at these angles")
    program = stim.Circuit("\n".join(f"{g} {' '.join(map(str, t))}" for g, t in ops))
    want = program.to_tableau().to_unitary_matrix(endian="big")
    got = gate_matrix(gate)
    ratio = np.vdot(want.reshape(-1), got.reshape(-1))
    assert abs(abs(ratio) - got.shape[0]) < 1e-5, (name, got, want)  # equal up to a phase (stim: complex64)
    assert math.isclose(abs(np.linalg.det(got)), 1.0, abs_tol=1e-9)


def _layered_t_circuit(n: int, layers: int) -> bytes:
    gates = []
    for _ in range(layers):
        gates += [f"t q[{q}];\nh q[{q}];\n" for q in range(n)]
        gates += [f"cx q[{q}],q[{q + 1}];\n" for q in range(0, n - 1, 2)]
    head = f'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[{n}];\ncreg c[{n}];\n'
    return (head + "".join(gates) + "measure q -> c;\n").encode()


def test_answering_the_likeliest_outcome_every_time_fails_although_its_cross_entropy_is_high() -> None:
    job = _layered_t_circuit(6, 6)
    circuit = parse_circuit(job)
    probs = (np.abs(statevector(circuit)) ** 2).reshape(-1)
    likeliest = format(int(np.argmax(probs)), "06b")
    cheat = check_job_results(circuit, {likeliest: SHOTS}, SHOTS, NOISE)
    assert cheat.code is JobCheckCode.DISTRIBUTION, cheat
    honest = check_job_results(circuit, _sample(job, SHOTS, 5), SHOTS, NOISE)
    assert honest.code is JobCheckCode.OK, honest


@pytest.mark.parametrize("shots", [40, 1000])
def test_honest_samples_pass_for_every_seed_tried(shots: int) -> None:
    for job in (HTH, _layered_t_circuit(4, 3), _layered_t_circuit(6, 6)):
        circuit = parse_circuit(job)
        for seed in range(examples(40)):  # ten seeds in the fast loop
            check = check_job_results(circuit, _sample(job, shots, seed), shots, NOISE)
            assert check.code is JobCheckCode.OK, (seed, check)


def test_the_cross_entropy_floor_is_the_device_classs() -> None:
    """A device whose samples are 18 % depolarised (F ≈ 0.82 F_ideal): within the noisy class's 7500 bps, below the
    simulator class's 9000 bps (a simulator has no noise to excuse it)."""
    job = _layered_t_circuit(6, 6)
    circuit = parse_circuit(job)
    probs = (np.abs(statevector(circuit)) ** 2).reshape(-1)
    shots = 1_000_000  # the statistical slack is then about 0.02 of F_ideal
    mixed = 0.82 * probs + 0.18 / probs.size
    counts = {format(i, "06b"): int(c) for i, c in enumerate(np.floor(mixed * shots).astype(np.int64)) if c > 0}
    counts["000000"] = counts.get("000000", 0) + shots - sum(counts.values())
    noisy = check_job_results(
        circuit, counts, shots, 10_000 - P.trap_threshold_bps_by_class["noisy"], P.xeb_min_bps_by_class["noisy"]
    )
    simulator = check_job_results(
        circuit, counts, shots, 10_000 - P.trap_threshold_bps_by_class["simulator"], P.xeb_min_bps_by_class["simulator"]
    )
    assert noisy.code is JobCheckCode.OK, noisy
    assert simulator.code is JobCheckCode.DISTRIBUTION, simulator
    assert "outside 0.9 ×" in simulator.message
