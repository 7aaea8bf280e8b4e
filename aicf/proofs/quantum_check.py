"""The job's own results of a QUANTUM_V1 proof, checked against the job circuit (issue 14; docs/QUANTUM.md §4).

Traps alone measure a device; they say nothing about the job when a provider can tell the job apart, simulate
the (Clifford) traps and make up the job's counts. So the job's counts are judged too:

- **Clifford jobs, any width (stim).** The Z-basis outcomes of a stabilizer state are uniform over an affine
  subspace; its constraints are the Z-only stabilizers supported on the measured qubits, found exactly by
  Gaussian elimination over stim's stabilizer generators. (1) An outcome that breaks a constraint has
  probability 0: more impossible shots than the device's noise budget is IMPOSSIBLE_RESULT (FRAUD). (2) Every
  free measured bit is 1 in half the shots: a bit further from 1/2 than the statistical bound plus half the noise
  budget is DISTRIBUTION (a TRAP_FAILURE-class rejection).
- **Other circuits of at most `MAX_STATEVECTOR_QUBITS` qubits (a numpy statevector).** (1) as above with the ideal
  probabilities (an outcome below `ZERO_PROBABILITY` is impossible); (2) the normalised linear cross-entropy
  `F_obs / F_ideal`, with `F = K·mean p(x) − 1` over the measured outcomes (K = 2^measured qubits), must reach
  its device class's `xeb_min_bps` (params) less its Hoeffding bound, whenever the ideal distribution is far
  enough from uniform (`F_ideal >= XEB_MIN_IDEAL`) for the test to say anything, and may not exceed `F_ideal` by
  more than that bound (noise only lowers it: more is a provider picking likely outcomes); and two shots may
  agree no more often than Σ p² plus its bound (a provider repeating the likeliest outcome).
- Wider non-Clifford jobs are not checked here (UNCHECKED): traps only, as before.

The noise budget is what the traps already tolerate: `(10000 − trap_threshold_bps) / 10000` of the shots. The
statevector uses floats; every threshold keeps a wide margin from what an honest run or a cheat produces, so the
rounding of one platform or another cannot flip a verdict.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import numpy as np
import numpy.typing as npt
import stim

from aicf.core.qasm import Angle, Circuit, Gate, NotCliffordError, clifford_ops
from aicf.core.types import BPS

MAX_STATEVECTOR_QUBITS: Final = 12
ZERO_PROBABILITY: Final = 1e-9  # an ideal probability below this is an impossible outcome
FALSE_ALARM: Final = 1e-6  # the chance an honest, noiseless run fails a statistical bound
XEB_MIN_BPS: Final = 7500  # F_obs / F_ideal a noisy device must reach (params: xeb_min_bps_by_class per class)
XEB_MIN_IDEAL: Final = 0.05  # below this the ideal distribution is too flat for the cross-entropy to tell
MAX_EVIDENCE: Final = 8  # impossible outcomes named in a verdict's message


class JobCheckCode(StrEnum):
    OK = "OK"
    IMPOSSIBLE = "IMPOSSIBLE"  # outcomes the circuit cannot produce, beyond the noise budget: FRAUD
    DISTRIBUTION = "DISTRIBUTION"  # possible outcomes, but not in the circuit's proportions
    UNCHECKED = "UNCHECKED"  # too wide for the statevector and not Clifford


@dataclass(frozen=True, slots=True, kw_only=True)
class JobCheck:
    code: JobCheckCode
    message: str
    method: str  # "stim", "statevector" or "none"
    impossible_shots: int = 0


def check_job_results(
    circuit: Circuit, counts: Mapping[str, int], shots: int, noise_bps: int, xeb_min_bps: int = XEB_MIN_BPS
) -> JobCheck:
    """Judge the job's counts (bitstrings of the circuit's classical width, clbit 0 first, shapes already
    checked). `noise_bps` is the share of shots a device may get wrong (its noise budget); `xeb_min_bps` the
    normalised cross-entropy F_obs / F_ideal (in bps) a non-Clifford job must reach (its device class's)."""
    try:
        ops = clifford_ops(circuit)
    except NotCliffordError:
        if circuit.n_qubits > MAX_STATEVECTOR_QUBITS:
            return JobCheck(
                code=JobCheckCode.UNCHECKED,
                message=f"non-Clifford job of {circuit.n_qubits} qubits (statevector check up to "
                f"{MAX_STATEVECTOR_QUBITS}): traps only",
                method="none",
            )
        return _statevector_check(circuit, counts, shots, noise_bps, xeb_min_bps)
    return _clifford_check(circuit, ops, counts, shots, noise_bps)


# --- shared ---------------------------------------------------------------------------------------------------


def _measured_values(circuit: Circuit, bits: str) -> dict[int, int] | None:
    """Qubit → measured value for one result bitstring; None when a bit no measurement writes is not 0."""
    written = {m.clbit for m in circuit.measurements}
    if any(b != "0" for i, b in enumerate(bits) if i not in written):
        return None
    return {m.qubit: int(bits[m.clbit]) for m in circuit.measurements}


def _impossible_verdict(
    method: str, impossible: Mapping[str, int], why: Mapping[str, str], shots: int, noise_bps: int
) -> JobCheck | None:
    bad = sum(impossible.values())
    if bad * BPS <= shots * noise_bps:
        return None
    named = sorted(impossible, key=lambda b: (-impossible[b], b))[:MAX_EVIDENCE]
    listed = ", ".join(f"{b!r}×{impossible[b]} ({why[b]})" for b in named)
    return JobCheck(
        code=JobCheckCode.IMPOSSIBLE,
        message=f"{bad} of {shots} job shots are outcomes the circuit cannot produce (noise budget {noise_bps} bps; "
        f"checked by {method}): {listed}",
        method=method,
        impossible_shots=bad,
    )


def _hoeffding(shots: int, tests: int, span: float = 1.0) -> float:
    """How far a mean of `shots` values in a range of width `span` strays from its expectation, at most, in all of
    `tests` tests but with probability FALSE_ALARM."""
    return span * math.sqrt(math.log(2 * max(tests, 1) / FALSE_ALARM) / (2 * max(shots, 1)))


# --- Clifford: exact, with stim -------------------------------------------------------------------------------


def _clifford_check(
    circuit: Circuit, ops: Sequence[tuple[str, tuple[int, ...]]], counts: Mapping[str, int], shots: int, noise_bps: int
) -> JobCheck:
    constraints, free = clifford_constraints(circuit, ops)
    impossible: dict[str, int] = {}
    why: dict[str, str] = {}
    ones = dict.fromkeys(free, 0)
    for bits, count in counts.items():
        values = _measured_values(circuit, bits)
        if values is None:
            impossible[bits], why[bits] = count, "sets a classical bit no measurement writes"
            continue
        broken = next((c for c in constraints if sum(values[q] for q in c[0]) % 2 != c[1]), None)
        if broken is not None:
            qubits, parity = broken
            impossible[bits] = count
            why[bits] = f"the parity of qubits {list(qubits)} must be {parity}"
            continue
        for q in free:
            ones[q] += count * values[q]
    verdict = _impossible_verdict("stim", impossible, why, shots, noise_bps)
    if verdict is not None:
        return verdict
    possible = shots - sum(impossible.values())
    bound = _hoeffding(possible, len(free)) + noise_bps / (2 * BPS)
    for q in free:
        share = ones[q] / possible if possible else 0.5
        if abs(share - 0.5) > bound:
            return JobCheck(
                code=JobCheckCode.DISTRIBUTION,
                message=f"qubit {q} is free (1 in half the shots of the circuit's state) but reads 1 in "
                f"{ones[q]} of {possible} shots; allowed 0.5 ± {bound:.3f} (checked by stim)",
                method="stim",
            )
    return JobCheck(
        code=JobCheckCode.OK,
        message=f"{len(constraints)} parity constraints and {len(free)} free qubits hold (stim)",
        method="stim",
        impossible_shots=sum(impossible.values()),
    )


def clifford_constraints(
    circuit: Circuit, ops: Sequence[tuple[str, tuple[int, ...]]]
) -> tuple[list[tuple[tuple[int, ...], int]], list[int]]:
    """The parity constraints (qubits, parity) every outcome on the measured qubits obeys, and a set of measured
    qubits that are free (uniform, independent of each other): the Z-only stabilizers supported on the measured
    qubits, by Gaussian elimination over the state's stabilizer generators (signs tracked by stim's products)."""
    sim = stim.TableauSimulator()
    sim.set_num_qubits(circuit.n_qubits)
    sim.do_circuit(stim.Circuit("\n".join(f"{name} {' '.join(map(str, t))}" for name, t in ops)))
    rows = list(sim.canonical_stabilizers())
    measured = sorted({m.qubit for m in circuit.measurements})
    inside = set(measured)
    # (1) eliminate X parts: rows left without an X part generate the Z-only stabilizers
    rows = _eliminate(rows, list(range(circuit.n_qubits)), lambda p, q: p[q] in (1, 2))
    z_only = [r for r in rows if not any(r[q] in (1, 2) for q in range(circuit.n_qubits))]
    # (2) eliminate the unmeasured qubits: rows left are supported on the measured ones
    unmeasured = [q for q in range(circuit.n_qubits) if q not in inside]
    z_only = _eliminate(z_only, unmeasured, lambda p, q: p[q] == 3)
    kept = [r for r in z_only if not any(r[q] == 3 for q in unmeasured) and any(r[q] == 3 for q in measured)]
    # (3) row-reduce over the measured qubits: pivot columns are fixed by the others, the rest are free
    reduced = _eliminate(kept, measured, lambda p, q: p[q] == 3)
    pivots: set[int] = set()
    constraints: list[tuple[tuple[int, ...], int]] = []
    for r in reduced:
        support = tuple(q for q in measured if r[q] == 3)
        if not support:
            continue
        pivots.add(support[0])
        constraints.append((support, 0 if r.sign == 1 else 1))
    free = [q for q in measured if q not in pivots]
    return constraints, free


def _eliminate(
    rows: list[stim.PauliString], columns: Sequence[int], test: Callable[[stim.PauliString, int], bool]
) -> list[stim.PauliString]:
    """Gauss–Jordan over GF(2) on the chosen columns (`test(row, column)` tells whether a row has the column's
    bit); rows are multiplied as Pauli strings, so their signs stay right. Pivot rows come first, in column
    order; a column no row has is skipped."""
    rows = [r.copy() for r in rows]
    done = 0
    for q in columns:
        pivot = next((i for i in range(done, len(rows)) if test(rows[i], q)), None)
        if pivot is None:
            continue
        rows[done], rows[pivot] = rows[pivot], rows[done]
        for i in range(len(rows)):
            if i != done and test(rows[i], q):
                rows[i] = rows[i] * rows[done]
        done += 1
    return rows


# --- small non-Clifford circuits: a numpy statevector ---------------------------------------------------------

Matrix = npt.NDArray[np.complex128]


def _angle(a: Angle) -> float:
    return float(a.pi) * math.pi + float(a.rational)


def _u3(theta: float, phi: float, lam: float) -> Matrix:
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    return np.array(
        [[c, -np.exp(1j * lam) * s], [np.exp(1j * phi) * s, np.exp(1j * (phi + lam)) * c]], dtype=np.complex128
    )


def _controlled(u: Matrix) -> Matrix:
    out = np.eye(4, dtype=np.complex128)
    out[2:, 2:] = u  # control = first qubit (the high bit of the 2-qubit index)
    return out


_SQ2 = 1 / math.sqrt(2)
_FIXED_1Q: Final[Mapping[str, Matrix]] = {
    "id": np.eye(2, dtype=np.complex128),
    "x": np.array([[0, 1], [1, 0]], dtype=np.complex128),
    "y": np.array([[0, -1j], [1j, 0]], dtype=np.complex128),
    "z": np.array([[1, 0], [0, -1]], dtype=np.complex128),
    "h": np.array([[_SQ2, _SQ2], [_SQ2, -_SQ2]], dtype=np.complex128),
    "s": np.array([[1, 0], [0, 1j]], dtype=np.complex128),
    "sdg": np.array([[1, 0], [0, -1j]], dtype=np.complex128),
    "t": np.array([[1, 0], [0, np.exp(1j * math.pi / 4)]], dtype=np.complex128),
    "tdg": np.array([[1, 0], [0, np.exp(-1j * math.pi / 4)]], dtype=np.complex128),
    "sx": 0.5 * np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]], dtype=np.complex128),
    "sxdg": 0.5 * np.array([[1 - 1j, 1 + 1j], [1 + 1j, 1 - 1j]], dtype=np.complex128),
}


