"""QUANTUM_V1: trap construction, the verifier's verdicts, the reference executor, and the Clifford lowering."""

import copy
import math
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction

import numpy as np
import numpy.typing as npt
import pytest
import stim
from budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from aicf.core.ids import circuit_digest
from aicf.core.params import Params
from aicf.core.pricing import depth_weight_milli, quantum_units
from aicf.core.qasm import (
    MAX_BATCH_CIRCUIT_BYTES,
    MAX_DEPTH,
    MAX_QUBITS,
    MAX_VOLUME,
    Angle,
    Circuit,
    Gate,
    NotCliffordError,
    clifford_ops,
    depth,
    parse_circuit,
)
from aicf.proofs.quantum import (
    QuantumBatch,
    QuantumVerdict,
    TrapStream,
    VerdictCode,
    canonical_job_text,
    certain_bitstring,
    derive_batch,
    trap_root,
    verify_quantum_body,
)
from aicf.provider.quantum_sim import SimMode, SimOptions, quantum_body, run_batch

P = Params()
SEED = b"\x5e" * 32
TASK = b"\x7a" * 32
GHZ = b"""OPENQASM 2.0;
include "qelib1.inc";
qreg q[4];
creg c[4];
h q[0];
cx q[0],q[1];
cx q[1],q[2];
cx q[2],q[3];
s q[3];
measure q -> c;
"""
T_JOB = (
    b'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\nt q[0];\ncx q[0],q[1];\nmeasure q -> c;\n'
)
SHOTS = 1000


def honest(job: bytes = GHZ, shots: int = SHOTS, **opts: object) -> tuple[QuantumBatch, dict[str, object]]:
    """The batch and the body an executor in the given mode returns; cached, so each caller gets its own copy."""
    key = (job, shots, tuple(sorted(opts.items())))
    if key not in _RUNS:
        batch = derive_batch(job, shots, SEED, TASK, P)
        results = run_batch(batch.circuits, batch.shots, 1, SimOptions(job_circuit=job, **opts))  # type: ignore[arg-type]
        _RUNS[key] = (batch, quantum_body(batch.circuits, batch.shots, shots, results, runtime_ms=12))
    batch, body = _RUNS[key]
    return batch, copy.deepcopy(body)


_RUNS: dict[object, tuple[QuantumBatch, dict[str, object]]] = {}


def verify(body: object, job: bytes = GHZ, shots: int = SHOTS, params: Params = P) -> QuantumVerdict:
    return verify_quantum_body(body, job, shots, SEED, TASK, params)  # type: ignore[arg-type]


# --- the stream and the batch ---------------------------------------------------------------------------------


def test_stream_is_counter_mode_sha3_read_as_big_endian_words() -> None:
    import hashlib

    block = hashlib.sha3_256(b"root" + b"label" + (0).to_bytes(8, "big")).digest()
    stream = TrapStream(b"root", b"label")
    assert [stream.word() for _ in range(4)] == [int.from_bytes(block[i : i + 8], "big") for i in (0, 8, 16, 24)]
    assert sorted(TrapStream(b"r", b"l").shuffle(10)) == list(range(10))


def test_batch_has_the_job_and_k_traps_all_with_the_jobs_shots_and_the_job_written_like_a_trap() -> None:
    batch = derive_batch(GHZ, SHOTS, SEED, TASK, P)
    assert sorted(batch.order) == list(range(P.trap_k + 1))
    job_text = batch.circuits[batch.job_index]
    assert job_text == canonical_job_text(parse_circuit(GHZ))
    assert job_text != GHZ  # the requester's own text never reaches the provider
    assert parse_circuit(job_text).ops == parse_circuit(GHZ).ops
    assert batch.shots == (SHOTS,) * (P.trap_k + 1)  # issue 14: shots do not tell the job from the traps
    header = [c.split(b"\n")[:4] for c in batch.circuits]
    assert all(h == header[0] for h in header)  # same preamble and register names for job and traps


