"""QUANTUM_V1: mirror-Clifford trap circuits and the verifier of a quantum proof body (SPEC §8).

The coordinator hides k trap circuits among the job's circuit. Each trap is a random Clifford U of the job's width,
a secret Pauli frame P, then U⁻¹: the state before measurement is U⁻¹·P·U|0…0⟩, a computational basis state (up to
a phase), so one output bitstring is certain. P is chosen as U·X^m·Z^z·U⁻¹ for a non-zero mask m drawn from the trap
stream, so the certain bitstring is m: never all zeros, and not readable from the circuit text without simulating
it. Everything comes from `H("aicf/qtrap/v1", s_E, task_id)` through the counter-mode stream of docs/QUANTUM.md
(no `random`), so anyone holding the revealed seed rebuilds the same batch.

The verifier trusts nothing the provider says about the traps: it rebuilds them from the seed and recomputes each
certain bitstring itself with stim's tableau simulator. It never raises; every outcome is a `QuantumVerdict`.

Known limit (docs/QUANTUM.md): Clifford traps are classically simulable and the job circuit is public on chain, so
traps measure the fidelity of an honest device and catch providers that skip or fake whole batches; they cannot stop
a provider that recognises the job, answers the traps by simulation and fakes only the job's counts.
"""

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

import stim

from aicf.core.encoding import tagged_hash
from aicf.core.errors import AicfError, RequestError
from aicf.core.params import Params
from aicf.core.pricing import depth_weight_milli, quantum_units
from aicf.core.qasm import Circuit, Gate, Measurement, batch_digest, clifford_ops, depth, format_circuit, parse_circuit
from aicf.core.types import BPS, MAX_AMOUNT, MilliUnits
from aicf.proofs.quantum_check import XEB_MIN_BPS, JobCheckCode, check_job_results

QTRAP_TAG: Final = "aicf/qtrap/v1"
_FOUR_WORDS: Final = struct.Struct(">4Q")
BODY_KEYS: Final = frozenset({"circuit_digest", "shots", "results", "cert_chain", "qos"})
QOS_KEYS: Final = frozenset({"runtime_ms"})
MAX_CERTS: Final = 16

SINGLE_GATES: Final = ("h", "s", "sdg", "sx", "sxdg")  # index = below(5)
INVERSE: Final[Mapping[str, str]] = {
    "h": "h",
    "s": "sdg",
    "sdg": "s",
    "sx": "sxdg",
    "sxdg": "sx",
    "cx": "cx",
    "cz": "cz",
}
FRAME_GATES: Final = ("id", "x", "y", "z")  # indexed by stim's Pauli code 0=I, 1=X, 2=Y, 3=Z


_NO_UNITS: Final = MilliUnits(0)


class VerdictCode(StrEnum):
    ACCEPT = "ACCEPT"
    MALFORMED = "MALFORMED"  # the body's shape: keys, types, lengths, widths, counts
    IMPOSSIBLE_RESULT = "IMPOSSIBLE_RESULT"  # the job's counts hold outcomes its circuit cannot produce: FRAUD
    DIGEST_MISMATCH = "DIGEST_MISMATCH"  # circuit_digest is not that of the batch the lease handed out
    TRAP_FAILURE = "TRAP_FAILURE"  # quality_bps below params.trap_threshold_bps: slashable
    UNVERIFIABLE = "UNVERIFIABLE"  # the verifier could not judge (job circuit unparsable, a bug): no slash, requeue


@dataclass(frozen=True, slots=True, kw_only=True)
class QuantumVerdict:
    code: VerdictCode
    message: str
    quality_bps: int = 0  # set for ACCEPT and TRAP_FAILURE
    units_mu: MilliUnits = _NO_UNITS  # set for ACCEPT
    depth: int = 0

    @property
    def accepted(self) -> bool:
        return self.code is VerdictCode.ACCEPT


def _reject(code: VerdictCode, message: str) -> QuantumVerdict:
    return QuantumVerdict(code=code, message=message)


