"""The OpenQASM 2 subset of docs/QUANTUM.md: what parses, what is refused (with the exact message), and depth."""

from fractions import Fraction

import pytest
from budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from aicf.core.errors import RequestError
from aicf.core.params import Params
from aicf.core.qasm import (
    GATES,
    MAX_CIRCUIT_BYTES,
    MAX_DEPTH,
    MAX_QUBITS,
    MAX_VOLUME,
    Angle,
    Circuit,
    Gate,
    Measurement,
    NotCliffordError,
    circuit_depth,
    clifford_ops,
    depth,
    format_angle,
    format_circuit,
    parse_circuit,
)
from aicf.core.requests import validate_request

HEAD = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'
BELL = HEAD + "qreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n"


def qasm(body: str, head: str = HEAD) -> bytes:
    return (head + body).encode()


def reject(data: bytes) -> str:
    with pytest.raises(RequestError) as info:
        parse_circuit(data)
    assert info.value.field == "circuit"
    return info.value.reason


# --- what parses ----------------------------------------------------------------------------------------------


def test_bell_circuit_parses_to_flat_indices() -> None:
    c = parse_circuit(BELL.encode())
    assert (c.n_qubits, c.n_clbits) == (2, 2)
    assert c.ops == (Gate(name="h", qubits=(0,)), Gate(name="cx", qubits=(0, 1)))
    assert c.measurements == (Measurement(qubit=0, clbit=0), Measurement(qubit=1, clbit=1))


def test_several_registers_are_numbered_in_declaration_order() -> None:
    c = parse_circuit(qasm("qreg a[2];\nqreg b[3];\ncreg m[1];\ncreg n[4];\ncx a[1],b[2];\nmeasure b[0] -> n[3];\n"))
    assert c.qregs == (("a", 2), ("b", 3))
    assert c.cregs == (("m", 1), ("n", 4))
    assert c.ops == (Gate(name="cx", qubits=(1, 4)),)
    assert c.measurements == (Measurement(qubit=2, clbit=4),)


def test_gates_broadcast_over_whole_registers() -> None:
    c = parse_circuit(qasm("qreg a[3];\nqreg b[3];\ncreg c[1];\nh a;\ncx a,b;\ncx a[0],b;\nmeasure a[0] -> c[0];\n"))
    assert [op.qubits for op in c.ops] == [(0,), (1,), (2,), (0, 3), (1, 4), (2, 5), (0, 3), (0, 4), (0, 5)]


def test_comments_whitespace_and_several_statements_per_line() -> None:
    c = parse_circuit(
        b"OPENQASM 2.0; // header\n  qreg q[1];creg c[1];\tU(0,0,pi) q[0]; // builtin\nmeasure q[0]->c[0];"
    )
    assert c.ops == (Gate(name="U", params=(Angle(), Angle(), Angle(pi=Fraction(1))), qubits=(0,)),)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("pi", Angle(pi=Fraction(1))),
        ("-pi/2", Angle(pi=Fraction(-1, 2))),
        ("3*pi/4", Angle(pi=Fraction(3, 4))),
        ("pi*3/4", Angle(pi=Fraction(3, 4))),
        ("2*(pi/8 + pi/8)", Angle(pi=Fraction(1, 2))),
        ("0.5", Angle(rational=Fraction(1, 2))),
        ("1e-3", Angle(rational=Fraction(1, 1000))),
        ("2.", Angle(rational=Fraction(2))),
        (".25*pi", Angle(pi=Fraction(1, 4))),
        ("pi/2 + 0.1", Angle(pi=Fraction(1, 2), rational=Fraction(1, 10))),
        ("pi/pi", Angle(rational=Fraction(1))),
        ("2^3", Angle(rational=Fraction(8))),
        ("2^-2*pi", Angle(pi=Fraction(1, 4))),
        ("pi^1", Angle(pi=Fraction(1))),
        ("--pi", Angle(pi=Fraction(1))),
        ("+(pi)", Angle(pi=Fraction(1))),
    ],
)
def test_parameter_expressions_are_exact(expr: str, expected: Angle) -> None:
    c = parse_circuit(qasm(f"qreg q[1];\ncreg c[1];\nrz({expr}) q[0];\nmeasure q[0] -> c[0];\n"))
    assert c.ops[0].params == (expected,)