def test_traps_have_the_job_width_and_depth() -> None:
    batch = derive_batch(GHZ, SHOTS, SEED, TASK, P)
    assert batch.job_depth == 5
    for trap in batch.traps:
        assert trap.circuit.n_qubits == 4
        assert depth(trap.circuit) == 5
        assert parse_circuit(trap.qasm()) == trap.circuit


@settings(max_examples=examples(25), deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    task=st.binary(min_size=32, max_size=32),
    n=st.integers(1, 9),
    d=st.integers(0, 12),
)
def test_traps_are_deterministic_and_their_bitstring_is_certain_under_stim(
    seed: bytes, task: bytes, n: int, d: int
) -> None:
    gates = "x q[0];\n" * d  # depth d
    job = f'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[{n}];\ncreg c[{n}];\n{gates}measure q -> c;\n'.encode()
    params = replace(P, trap_k=3)
    batch = derive_batch(job, 10, seed, task, params)
    assert derive_batch(job, 10, seed, task, params) == batch
    for trap in batch.traps:
        expected = certain_bitstring(trap.circuit)  # stim, independently of the construction's mask
        assert expected == trap.expected
        assert "1" in expected
        assert depth(trap.circuit) == max(d, 1)
        assert parse_circuit(trap.qasm()) == trap.circuit


def test_traps_depend_on_seed_and_task() -> None:
    base = derive_batch(GHZ, SHOTS, SEED, TASK, P)
    assert derive_batch(GHZ, SHOTS, b"\x00" * 32, TASK, P).circuits != base.circuits
    assert derive_batch(GHZ, SHOTS, SEED, b"\x00" * 32, P).circuits != base.circuits
    assert trap_root(SEED, TASK) != trap_root(TASK, SEED)


# --- verdicts -------------------------------------------------------------------------------------------------


def test_honest_executor_is_accepted_with_full_quality() -> None:
    batch, body = honest()
    verdict = verify(body)
    assert verdict == verify(body)
    assert verdict.code is VerdictCode.ACCEPT
    assert verdict.quality_bps == 10000
    assert verdict.units_mu == SHOTS * depth_weight_milli(5, P)
    assert verdict.depth == batch.job_depth


def test_skipped_traps_fail() -> None:
    _, body = honest(mode=SimMode.SKIP_TRAPS)
    verdict = verify(body)
    assert verdict.code is VerdictCode.TRAP_FAILURE
    assert verdict.quality_bps < 2000


def test_random_output_fails() -> None:
    _, body = honest(mode=SimMode.RANDOM_OUTPUT)
    assert verify(body).code is VerdictCode.TRAP_FAILURE


def test_noisy_readout_lowers_quality_and_units() -> None:
    _, body = honest(readout_flip_bps=100)
    verdict = verify(body)
    assert verdict.code is VerdictCode.ACCEPT
    assert 9000 <= verdict.quality_bps < 10000
    assert verdict.units_mu == quantum_units(SHOTS, 1000, verdict.quality_bps)
    _, noisy = honest(readout_flip_bps=2000)
    assert verify(noisy).code is VerdictCode.TRAP_FAILURE