class TrapError(AicfError):
    """A trap circuit whose outcome is not certain: a bug in trap construction, never the provider's fault."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"trap: {reason}")
        self.reason = reason


# --- the deterministic stream -------------------------------------------------------------------------------


class TrapStream:
    """Counter-mode SHA3-256 over `root ‖ label ‖ counter` (8-byte big-endian), read as 64-bit big-endian words.

    `below(n)` draws uniformly from 0..n-1 by rejection (a word ≥ 2^64 − 2^64 mod n is skipped), so every
    implementation following docs/QUANTUM.md draws the same numbers.
    """

    def __init__(self, root: bytes, label: bytes) -> None:
        self._prefix = root + label
        self._counter = 0
        self._words: list[int] = []

    def word(self) -> int:
        if not self._words:
            block = hashlib.sha3_256(self._prefix + self._counter.to_bytes(8, "big")).digest()
            self._counter += 1
            self._words = list(_FOUR_WORDS.unpack(block))[::-1]  # popped from the end: word 0 first
        return self._words.pop()

    def below(self, n: int) -> int:
        limit = 2**64 - 2**64 % n
        while True:
            w = self.word()
            if w < limit:
                return w % n

    def shuffle(self, n: int) -> list[int]:
        """Fisher–Yates: for i = n−1 down to 1, swap item i with item below(i + 1)."""
        items = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]
        return items


def trap_root(seed: bytes, task_id: bytes) -> bytes:
    return tagged_hash(QTRAP_TAG, seed, task_id)


def trap_label(j: int) -> bytes:
    return b"trap" + j.to_bytes(4, "big")


ORDER_LABEL: Final = b"order"


# --- traps and the batch ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Trap:
    circuit: Circuit
    expected: str  # the certain bitstring by construction (the mask m), clbit 0 first

    def qasm(self) -> bytes:
        """What the provider runs. Computed on demand: the verifier needs the circuit, not its text."""
        return format_circuit(self.circuit).encode()


@dataclass(frozen=True, slots=True, kw_only=True)
class QuantumBatch:
    """The k + 1 circuits a provider runs, in batch order, with the shots of each."""

    circuits: tuple[bytes, ...]
    shots: tuple[int, ...]
    order: tuple[int, ...]  # order[i] = 0: the job sits at batch position i; j + 1: trap j does
    traps: tuple[Trap, ...]  # in derivation order j = 0 .. k-1
    job: Circuit
    job_depth: int

    @property
    def job_index(self) -> int:
        return self.order.index(0)


def _stim_circuit(ops: Sequence[tuple[str, tuple[int, ...]]]) -> stim.Circuit:
    lines = [f"{name} {' '.join(map(str, targets))}" for name, targets in ops]
    return stim.Circuit("\n".join(lines))


def _random_layer(stream: TrapStream, n: int) -> list[Gate]:
    """One full layer: qubits shuffled and paired; a pair gets cx either way, cz, or two single-qubit gates."""
    perm = stream.shuffle(n)
    gates: list[Gate] = []
    for i in range(0, n - 1, 2):
        a, b = perm[i], perm[i + 1]
        choice = stream.below(4)
        if choice == 0:
            gates.append(Gate(name="cx", qubits=(a, b)))
        elif choice == 1:
            gates.append(Gate(name="cx", qubits=(b, a)))
        elif choice == 2:
            gates.append(Gate(name="cz", qubits=(a, b)))
        else:
            gates.append(Gate(name=SINGLE_GATES[stream.below(5)], qubits=(a,)))
            gates.append(Gate(name=SINGLE_GATES[stream.below(5)], qubits=(b,)))
    if n % 2:
        gates.append(Gate(name=SINGLE_GATES[stream.below(5)], qubits=(perm[-1],)))
    return gates


def make_trap(root: bytes, j: int, n_qubits: int, job_depth: int) -> Trap:
    """Trap j: U (L full random layers), the Pauli frame P (one layer, or two for an even depth), then U⁻¹.

    Every layer touches every qubit, so the trap's depth is exactly max(job_depth, 1): L = (d − 1) // 2 with one
    frame layer for an odd d, L = (d − 2) // 2 with two for an even d ≥ 2 (P split as A then R, R a random Pauli
    layer and A = P·R per qubit, so R·A = P up to a phase), and L = 0 with one frame layer for d = 0.
    Draws from the stream "trap" ‖ j, in order: the L layers, the mask m (redrawn whole while all zero), the
    z bits, then R's Pauli codes (even d only).
    """
    stream = TrapStream(root, trap_label(j))
    two_frames = job_depth >= 2 and job_depth % 2 == 0
    n_layers = (job_depth - 2) // 2 if two_frames else max(job_depth - 1, 0) // 2
    layers = [_random_layer(stream, n_qubits) for _ in range(n_layers)]
    while True:
        mask = [stream.below(2) for _ in range(n_qubits)]
        if any(mask):
            break
    zbits = [stream.below(2) for _ in range(n_qubits)]
    forward = [op for layer in layers for op in layer]
    u = _stim_circuit(clifford_ops(_unmeasured(n_qubits, forward)))
    q = stim.PauliString(n_qubits)
    for i in range(n_qubits):
        q[i] = _PAULI_CODE[(mask[i], zbits[i])]
    frame = q.after(u)  # P = U·Q·U⁻¹, so U⁻¹·P·U = Q = X^m·Z^z (up to sign)
    codes = [int(frame[i]) for i in range(n_qubits)]
    frame_layers: list[list[int]] = [codes]
    if two_frames:
        r = [stream.below(4) for _ in range(n_qubits)]
        frame_layers = [[_pauli_product(p, x) for p, x in zip(codes, r, strict=True)], r]
    frame_ops = [
        Gate(name=FRAME_GATES[c], qubits=(i,)) for layer_codes in frame_layers for i, c in enumerate(layer_codes)
    ]
    backward = [Gate(name=INVERSE[op.name], qubits=op.qubits) for layer in reversed(layers) for op in layer]
    circuit = Circuit(
        n_qubits=n_qubits,
        n_clbits=n_qubits,
        qregs=(("q", n_qubits),),
        cregs=(("c", n_qubits),),
        ops=(*forward, *frame_ops, *backward),
        measurements=tuple(Measurement(qubit=i, clbit=i) for i in range(n_qubits)),
    )
    return Trap(circuit=circuit, expected="".join(map(str, mask)))


_PAULI_CODE: Final[Mapping[tuple[int, int], int]] = {(0, 0): 0, (1, 0): 1, (1, 1): 2, (0, 1): 3}  # (x, z) -> I,X,Y,Z
_PAULI_BITS: Final = {code: bits for bits, code in _PAULI_CODE.items()}


def _pauli_product(a: int, b: int) -> int:
    """The Pauli code of a·b up to a phase: the (x, z) bits add mod 2."""
    (ax, az), (bx, bz) = _PAULI_BITS[a], _PAULI_BITS[b]
    return _PAULI_CODE[(ax ^ bx, az ^ bz)]


def _unmeasured(n: int, ops: Sequence[Gate]) -> Circuit:
    return Circuit(n_qubits=n, n_clbits=0, qregs=(("q", n),), cregs=(), ops=tuple(ops), measurements=())


def derive_batch(
    job_circuit: bytes, shots: int, seed: bytes, task_id: bytes, params: Params, *, with_text: bool = True
) -> QuantumBatch:
    """The batch of SPEC §8 for a job. Raises RequestError if the job circuit does not parse.

    with_text=False leaves the traps' entries of `circuits` empty: the verifier simulates the trap circuits and
    never needs their text, which at the largest jobs costs as much as building the traps.
    """
    job = parse_circuit(job_circuit)
    job_depth = depth(job)
    root = trap_root(seed, task_id)
    k = params.trap_k
    traps = tuple(make_trap(root, j, job.n_qubits, job_depth) for j in range(k))
    order = tuple(TrapStream(root, ORDER_LABEL).shuffle(k + 1))
    job_text = canonical_job_text(job)
    circuits = tuple(job_text if o == 0 else traps[o - 1].qasm() if with_text else b"" for o in order)
    return QuantumBatch(
        circuits=circuits,
        shots=(shots,) * (k + 1),  # issue 14: the job and every trap run the same shots, nothing tells them apart
        order=order,
        traps=traps,
        job=job,
        job_depth=job_depth,
    )


def canonical_job_text(job: Circuit) -> bytes:
    """The job as the batch carries it: written by `format_circuit` like the traps (one gate per line), over one
    flat `qreg q[n]` and `creg c[m]` as the traps are, so its text shows no requester's formatting or register
    names. Flat qubit and classical bit order is kept, so result bitstrings mean the same as for the request."""
    cregs = (("c", job.n_clbits),) if job.n_clbits else ()
    return format_circuit(replace(job, qregs=(("q", job.n_qubits),), cregs=cregs)).encode()


def certain_bitstring(circuit: Circuit) -> str:
    """The one outcome the circuit can produce, computed with stim's tableau simulator (clbit 0 first).

    Raises TrapError when some measured bit is not certain, NotCliffordError for a non-Clifford gate.
    """
    sim = stim.TableauSimulator()
    sim.set_num_qubits(circuit.n_qubits)
    sim.do_circuit(_stim_circuit(clifford_ops(circuit)))
    bits = ["0"] * circuit.n_clbits
    for m in circuit.measurements:
        z = sim.peek_z(m.qubit)
        if z == 0:
            raise TrapError(f"q[{m.qubit}] is not certain")
        bits[m.clbit] = "1" if z == -1 else "0"
    return "".join(bits)


# --- the body and the verdict -------------------------------------------------------------------------------


class _MalformedError(Exception):
    pass


def _int_field(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _MalformedError(f"{name}: expected an integer, got {type(value).__name__}")
    if not 0 <= value < MAX_AMOUNT:
        raise _MalformedError(f"{name}: must be >= 0 and < 2^63, got {value}")
    return value


def _check_shape(body: object, k: int) -> tuple[bytes, int, list[Mapping[object, object]]]:
    """(1) Keys, types and lengths of the body, before any number in it is believed."""
    if not isinstance(body, Mapping):
        raise _MalformedError(f"body: expected a map, got {type(body).__name__}")
    keys = set(body)
    if missing := sorted(BODY_KEYS - keys):
        raise _MalformedError(f"body: missing key {missing[0]!r}")
    if unknown := sorted(map(repr, keys - BODY_KEYS)):
        raise _MalformedError(f"body: unknown key {unknown[0]}")
    digest = body["circuit_digest"]
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise _MalformedError("circuit_digest: expected 32 bytes")
    shots = _int_field("shots", body["shots"])
    results = body["results"]
    if not isinstance(results, list | tuple):
        raise _MalformedError(f"results: expected a list, got {type(results).__name__}")
    if len(results) != k + 1:
        raise _MalformedError(f"results: expected {k + 1} entries (job + {k} traps), got {len(results)}")
    for i, entry in enumerate(results):
        if not isinstance(entry, Mapping):
            raise _MalformedError(f"results[{i}]: expected a map of bitstring to count, got {type(entry).__name__}")
    chain = body["cert_chain"]
    if not isinstance(chain, list | tuple) or not all(isinstance(c, bytes) for c in chain):
        raise _MalformedError("cert_chain: expected a list of byte strings")
    if len(chain) > MAX_CERTS:
        raise _MalformedError(f"cert_chain: at most {MAX_CERTS} certificates, got {len(chain)}")
    qos = body["qos"]
    if not isinstance(qos, Mapping):
        raise _MalformedError(f"qos: expected a map, got {type(qos).__name__}")
    if missing := sorted(QOS_KEYS - set(qos)):
        raise _MalformedError(f"qos: missing key {missing[0]!r}")
    if unknown := sorted(map(repr, set(qos) - QOS_KEYS)):
        raise _MalformedError(f"qos: unknown key {unknown[0]}")
    _int_field("qos.runtime_ms", qos["runtime_ms"])
    return digest, shots, list(results)


def quantum_shape_error(body: object, k: int) -> str | None:
    """Step (1) alone: why the body's shape is MALFORMED, or None (the device certificate is checked after it)."""
    try:
        _check_shape(body, k)
    except _MalformedError as exc:
        return str(exc)
    return None