def test_every_gate_of_the_table_parses_with_its_arity() -> None:
    for name, spec in GATES.items():
        params = "(" + ",".join(["pi/2"] * spec.n_params) + ")" if spec.n_params else ""
        qubits = ",".join(f"q[{i}]" for i in range(spec.n_qubits))
        c = parse_circuit(qasm(f"qreg q[3];\ncreg c[1];\n{name}{params} {qubits};\nmeasure q[0] -> c[0];\n"))
        assert c.ops[0].name == name
        assert len(c.ops[0].qubits) == spec.n_qubits


def test_a_measured_circuit_may_leave_other_qubits_unmeasured() -> None:
    c = parse_circuit(qasm("qreg q[3];\ncreg c[1];\nh q;\nmeasure q[2] -> c[0];\n"))
    assert c.measurements == (Measurement(qubit=2, clbit=0),)


# --- what is refused ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "line 1: empty circuit: expected 'OPENQASM 2.0;'"),
        (b"// nothing\n", "line 2: empty circuit: expected 'OPENQASM 2.0;'"),
        (b"qreg q[1];", "line 1: a circuit must start with 'OPENQASM 2.0;', got 'qreg'"),
        (b"OPENQASM 3.0;", "line 1: unsupported OpenQASM version '3.0': only 2.0 is accepted"),
        (b"OPENQASM 2.0", "line 1: expected ';' after the OPENQASM version, got end of input"),
        (b"OPENQASM 2.0;\nOPENQASM 2.0;", "line 2: OPENQASM may appear only once, as the first statement"),
        (b'OPENQASM 2.0;\ninclude "other.inc";', 'line 2: only "qelib1.inc" can be included, got "other.inc"'),
        (
            b'OPENQASM 2.0;\ninclude "qelib1.inc";\ninclude "qelib1.inc";',
            'line 3: "qelib1.inc" is included twice',
        ),
        (b"OPENQASM 2.0;\nqreg q[1];\ncreg c[1];\nh q[0];", "line 4: gate 'h' needs include \"qelib1.inc\";"),
        (b"OPENQASM 2.0;\nqreg q[1];\x80", "line 2: not valid UTF-8 (byte 0x80 at offset 24)"),
        (b"OPENQASM 2.0;\nqreg q[1];\n@", "line 3: unexpected character '@'"),
    ],
)
def test_header_and_encoding_errors(data: bytes, reason: str) -> None:
    assert reject(data) == reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("qreg q[1];\ncreg c[1];\nh r[0];\n", "line 5: undeclared register 'r'"),
        ("qreg q[2];\ncreg c[1];\nh q[2];\n", "line 5: index 2 out of range for qreg q[2]"),
        ("qreg q[2];\ncreg c[1];\nmeasure q[0] -> c[1];\n", "line 5: index 1 out of range for creg c[1]"),
        ("qreg q[1];\ncreg c[1];\nfoo q[0];\n", "line 5: unknown gate 'foo'"),
        ("qreg q[2];\ncreg c[1];\ncx q[0];\n", "line 5: gate 'cx' acts on 2 qubit(s), got 1"),
        ("qreg q[1];\ncreg c[1];\nrz q[0];\n", "line 5: gate 'rz' takes 1 parameter(s), got 0"),
        ("qreg q[1];\ncreg c[1];\nh(pi) q[0];\n", "line 5: gate 'h' takes 0 parameter(s), got 1"),
        ("qreg q[2];\ncreg c[1];\ncx q[1],q[1];\n", "line 5: gate 'cx' uses q[1] more than once"),
        ("qreg q[1];\ncreg c[1];\nh c[0];\n", "line 5: gate 'h' acts on qubits, but 'c' is a classical register"),
        ("qreg q[2];\nqreg r[3];\ncx q,r;\n", "line 5: registers of different sizes in one gate (q[2] and r[3])"),
        ("qreg q[1];\ncreg c[1];\nh q[0]\nx q[0];\n", "line 6: expected ';' after gate 'h', got 'x'"),
        ("qreg q[1];\nqreg q[2];\n", "line 4: register 'q' is declared twice"),
        ("qreg Q[1];\n", "line 3: register name 'Q' must start with a lowercase letter"),
        ("qreg q[0];\n", "line 3: register 'q' must have at least 1 bit"),
        (f"qreg q[{MAX_QUBITS}];\nqreg r[1];\n", f"line 4: {MAX_QUBITS + 1} qubits exceed the limit of {MAX_QUBITS}"),
        ("qreg q[1.5];\n", "line 3: expected a register size (a non-negative integer), got '1.5'"),
        ("gate g a { h a; }\n", "line 3: gate definitions are not supported; use the gates of qelib1.inc"),
        ("opaque g a;\n", "line 3: opaque gates are not supported; use the gates of qelib1.inc"),
        (
            "qreg q[1];\ncreg c[1];\nif(c==1) x q[0];\n",
            "line 5: classically controlled operations (if) are not supported",
        ),
        ("qreg q[1];\nreset q[0];\n", "line 4: reset is not supported"),
        ("qreg q[1];\ncreg c[1];\nh q[0];\n", "line 6: the circuit measures nothing"),
        (
            "qreg q[1];\ncreg c[1];\nmeasure q[0] -> c[0];\nx q[0];\n",
            "line 6: gate 'x' on q[0] after it was measured",
        ),
        ("qreg q[1];\ncreg c[2];\nmeasure q[0] -> c[0];\nmeasure q[0] -> c[1];\n", "line 6: q[0] is measured twice"),
        ("qreg q[2];\ncreg c[1];\nmeasure q[0] -> c[0];\nmeasure q[1] -> c[0];\n", "line 6: c[0] is written twice"),
        (
            "qreg q[2];\ncreg c[2];\nmeasure q -> c[0];\n",
            "line 5: measure needs both sides indexed or both whole registers",
        ),
        (
            "qreg q[2];\ncreg c[3];\nmeasure q -> c;\n",
            "line 5: registers of different sizes in one measure (q[2] and c[3])",
        ),
        (
            "qreg q[1];\ncreg c[1];\nmeasure c[0] -> c[0];\n",
            "line 5: measure reads a qubit, but 'c' is a classical register",
        ),
        ("qreg q[1];\ncreg c[1];\nmeasure q[0] c[0];\n", "line 5: expected '->' in measure, got 'c'"),
        ("qreg q[1];\ncreg c[1];\nbarrier c;\n", "line 5: barrier acts on qubits, but 'c' is a classical register"),
        ("qreg q[1];\n;\n", "line 4: expected a statement, got ';'"),
    ],
)
def test_statement_errors(body: str, reason: str) -> None:
    assert reject(qasm(body)) == reason


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("pi*pi", "line 5: cannot represent a product of two multiples of pi exactly"),
        ("1/pi", "line 5: cannot represent a division by a multiple of pi exactly"),
        ("(pi+1)/pi", "line 5: cannot represent a division by a multiple of pi exactly"),
        ("pi/0", "line 5: division by zero in a parameter"),
        ("0^-1", "line 5: division by zero in a parameter"),
        (
            "sin(pi)",
            "line 5: function 'sin' is not supported: parameters must be exact (rationals and multiples of pi)",
        ),
        ("theta", "line 5: unknown identifier 'theta' in a parameter"),
        ("2^0.5", "line 5: cannot represent a power with a non-integer exponent exactly"),
        ("pi^2", "line 5: cannot represent a power of pi exactly"),
        ("2^65", "line 5: exponent 65 is outside -64..64"),
        ("1e65", "line 5: exponent of 1e65 is outside -64..64"),
        ("1" * 65, "line 5: number 11111111111111111111... is longer than 64 characters"),
        ("(pi", "line 5: expected ')' after the parameters, got 'q'"),
        ("(pi q[0];", "line 5: expected ')' to close '(', got 'q'"),
        ("", "line 5: gate 'rz' takes 1 parameter(s), got 0"),
        ("pi,", "line 5: expected a parameter value, got ')'"),
        ("(" * 33 + "pi" + ")" * 33, "line 5: parameter expression nested deeper than 32"),
        ("10^60*10^60*10^60", "line 5: parameter value too large or too precise"),
    ],
)
def test_parameter_errors(expr: str, reason: str) -> None:
    assert reject(qasm(f"qreg q[1];\ncreg c[1];\nrz({expr}) q[0];\nmeasure q[0] -> c[0];\n")) == reason