def _graded(batch: QuantumBatch, passing: int) -> list[dict[str, int]]:
    """Job answered half all-zeros, half all-ones (what GHZ and T_JOB give); `passing` shots of the traps (spread
    over them) give the expected bitstring."""
    results: list[dict[str, int]] = []
    left = passing
    for i, o in enumerate(batch.order):
        n = batch.shots[i]
        if o == 0:
            results.append({"0" * batch.job.n_clbits: n // 2, "1" * batch.job.n_clbits: n - n // 2})
            continue
        expected = batch.traps[o - 1].expected
        wrong = "".join("1" if b == "0" else "0" for b in expected)
        good = min(left, n)
        left -= good
        results.append({k: v for k, v in ((expected, good), (wrong, n - good)) if v})
    return results


def _body(batch: QuantumBatch, results: list[dict[str, int]], shots: int = SHOTS) -> dict[str, object]:
    return quantum_body(batch.circuits, batch.shots, shots, results)


@pytest.mark.parametrize(("passing", "code", "quality"), [(7200, "ACCEPT", 9000), (7199, "TRAP_FAILURE", 8998)])
def test_quality_is_floored_and_compared_with_the_threshold(passing: int, code: str, quality: int) -> None:
    batch = derive_batch(GHZ, SHOTS, SEED, TASK, P)  # 8 traps × 1000 shots = 8000 trap shots
    verdict = verify(_body(batch, _graded(batch, passing)))
    assert verdict.code == code
    assert verdict.quality_bps == quality


def test_a_provider_claim_in_the_body_counts_for_nothing() -> None:
    """Only counts of the bitstring the verifier computed itself pass; a trap answered with a constant fails."""
    batch = derive_batch(GHZ, SHOTS, SEED, TASK, P)
    results = [{"1111": n} if o else {"0000": n} for o, n in zip(batch.order, batch.shots, strict=True)]
    verdict = verify(_body(batch, results))
    assert verdict.code is VerdictCode.TRAP_FAILURE


def test_non_clifford_jobs_are_verified_by_their_clifford_traps() -> None:
    batch = derive_batch(T_JOB, SHOTS, SEED, TASK, P)
    with pytest.raises(NotCliffordError, match="line 6: gate 't' is not a Clifford gate"):
        run_batch(batch.circuits, batch.shots, 1)
    verdict = verify(_body(batch, _graded(batch, 8000)), job=T_JOB)
    assert verdict.code is VerdictCode.ACCEPT
    assert verdict.quality_bps == 10000


def test_tampered_digest_is_a_digest_mismatch() -> None:
    _, body = honest()
    body["circuit_digest"] = circuit_digest(GHZ)  # the job's own circuit, not the batch it ran
    verdict = verify(body)
    assert verdict.code is VerdictCode.DIGEST_MISMATCH
    assert verdict.message.startswith("batch digest mismatch: expected 0x")


def test_results_for_another_circuit_are_a_digest_mismatch() -> None:
    _, body = honest()
    assert verify(body, job=T_JOB).code is VerdictCode.DIGEST_MISMATCH


def test_unparsable_job_circuit_is_unverifiable_not_the_providers_fault() -> None:
    bad = b"OPENQASM 2.0;\nfoo;"
    body = quantum_body([bad] * (P.trap_k + 1), [SHOTS] * (P.trap_k + 1), SHOTS, [{}] * (P.trap_k + 1))
    verdict = verify(body, job=bad)
    assert verdict.code is VerdictCode.UNVERIFIABLE
    assert verdict.message == "job circuit does not parse: line 2: unknown gate 'foo'"


def _job_entry(batch: QuantumBatch) -> int:
    return batch.job_index


Mutation = Callable[[dict[str, object], QuantumBatch], object]


def _set(key: str, value: object) -> Mutation:
    def mutate(body: dict[str, object], _: QuantumBatch) -> object:
        body[key] = value
        return body

    return mutate


def _entry(fn: Callable[[dict[str, int]], object]) -> Mutation:
    def mutate(body: dict[str, object], batch: QuantumBatch) -> object:
        results = body["results"]
        assert isinstance(results, list)
        results[batch.job_index] = fn(dict(results[batch.job_index]))
        return body

    return mutate


def _first_key(counts: dict[str, int]) -> str:
    return next(iter(counts))


MALFORMED: list[tuple[str, Mutation, str]] = [
    ("not-a-map", lambda b, _: [b], "body: expected a map, got list"),
    ("missing-qos", lambda b, _: {k: v for k, v in b.items() if k != "qos"}, "body: missing key 'qos'"),
    ("unknown-key", _set("claims", "all traps passed"), "body: unknown key 'claims'"),
    ("short-digest", _set("circuit_digest", b"\x00"), "circuit_digest: expected 32 bytes"),
    ("shots-float", _set("shots", 1000.0), "shots: expected an integer, got float"),
    ("shots-negative", _set("shots", -1), "shots: must be >= 0 and < 2^63, got -1"),
    ("shots-other", _set("shots", 999), "shots: expected 1000, got 999"),
    ("results-map", _set("results", {}), "results: expected a list, got dict"),
    (
        "results-short",
        lambda b, _: {**b, "results": list(b["results"])[:-1]},  # type: ignore[call-overload]
        "results: expected 9 entries (job + 8 traps), got 8",
    ),
    ("entry-list", _entry(lambda c: list(c.items())), "results[{job}]: expected a map of bitstring to count, got list"),
    (
        "count-nan",
        _entry(lambda c: {**c, _first_key(c): math.nan}),
        "results[{job}][{key!r}]: expected an integer count, got float",
    ),
    (
        "count-bool",
        _entry(lambda c: {**c, _first_key(c): True}),
        "results[{job}][{key!r}]: expected an integer count, got bool",
    ),
    (
        "count-negative",
        _entry(lambda c: {**c, _first_key(c): -5}),
        "results[{job}][{key!r}]: count must be at least 1, got -5",
    ),
    (
        "count-zero",
        _entry(lambda c: {**c, _first_key(c): 0}),
        "results[{job}][{key!r}]: count must be at least 1, got 0",
    ),
    (
        "count-sum",
        _entry(lambda c: {**c, _first_key(c): c[_first_key(c)] + 1}),
        "results[{job}]: counts sum to 1001, expected 1000 shots",
    ),
    ("bits-wide", _entry(lambda c: {"00000": 1000}), "results[{job}]: key '00000' is not a bitstring of width 4"),
    ("bits-chars", _entry(lambda c: {"01x1": 1000}), "results[{job}]: key '01x1' is not a bitstring of width 4"),
    ("bits-bytes", _entry(lambda c: {b"0000": 1000}), "results[{job}]: key \"b'0000'\" is not a bitstring of width 4"),
    ("certs", _set("cert_chain", ["pem"]), "cert_chain: expected a list of byte strings"),
    ("qos-negative", _set("qos", {"runtime_ms": -1}), "qos.runtime_ms: must be >= 0 and < 2^63, got -1"),
    ("qos-nan", _set("qos", {"runtime_ms": math.nan}), "qos.runtime_ms: expected an integer, got float"),
    ("qos-extra", _set("qos", {"runtime_ms": 1, "fidelity": 1}), "qos: unknown key 'fidelity'"),
]


@pytest.mark.parametrize(("mutate", "message"), [(m, msg) for _, m, msg in MALFORMED], ids=[n for n, _, _ in MALFORMED])
def test_malformed_bodies_are_rejected_with_a_specific_message(mutate: Mutation, message: str) -> None:
    batch, body = honest()
    job_counts = body["results"][batch.job_index]  # type: ignore[index]
    verdict = verify(mutate(body, batch))
    assert verdict.code is VerdictCode.MALFORMED
    assert verdict.message == message.format(job=batch.job_index, key=next(iter(job_counts)))


def test_trap_entry_of_the_wrong_width_is_malformed() -> None:
    batch, body = honest()
    i = next(i for i, o in enumerate(batch.order) if o)
    body["results"][i] = {"0": 100}  # type: ignore[index]
    verdict = verify(body)
    assert verdict.code is VerdictCode.MALFORMED
    assert verdict.message == f"results[{i}]: key '0' is not a bitstring of width 4"


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=10) | st.dictionaries(st.text(max_size=16), inner, max_size=6),
    max_leaves=30,
)