def _check_counts(i: int, entry: Mapping[object, object], width: int, shots: int) -> None:
    """(5) Every key a bitstring of the circuit's width, every count a positive int, the counts summing to shots."""
    total = 0
    for bits, count in entry.items():
        if not isinstance(bits, str) or len(bits) != width or bits.strip("01"):
            raise _MalformedError(f"results[{i}]: key {str(bits)[:40]!r} is not a bitstring of width {width}")
        if isinstance(count, bool) or not isinstance(count, int):
            raise _MalformedError(f"results[{i}][{bits!r}]: expected an integer count, got {type(count).__name__}")
        if count < 1:
            raise _MalformedError(f"results[{i}][{bits!r}]: count must be at least 1, got {count}")
        total += count
    if total != shots:
        raise _MalformedError(f"results[{i}]: counts sum to {total}, expected {shots} shots")


def verify_quantum_body(
    body: Mapping[str, object],
    job_circuit: bytes,
    shots: int,
    seed: bytes,
    task_id: bytes,
    params: Params,
    device_class: str | None = None,
) -> QuantumVerdict:
    """Judge a QUANTUM_V1 body. The first failing step decides; never raises.

    (1) shape → MALFORMED; (2) shots equal the request's → MALFORMED; (3) rebuild the batch from the seed (job
    circuit unparsable → UNVERIFIABLE); (4) circuit_digest is the digest of that batch → DIGEST_MISMATCH; (5) every
    results entry has the width and shot total of its batch circuit → MALFORMED; (6) recompute each trap's certain
    bitstring with stim; (7) quality_bps = Σ passing trap shots × 10000 // Σ trap shots, below trap_threshold_bps →
    TRAP_FAILURE; (8) the job's own counts against its circuit (aicf.proofs.quantum_check): outcomes it cannot
    produce beyond the noise budget → IMPOSSIBLE_RESULT, a distribution test failed → TRAP_FAILURE.

    `device_class` (the class the operator pinned the proof's device under) picks the thresholds of (7) and (8)
    from params' `trap_threshold_bps_by_class` and `xeb_min_bps_by_class`; None uses `trap_threshold_bps` and the
    noisy class's cross-entropy floor. A class params has no thresholds for → UNVERIFIABLE.
    """
    try:
        return _verify(body, job_circuit, shots, seed, task_id, params, device_class)
    except Exception as exc:  # noqa: BLE001 (fail closed: a verifier bug must reject without slashing, never crash)
        return _reject(VerdictCode.UNVERIFIABLE, f"verifier error: {type(exc).__name__}: {exc}")