def test_oversized_and_non_bytes_input_is_refused() -> None:
    assert reject(b" " * (MAX_CIRCUIT_BYTES + 1)) == f"{MAX_CIRCUIT_BYTES + 1} bytes exceeds the limit of 262144"
    with pytest.raises(RequestError, match="expected bytes, got str"):
        parse_circuit("OPENQASM 2.0;")  # type: ignore[arg-type]


def test_depth_above_the_limit_is_refused() -> None:
    body = "qreg q[1];\ncreg c[1];\n" + "x q[0];\n" * (MAX_DEPTH + 1) + "measure q[0] -> c[0];\n"
    assert reject(qasm(body)) == f"line {MAX_DEPTH + 5}: depth exceeds the limit of {MAX_DEPTH}"


def test_qubits_times_depth_above_the_volume_limit_is_refused() -> None:
    body = f"qreg q[{MAX_QUBITS}];\ncreg c[1];\n" + "h q;\n" * (MAX_VOLUME // MAX_QUBITS + 1)
    reason = f"line {MAX_VOLUME // MAX_QUBITS + 5}: 128 qubits × depth 257 exceed the limit of {MAX_VOLUME}"
    assert reject(qasm(body)) == reason
    late = "qreg q[1];\ncreg c[1];\n" + "h q;\n" * 300 + "qreg r[127];\n"
    assert reject(qasm(late)) == f"line 305: 128 qubits × depth 300 exceed the limit of {MAX_VOLUME}"


def test_circuit_bytes_limit_matches_the_params_default() -> None:
    assert Params().max_circuit_bytes == MAX_CIRCUIT_BYTES


# --- depth ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("h q[0];\ncx q[0],q[1];\n", 2),  # Bell
        ("h q[0];\nh q[1];\nh q[2];\n", 1),  # parallel gates share a layer
        ("h q;\n", 1),
        ("h q[0];\nbarrier q;\nh q[1];\n", 1),  # a barrier neither adds a layer nor synchronises
        ("h q[0];\nh q[0];\nh q[1];\n", 2),
        ("cx q[0],q[1];\ncx q[1],q[2];\nh q[0];\n", 2),  # h q[0] slots in beside the second cx
        ("ccx q[0],q[1],q[2];\nx q[0];\nx q[1];\nx q[2];\n", 2),
        ("", 0),  # only measurements
    ],
)
def test_depth_is_the_asap_layer_count_without_measurements_and_barriers(body: str, expected: int) -> None:
    data = qasm("qreg q[3];\ncreg c[3];\n" + body + "measure q -> c;\n")
    assert circuit_depth(data) == expected
    assert depth(parse_circuit(data)) == expected