@pytest.mark.slow
@settings(max_examples=examples(150), deadline=None)
@given(key=st.sampled_from(["circuit_digest", "shots", "results", "cert_chain", "qos"]), value=junk)
def test_verifier_never_raises_and_never_accepts_a_damaged_body(key: str, value: object) -> None:
    _, body = honest()
    original = body[key]
    body[key] = value
    verdict = verify(body)
    assert isinstance(verdict, QuantumVerdict)
    if verdict.accepted:  # only a value that is still valid: the same one, or other well-formed qos / certificates
        assert value == original or key in ("cert_chain", "qos")


# --- the reference executor -----------------------------------------------------------------------------------


def test_executor_is_deterministic_given_a_seed() -> None:
    batch = derive_batch(GHZ, SHOTS, SEED, TASK, P)
    assert run_batch(batch.circuits, batch.shots, 5) == run_batch(batch.circuits, batch.shots, 5)
    assert run_batch(batch.circuits, batch.shots, 5) != run_batch(batch.circuits, batch.shots, 6)


def test_executor_counts_sum_to_shots_and_ghz_gives_only_two_outcomes() -> None:
    (counts,) = run_batch([GHZ], [SHOTS], 3)
    assert set(counts) == {"0000", "1111"}
    assert sum(counts.values()) == SHOTS