def _of(device_class: str | None) -> str:
    return f" of device class {device_class!r}" if device_class is not None else ""


def _verify(
    body: Mapping[str, object],
    job_circuit: bytes,
    shots: int,
    seed: bytes,
    task_id: bytes,
    params: Params,
    device_class: str | None,
) -> QuantumVerdict:
    k = params.trap_k
    threshold, xeb_min = params.trap_threshold_bps, XEB_MIN_BPS
    if device_class is not None:
        if device_class not in params.trap_threshold_bps_by_class:
            return _reject(
                VerdictCode.UNVERIFIABLE,
                f"device class {device_class!r} has no thresholds in params (known: {list(params.device_classes())})",
            )
        threshold = params.trap_threshold_bps_by_class[device_class]
        xeb_min = params.xeb_min_bps_by_class[device_class]
    try:
        digest, claimed_shots, results = _check_shape(body, k)  # (1)
    except _MalformedError as exc:
        return _reject(VerdictCode.MALFORMED, str(exc))
    if claimed_shots != shots:  # (2)
        return _reject(VerdictCode.MALFORMED, f"shots: expected {shots}, got {claimed_shots}")
    try:
        batch = derive_batch(job_circuit, shots, seed, task_id, params)  # (3)
    except RequestError as exc:
        return _reject(VerdictCode.UNVERIFIABLE, f"job circuit does not parse: {exc.reason}")
    want = batch_digest(batch.circuits, batch.shots)  # (4) the batch this lease handed out, every circuit of it
    if digest != want:
        return _reject(
            VerdictCode.DIGEST_MISMATCH, f"batch digest mismatch: expected 0x{want.hex()}, got 0x{digest.hex()}"
        )
    try:  # (5)
        for i, o in enumerate(batch.order):
            width = batch.job.n_clbits if o == 0 else batch.traps[o - 1].circuit.n_clbits
            _check_counts(i, results[i], width, batch.shots[i])
    except _MalformedError as exc:
        return _reject(VerdictCode.MALFORMED, str(exc))
    passed = total = 0
    for i, o in enumerate(batch.order):
        if o == 0:
            continue
        expected = certain_bitstring(batch.traps[o - 1].circuit)  # (6) our own simulation, not the provider's word
        count = results[i].get(expected, 0)
        passed += count if isinstance(count, int) else 0
        total += batch.shots[i]
    quality = passed * BPS // total if total else BPS  # (7) k = 0: no traps, nothing to measure quality by
    d = batch.job_depth
    if quality < threshold:
        return QuantumVerdict(
            code=VerdictCode.TRAP_FAILURE,
            message=f"trap quality {quality} bps is below the threshold of {threshold} bps{_of(device_class)} "
            f"({passed} of {total} trap shots gave the certain bitstring)",
            quality_bps=quality,
            depth=d,
        )
    job_counts = {b: c for b, c in results[batch.job_index].items() if isinstance(b, str) and isinstance(c, int)}
    job_check = check_job_results(batch.job, job_counts, shots, BPS - threshold, xeb_min)  # (8)
    if job_check.code is JobCheckCode.IMPOSSIBLE:
        return QuantumVerdict(
            code=VerdictCode.IMPOSSIBLE_RESULT,
            message=f"job results: {job_check.message}",
            quality_bps=quality,
            depth=d,
        )
    if job_check.code is JobCheckCode.DISTRIBUTION:
        return QuantumVerdict(
            code=VerdictCode.TRAP_FAILURE, message=f"job results: {job_check.message}", quality_bps=quality, depth=d
        )
    units = quantum_units(shots, depth_weight_milli(d, params), quality)
    return QuantumVerdict(
        code=VerdictCode.ACCEPT,
        message=f"{passed} of {total} trap shots passed; job results: {job_check.message}",
        quality_bps=quality,
        units_mu=units,
        depth=d,
    )
