"""A reference quantum executor: runs a QUANTUM_V1 batch on stim and returns results in the body's encoding.

stim is a stabilizer simulator, so this executor runs Clifford circuits only: every gate is lowered by
`aicf.core.qasm.clifford_ops`, and a gate it cannot lower (t, ccx, rz(pi/4), rx(0.5), ...) raises
`NotCliffordError` naming the line. Non-Clifford jobs need a state-vector backend such as qiskit-aer, which this
project does not depend on (docs/QUANTUM.md). Trap circuits are always Clifford, so any provider can answer them.

Results: one map per batch circuit, bitstring → count, the bitstring listing classical bit 0 first and every
count a positive int. Runs are deterministic given `seed` (for one stim version on one machine type: stim's own
promise). The adversarial modes exist for tests of the verifier and are plain options, never the default.
"""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
import stim

from aicf.core.errors import AicfError
from aicf.core.qasm import MAX_BATCH_CIRCUIT_BYTES, Circuit, batch_digest, clifford_ops, parse_circuit
from aicf.core.types import BPS

Counts = dict[str, int]


class SimMode(StrEnum):
    HONEST = "honest"
    SKIP_TRAPS = "skip_traps"  # simulate the job (found by its public circuit), answer every other circuit randomly
    FAKE_JOB = "fake_job"  # simulate every other circuit (the Clifford traps), answer the job with one made-up outcome
    RANDOM_OUTPUT = "random_output"  # answer every circuit, the job included, with uniformly random bitstrings


@dataclass(frozen=True, slots=True, kw_only=True)
class SimOptions:
    mode: SimMode = SimMode.HONEST
    job_circuit: bytes | None = None  # SKIP_TRAPS / FAKE_JOB recognise the job by it: the request is public on chain
    readout_flip_bps: int = 0  # honest but noisy: each measured bit flips with this probability


class BatchShapeError(AicfError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"quantum batch: {reason}")
        self.reason = reason


def _circuit_seed(seed: int, index: int) -> int:
    digest = hashlib.sha3_256(f"aicf/quantum-sim/{seed}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _count_rows(bits: npt.NDArray[np.bool_]) -> Counts:
    """Counts of the distinct rows of a (shots × width) bit matrix, as '0'/'1' strings."""
    shots, width = bits.shape
    if width == 0:
        return {"": shots} if shots else {}
    rows, counts = np.unique(bits.astype(np.uint8), axis=0, return_counts=True)
    return {"".join("1" if b else "0" for b in row): int(n) for row, n in zip(rows, counts, strict=True)}


def _stim_program(circuit: Circuit, flip_bps: int) -> stim.Circuit:
    """The gates, then every measurement (no gate follows a measurement of its qubit, so this is the same run)."""
    lines = [f"{name} {' '.join(map(str, targets))}" for name, targets in clifford_ops(circuit)]
    measure = f"M({flip_bps / BPS})" if flip_bps else "M"
    lines.append(f"{measure} {' '.join(str(m.qubit) for m in circuit.measurements)}")
    return stim.Circuit("\n".join(lines))  # one parse: far faster than an append per gate


def simulate(circuit: Circuit, shots: int, seed: int, flip_bps: int = 0) -> Counts:
    """Sample `shots` runs of a Clifford circuit. Raises NotCliffordError for a gate stim cannot run."""
    sampler = _stim_program(circuit, flip_bps).compile_sampler(seed=seed)
    measured = np.asarray(sampler.sample(shots), dtype=np.bool_).reshape(shots, len(circuit.measurements))
    bits = np.zeros((shots, circuit.n_clbits), dtype=np.bool_)
    for col, m in enumerate(circuit.measurements):
        bits[:, m.clbit] = measured[:, col]
    return _count_rows(bits)


def random_counts(width: int, shots: int, seed: int) -> Counts:
    rng = np.random.default_rng(seed)
    return _count_rows(rng.integers(0, 2, size=(shots, width), dtype=np.uint8).astype(np.bool_))


def run_batch(
    circuits: Sequence[bytes], shots: Sequence[int], seed: int, options: SimOptions | None = None
) -> list[Counts]:
    """Run each batch circuit for its shots, in batch order. Raises RequestError for a circuit that does not
    parse, NotCliffordError for one stim cannot run, BatchShapeError for mismatched inputs."""
    opts = options or SimOptions()
    if len(circuits) != len(shots):
        raise BatchShapeError(f"{len(circuits)} circuits but {len(shots)} shot counts")
    job = parse_circuit(opts.job_circuit) if opts.job_circuit is not None else None
    results: list[Counts] = []
    for i, (data, n) in enumerate(zip(circuits, shots, strict=True)):
        circuit = parse_circuit(data, max_bytes=MAX_BATCH_CIRCUIT_BYTES)
        s = _circuit_seed(seed, i)
        is_job = job is not None and same_program(circuit, job)
        if opts.mode is SimMode.FAKE_JOB and is_job:  # the issue-14 cheat: e.g. a Bell pair answered {"01": n}
            results.append({"0" * (circuit.n_clbits - 1) + "1": n})
            continue
        fake = opts.mode is SimMode.RANDOM_OUTPUT or (opts.mode is SimMode.SKIP_TRAPS and not is_job)
        results.append(
            random_counts(circuit.n_clbits, n, s) if fake else simulate(circuit, n, s, opts.readout_flip_bps)
        )
    return results


def same_program(a: Circuit, b: Circuit) -> bool:
    """The same gates and measurements on the same flat qubits and bits, whatever the registers are called or
    however the text is laid out (the batch carries the job rewritten like the traps)."""
    return (a.n_qubits, a.n_clbits, a.ops, a.measurements) == (b.n_qubits, b.n_clbits, b.ops, b.measurements)


def quantum_body(
    circuits: Sequence[bytes],
    batch_shots: Sequence[int],
    shots: int,
    results: Sequence[Mapping[str, int]],
    *,
    runtime_ms: int = 0,
    cert_chain: Sequence[bytes] = (),
) -> dict[str, object]:
    """The QUANTUM_V1 body of SPEC §8 for a finished batch; `circuit_digest` commits to the whole batch run."""
    return {
        "circuit_digest": batch_digest(circuits, batch_shots),
        "shots": shots,
        "results": [dict(r) for r in results],
        "cert_chain": list(cert_chain),
        "qos": {"runtime_ms": runtime_ms},
    }