def test_executor_writes_clbits_where_the_circuit_says() -> None:
    job = b'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[3];\nx q[0];\n'
    job += b"measure q[0] -> c[2];\nmeasure q[1] -> c[0];\n"
    assert run_batch([job], [10], 0) == [{"001": 10}]


# --- the Clifford lowering against textbook matrices ---------------------------------------------------------

Matrix = npt.NDArray[np.complex128]
I2 = np.eye(2, dtype=np.complex128)


def _rz(t: float) -> Matrix:
    return np.array([[np.exp(-0.5j * t), 0], [0, np.exp(0.5j * t)]])


def _ry(t: float) -> Matrix:
    return np.array([[np.cos(t / 2), -np.sin(t / 2)], [np.sin(t / 2), np.cos(t / 2)]], dtype=np.complex128)


def _rx(t: float) -> Matrix:
    return np.array([[np.cos(t / 2), -1j * np.sin(t / 2)], [-1j * np.sin(t / 2), np.cos(t / 2)]])


def _u3(t: float, p: float, lam: float) -> Matrix:
    c, s = np.cos(t / 2), np.sin(t / 2)
    return np.array([[c, -np.exp(1j * lam) * s], [np.exp(1j * p) * s, np.exp(1j * (p + lam)) * c]])


def _controlled(u: Matrix) -> Matrix:
    m = np.eye(4, dtype=np.complex128)
    m[2:, 2:] = u
    return m


def _zz(t: float) -> Matrix:
    return np.diag(np.exp(-0.5j * t * np.array([1, -1, -1, 1])))


H = np.array([[1, 1], [1, -1]]) / np.sqrt(2)
REFERENCE: dict[str, Callable[..., Matrix]] = {
    "u3": _u3,
    "U": _u3,
    "u": _u3,
    "u2": lambda p, lam: _u3(np.pi / 2, p, lam),
    "u1": lambda lam: _u3(0, 0, lam),
    "p": lambda lam: _u3(0, 0, lam),
    "rx": _rx,
    "ry": _ry,
    "rz": _rz,
    "crx": lambda t: _controlled(_rx(t)),
    "cry": lambda t: _controlled(_ry(t)),
    "crz": lambda t: _controlled(_rz(t)),
    "cu1": lambda lam: _controlled(_u3(0, 0, lam)),
    "cp": lambda lam: _controlled(_u3(0, 0, lam)),
    "cu3": lambda t, p, lam: _controlled(_u3(t, p, lam)),
    "rzz": _zz,
    "rxx": lambda t: np.kron(H, H) @ _zz(t) @ np.kron(H, H),
    "h": lambda: H,
    "x": lambda: np.array([[0, 1], [1, 0]]),
    "y": lambda: np.array([[0, -1j], [1j, 0]]),
    "z": lambda: np.diag([1, -1]),
    "s": lambda: np.diag([1, 1j]),
    "sdg": lambda: np.diag([1, -1j]),
    "sx": lambda: _rx(np.pi / 2),
    "sxdg": lambda: _rx(-np.pi / 2),
    "id": lambda: I2,
    "cx": lambda: _controlled(np.array([[0, 1], [1, 0]])),
    "CX": lambda: _controlled(np.array([[0, 1], [1, 0]])),
    "cy": lambda: _controlled(np.array([[0, -1j], [1j, 0]])),
    "cz": lambda: _controlled(np.diag([1, -1])),
    "swap": lambda: np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]]),
}
TWO_QUBIT = {"crx", "cry", "crz", "cu1", "cp", "cu3", "rzz", "rxx", "cx", "CX", "cy", "cz", "swap"}
N_PARAMS = {"u3": 3, "U": 3, "u": 3, "cu3": 3, "u2": 2}