def test_circuit_depth_plugs_into_validate_request() -> None:
    request = {"kind": "quantum", "circuit": BELL.encode(), "shots": 1000, "fee_per_unit": 10**6, "tier": 0}
    valid = validate_request(request, Params(), 10000, circuit_depth)
    assert valid.depth == 2
    assert valid.max_units_mu == 1000 * 1000
    bad = dict(request, circuit=b"OPENQASM 2.0;\nqreg q[1];\nfoo q[0];")
    with pytest.raises(RequestError, match="request rejected: circuit: line 3: unknown gate 'foo'"):
        validate_request(bad, Params(), 10000, circuit_depth)


# --- Clifford lowering (the stim checks of each lowering are in tests/proofs/test_quantum.py) ------------------


def test_clifford_lowering_refuses_t_type_angles_and_gates() -> None:
    with pytest.raises(NotCliffordError, match=r"line 5: gate 'rz' with angle pi/4 is not a Clifford gate"):
        clifford_ops(parse_circuit(qasm("qreg q[1];\ncreg c[1];\nrz(pi/4) q[0];\nmeasure q[0] -> c[0];\n")))
    with pytest.raises(NotCliffordError, match=r"line 5: gate 't' is not a Clifford gate"):
        clifford_ops(parse_circuit(qasm("qreg q[1];\ncreg c[1];\nt q[0];\nmeasure q[0] -> c[0];\n")))
    with pytest.raises(NotCliffordError, match=r"gate 'rx' with angle 1/2 is not a Clifford gate"):
        clifford_ops(parse_circuit(qasm("qreg q[1];\ncreg c[1];\nrx(0.5) q[0];\nmeasure q[0] -> c[0];\n")))