_CONTROLLED_FIXED: Final[Mapping[str, str]] = {"cx": "x", "CX": "x", "cy": "y", "cz": "z", "ch": "h", "csx": "sx"}


def _rx(t: float) -> Matrix:
    return np.array(
        [[math.cos(t / 2), -1j * math.sin(t / 2)], [-1j * math.sin(t / 2), math.cos(t / 2)]], dtype=np.complex128
    )


def _ry(t: float) -> Matrix:
    return np.array([[math.cos(t / 2), -math.sin(t / 2)], [math.sin(t / 2), math.cos(t / 2)]], dtype=np.complex128)


def _rz(t: float) -> Matrix:
    return np.array([[np.exp(-0.5j * t), 0], [0, np.exp(0.5j * t)]], dtype=np.complex128)


def _phase(t: float) -> Matrix:
    return np.array([[1, 0], [0, np.exp(1j * t)]], dtype=np.complex128)


def gate_matrix(gate: Gate) -> Matrix:
    """The gate's unitary (up to a global phase, as qelib1.inc defines it), first qubit the most significant."""
    p = [_angle(a) for a in gate.params]
    name = gate.name
    if name in _FIXED_1Q:
        return _FIXED_1Q[name]
    if name in ("u3", "u", "U"):
        return _u3(p[0], p[1], p[2])
    if name == "u2":
        return _u3(math.pi / 2, p[0], p[1])
    if name in ("u1", "p"):
        return _phase(p[0])
    if name == "rx":
        return _rx(p[0])
    if name == "ry":
        return _ry(p[0])
    if name == "rz":
        return _rz(p[0])
    if name in _CONTROLLED_FIXED:
        return _controlled(_FIXED_1Q[_CONTROLLED_FIXED[name]])
    if name in ("crx", "cry", "crz", "cu1", "cp", "cu3"):
        target = {
            "crx": lambda: _rx(p[0]),
            "cry": lambda: _ry(p[0]),
            "crz": lambda: _rz(p[0]),
            "cu1": lambda: _phase(p[0]),
            "cp": lambda: _phase(p[0]),
            "cu3": lambda: _u3(p[0], p[1], p[2]),
        }[name]()
        return _controlled(target)
    if name == "swap":
        return np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=np.complex128)
    if name == "rzz":
        t = p[0]
        return np.diag([np.exp(-0.5j * t), np.exp(0.5j * t), np.exp(0.5j * t), np.exp(-0.5j * t)]).astype(np.complex128)
    if name == "rxx":
        t = p[0]
        c, s = math.cos(t / 2), -1j * math.sin(t / 2)
        return np.array([[c, 0, 0, s], [0, c, s, 0], [0, s, c, 0], [s, 0, 0, c]], dtype=np.complex128)
    if name in ("ccx", "cswap"):
        out = np.eye(8, dtype=np.complex128)
        if name == "ccx":
            out[6:, 6:] = _FIXED_1Q["x"]
        else:
            out[[5, 6]] = out[[6, 5]]
        return out
    raise ValueError(f"no matrix for gate {name!r}")