@settings(max_examples=examples(200), deadline=None)
@given(name=st.sampled_from(sorted(REFERENCE)), quarters=st.lists(st.integers(-4, 7), min_size=3, max_size=3))
def test_clifford_lowering_matches_the_gate_matrix_up_to_phase(name: str, quarters: list[int]) -> None:
    n_params = N_PARAMS.get(
        name, 1 if name in ("u1", "p", "rx", "ry", "rz", "crx", "cry", "crz", "cu1", "cp", "rzz", "rxx") else 0
    )
    angles = [Angle(pi=Fraction(q, 2)) for q in quarters[:n_params]]
    width = 2 if name in TWO_QUBIT else 1
    gate = Gate(name=name, params=tuple(angles), qubits=tuple(range(width)))
    circuit = Circuit(n_qubits=width, n_clbits=0, qregs=(("q", width),), cregs=(), ops=(gate,), measurements=())
    program = stim.Circuit()
    program.append("I", list(range(width)))
    matrix = REFERENCE[name](*(math.pi * q / 2 for q in quarters[:n_params]))
    try:
        ops = clifford_ops(circuit)
    except NotCliffordError:
        # Refused only when the gate really is not Clifford: stim refuses the matrix too.
        with pytest.raises(ValueError, match=r"Clifford|stabilizer"):
            stim.Tableau.from_unitary_matrix(matrix, endian="big")
        return
    for op, targets in ops:
        program.append(op, list(targets))
    assert stim.Tableau.from_circuit(program) == stim.Tableau.from_unitary_matrix(matrix, endian="big")


@pytest.mark.slow
@pytest.mark.parametrize(("n", "d"), [(32, MAX_DEPTH), (MAX_QUBITS, MAX_VOLUME // MAX_QUBITS)])
def test_traps_of_the_largest_jobs_stay_within_what_a_provider_parses(n: int, d: int) -> None:
    job = f'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[{n}];\ncreg c[{n}];\n'.encode() + b"h q;\n" * d
    job += b"measure q -> c;\n"
    batch = derive_batch(job, 10, SEED, TASK, replace(P, trap_k=1))
    (trap,) = batch.traps
    assert len(trap.qasm()) <= MAX_BATCH_CIRCUIT_BYTES
    assert parse_circuit(trap.qasm(), max_bytes=MAX_BATCH_CIRCUIT_BYTES) == trap.circuit
    assert depth(trap.circuit) == d


# --- thresholds per device class (issue 14; params trap_threshold_bps_by_class) -------------------------------


@pytest.mark.parametrize(
    ("device_class", "passing", "code", "quality"),
    [
        ("simulator", 7920, "ACCEPT", 9900),  # 8000 trap shots: 7920 is exactly the simulator class's 9900 bps
        ("simulator", 7919, "TRAP_FAILURE", 9898),
        ("noisy", 7200, "ACCEPT", 9000),
        ("noisy", 7199, "TRAP_FAILURE", 8998),
    ],
)
def test_the_trap_threshold_is_the_device_classs(device_class: str, passing: int, code: str, quality: int) -> None:
    batch = derive_batch(GHZ, SHOTS, SEED, TASK, P)
    body = _body(batch, _graded(batch, passing))
    verdict = verify_quantum_body(body, GHZ, SHOTS, SEED, TASK, P, device_class)
    assert verdict.code == code
    assert verdict.quality_bps == quality
    if code == "TRAP_FAILURE":
        assert f"threshold of {P.trap_threshold_bps_by_class[device_class]} bps of device class" in verdict.message


def test_a_device_class_params_has_no_thresholds_for_is_unverifiable() -> None:
    batch = derive_batch(GHZ, SHOTS, SEED, TASK, P)
    verdict = verify_quantum_body(_body(batch, _graded(batch, 8000)), GHZ, SHOTS, SEED, TASK, P, "photonic")
    assert verdict.code is VerdictCode.UNVERIFIABLE
    assert "device class 'photonic' has no thresholds in params (known: ['noisy', 'simulator'])" in verdict.message