def test_clifford_lowering_of_named_gates() -> None:
    c = parse_circuit(
        qasm("qreg q[2];\ncreg c[1];\nh q[0];\nsdg q[1];\nrz(-pi/2) q[0];\ncz q[1],q[0];\nmeasure q[0] -> c[0];\n")
    )
    assert clifford_ops(c) == (("H", (0,)), ("S_DAG", (1,)), ("S_DAG", (0,)), ("CZ", (1, 0)))


# --- properties -----------------------------------------------------------------------------------------------

fractions = st.fractions(max_denominator=64).filter(lambda f: abs(f.numerator) < 10**6)
angles = st.builds(Angle, pi=fractions, rational=fractions)


@given(a=angles)
def test_format_angle_reads_back_exactly(a: Angle) -> None:
    c = parse_circuit(qasm(f"qreg q[1];\ncreg c[1];\nrz({format_angle(a)}) q[0];\nmeasure q[0] -> c[0];\n"))
    assert c.ops[0].params == (a,)


@st.composite
def circuits(draw: st.DrawFn) -> Circuit:
    qsizes = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    csizes = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    n_q, n_c = sum(qsizes), sum(csizes)
    names = [n for n in GATES if GATES[n].n_qubits <= n_q]
    ops = []
    for _ in range(draw(st.integers(0, 20))):
        name = draw(st.sampled_from(names))
        spec = GATES[name]
        qubits = tuple(
            draw(st.lists(st.integers(0, n_q - 1), min_size=spec.n_qubits, max_size=spec.n_qubits, unique=True))
        )
        params = tuple(draw(angles) for _ in range(spec.n_params))
        ops.append(Gate(name=name, params=params, qubits=qubits))
    pairs = draw(st.integers(1, min(n_q, n_c)))
    measured = draw(st.permutations(range(n_q)))[:pairs]
    written = draw(st.permutations(range(n_c)))[:pairs]
    return Circuit(
        n_qubits=n_q,
        n_clbits=n_c,
        qregs=tuple((f"q{i}", s) for i, s in enumerate(qsizes)),
        cregs=tuple((f"c{i}", s) for i, s in enumerate(csizes)),
        ops=tuple(ops),
        measurements=tuple(Measurement(qubit=q, clbit=c) for q, c in zip(measured, written, strict=True)),
    )


@pytest.mark.slow
@settings(max_examples=examples(50))
@given(c=circuits())
def test_random_valid_circuits_round_trip_and_depth_is_bounded(c: Circuit) -> None:
    text = format_circuit(c).encode()
    assert parse_circuit(text) == c
    d = circuit_depth(text)
    assert d == depth(c)
    assert d <= len(c.ops)  # depth never exceeds the gate count ...
    busiest = max((sum(q in op.qubits for op in c.ops) for q in range(c.n_qubits)), default=0)
    assert d >= busiest  # ... nor falls below the gate count of the busiest qubit


@settings(max_examples=examples(100))
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_request_error(data: bytes) -> None:
    reason = ""
    try:
        parse_circuit(data)
    except RequestError as exc:
        reason = exc.reason
    assert reason == "" or reason.startswith("line ")