def statevector(circuit: Circuit) -> npt.NDArray[np.complex128]:
    """The state before measurement as a tensor of shape (2,)*n, axis i = qubit i."""
    n = circuit.n_qubits
    state = np.zeros((2,) * n, dtype=np.complex128)
    state[(0,) * n] = 1
    for gate in circuit.ops:
        u = gate_matrix(gate)
        k = len(gate.qubits)
        u = u.reshape((2,) * (2 * k))
        state = np.tensordot(u, state, axes=(list(range(k, 2 * k)), list(gate.qubits)))
        state = np.moveaxis(state, list(range(k)), list(gate.qubits))
    return state


def _statevector_check(
    circuit: Circuit, counts: Mapping[str, int], shots: int, noise_bps: int, xeb_min_bps: int
) -> JobCheck:
    probs = np.abs(statevector(circuit)) ** 2
    measured = sorted({m.qubit for m in circuit.measurements})
    others = tuple(q for q in range(circuit.n_qubits) if q not in set(measured))
    marginal = probs.sum(axis=others) if others else probs  # axes in qubit order: the measured qubits, ascending
    size = 2 ** len(measured)
    flat = marginal.reshape(size)
    impossible: dict[str, int] = {}
    why: dict[str, str] = {}
    observed = 0.0
    possible = repeats = 0
    for bits, count in counts.items():
        values = _measured_values(circuit, bits)
        if values is None:
            impossible[bits], why[bits] = count, "sets a classical bit no measurement writes"
            continue
        index = 0
        for q in measured:
            index = index * 2 + values[q]
        p = float(flat[index])
        if p < ZERO_PROBABILITY:
            impossible[bits], why[bits] = count, f"probability {p:.1e}"
            continue
        observed += count * p
        possible += count
        repeats += count * (count - 1)
    verdict = _impossible_verdict("statevector", impossible, why, shots, noise_bps)
    if verdict is not None:
        return verdict
    collision = float(np.sum(flat**2))  # Σ p²: the chance two honest shots agree
    if possible > 1:  # a device answering one likely outcome over and over repeats itself far too often
        seen = repeats / (possible * (possible - 1))
        bound = collision + _hoeffding(possible // 2, 1)  # Hoeffding for a U-statistic of order 2
        if seen > bound:
            return JobCheck(
                code=JobCheckCode.DISTRIBUTION,
                message=f"two shots agree with probability {seen:.3f}, the circuit gives {collision:.3f} "
                f"(allowed up to {bound:.3f}; {possible} shots; checked by statevector)",
                method="statevector",
            )
    ideal = size * collision - 1
    if ideal < XEB_MIN_IDEAL or not possible:
        return JobCheck(
            code=JobCheckCode.OK,
            message=f"no impossible outcomes; the ideal distribution is too flat for cross-entropy "
            f"(F_ideal {ideal:.3f})",
            method="statevector",
            impossible_shots=sum(impossible.values()),
        )
    got = size * observed / possible - 1
    slack = _hoeffding(possible, 1, size * float(flat.max()))
    ratio = xeb_min_bps / BPS
    if not ratio * ideal - slack <= got <= ideal + slack:  # noise only lowers it; above is cherry-picking
        return JobCheck(
            code=JobCheckCode.DISTRIBUTION,
            message=f"cross-entropy {got:.3f} is outside {ratio} × {ideal:.3f} .. {ideal:.3f} (the ideal) "
            f"± the statistical slack {slack:.3f} ({possible} shots; checked by statevector)",
            method="statevector",
        )
    return JobCheck(
        code=JobCheckCode.OK,
        message=f"cross-entropy {got:.3f} of an ideal {ideal:.3f} (statevector)",
        method="statevector",
        impossible_shots=sum(impossible.values()),
    )
