"""The OpenQASM 2.0 subset a requester submits (SPEC §2, §3, §8), parsed without floats.

`parse_circuit` turns circuit bytes into a frozen `Circuit` or raises `RequestError("circuit", "line N: ...")`
naming the first thing wrong; `circuit_depth` is the `CircuitDepth` callback of `validate_request`. Angles are
exact: `Angle(pi, rational)` is `pi·π + rational` radians with both parts `Fraction`s, and an expression whose
value has no such form (`pi*pi`, `sin(1)`, `1/pi`) is refused rather than rounded, so every node computes the same
circuit from the same bytes. `clifford_ops` lowers a circuit to stim gate names (as plain strings: the core does
not import stim) for the stabilizer simulations of the trap verifier and the reference provider.

The accepted format is documented in docs/QUANTUM.md. In short:

- `OPENQASM 2.0;` first; `include "qelib1.inc";` (at most once, and needed by every gate but `U` and `CX`).
- `qreg name[n];` / `creg name[n];` (names start with a lowercase letter; at most MAX_QUBITS qubits and
  MAX_CLBITS bits in all), the gates of `GATES` with OpenQASM 2 register broadcasting, `measure a -> b;` on single
  bits or whole registers of equal size, `barrier ...;` (ignored: it neither adds nor synchronises layers).
- Refused: `gate` / `opaque` definitions, `if`, `reset`, a gate on a qubit after it was measured, a qubit
  measured twice, a classical bit written twice, a circuit that measures nothing, depth above MAX_DEPTH, and
  qubits × depth above MAX_VOLUME.
"""

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Final

from aicf.core.encoding import tagged_hash
from aicf.core.errors import AicfError, RequestError
from aicf.core.ids import circuit_digest

MAX_CIRCUIT_BYTES: Final = 256 * 1024  # SPEC §2; Params.max_circuit_bytes holds the same default
MAX_QUBITS: Final = 128  # bounds the verifier's trap simulations (k traps of the job's width × depth)
MAX_CLBITS: Final = 1024
MAX_DEPTH: Final = 1024
MAX_VOLUME: Final = 32 * 1024  # qubits × depth: the size of each trap, hence the verifier's work per job
MAX_BATCH_CIRCUIT_BYTES: Final = 4 * 1024 * 1024  # a coordinator-made trap may exceed MAX_CIRCUIT_BYTES; none this
MAX_NUMBER_CHARS: Final = 64  # a numeric literal longer than this is refused
MAX_EXPONENT: Final = 64  # |e| of a literal such as 1e-5, and |b| of a power a^b
MAX_FRACTION_BITS: Final = 512  # numerator and denominator of every intermediate angle value
MAX_NESTING: Final = 32  # parentheses inside one parameter expression

QELIB1: Final = "qelib1.inc"


@dataclass(frozen=True, slots=True)
class GateSpec:
    n_params: int
    n_qubits: int
    builtin: bool = False  # U and CX are part of the language; every other gate comes from qelib1.inc


# The qelib1.inc gate set (the 2017 OpenQASM 2 paper's file plus the gates Qiskit's copy adds and commonly
# emits: u, p, sx, sxdg, swap, cswap, crx, cry, cp, csx, rxx, rzz). Multi-controlled c3x/c4x/rccx are left out.
GATES: Final[dict[str, GateSpec]] = {
    "U": GateSpec(3, 1, builtin=True),
    "CX": GateSpec(0, 2, builtin=True),
    "u3": GateSpec(3, 1),
    "u2": GateSpec(2, 1),
    "u1": GateSpec(1, 1),
    "u": GateSpec(3, 1),
    "p": GateSpec(1, 1),
    "id": GateSpec(0, 1),
    "x": GateSpec(0, 1),
    "y": GateSpec(0, 1),
    "z": GateSpec(0, 1),
    "h": GateSpec(0, 1),
    "s": GateSpec(0, 1),
    "sdg": GateSpec(0, 1),
    "t": GateSpec(0, 1),
    "tdg": GateSpec(0, 1),
    "sx": GateSpec(0, 1),
    "sxdg": GateSpec(0, 1),
    "rx": GateSpec(1, 1),
    "ry": GateSpec(1, 1),
    "rz": GateSpec(1, 1),
    "cx": GateSpec(0, 2),
    "cy": GateSpec(0, 2),
    "cz": GateSpec(0, 2),
    "ch": GateSpec(0, 2),
    "swap": GateSpec(0, 2),
    "crx": GateSpec(1, 2),
    "cry": GateSpec(1, 2),
    "crz": GateSpec(1, 2),
    "cu1": GateSpec(1, 2),
    "cp": GateSpec(1, 2),
    "cu3": GateSpec(3, 2),
    "csx": GateSpec(0, 2),
    "rxx": GateSpec(1, 2),
    "rzz": GateSpec(1, 2),
    "ccx": GateSpec(0, 3),
    "cswap": GateSpec(0, 3),
}

_REFUSED: Final[dict[str, str]] = {
    "gate": "gate definitions are not supported; use the gates of qelib1.inc",
    "opaque": "opaque gates are not supported; use the gates of qelib1.inc",
    "if": "classically controlled operations (if) are not supported",
    "reset": "reset is not supported",
    "OPENQASM": "OPENQASM may appear only once, as the first statement",
}


class NotCliffordError(AicfError):
    """A gate a stabilizer simulator cannot run: a T-type angle, a non-Clifford gate (ch, ccx, ...)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line, self.reason = line, reason


@dataclass(frozen=True, slots=True, order=True)
class Angle:
    """`pi·π + rational` radians, both parts exact."""

    pi: Fraction = Fraction(0)
    rational: Fraction = Fraction(0)

    def __add__(self, other: "Angle") -> "Angle":
        return Angle(self.pi + other.pi, self.rational + other.rational)

    def __neg__(self) -> "Angle":
        return Angle(-self.pi, -self.rational)

    def __sub__(self, other: "Angle") -> "Angle":
        return self + (-other)

    def scaled(self, factor: Fraction) -> "Angle":
        return Angle(self.pi * factor, self.rational * factor)

    def quarter_turns(self) -> int | None:
        """k when the angle is exactly kπ/2 (k taken mod 4), else None: the Clifford rotation angles."""
        if self.rational != 0:
            return None
        twice = self.pi * 2
        if twice.denominator != 1:
            return None
        return twice.numerator % 4


def _fraction_text(f: Fraction) -> str:
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def format_angle(a: Angle) -> str:
    """An expression `parse_circuit` reads back as exactly `a` (e.g. `3*pi/4`, `-pi/2+1/3`, `0`)."""
    parts: list[str] = []
    if a.pi != 0:
        num, den = a.pi.numerator, a.pi.denominator
        text = "pi" if abs(num) == 1 else f"{abs(num)}*pi"
        if den != 1:
            text += f"/{den}"
        parts.append(("-" if num < 0 else "") + text)
    if a.rational != 0 or not parts:
        text = _fraction_text(abs(a.rational))
        sign = "-" if a.rational < 0 else ("+" if parts else "")
        parts.append(sign + text)
    return "".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Gate:
    name: str
    params: tuple[Angle, ...] = ()
    qubits: tuple[int, ...]  # flat indices: registers in declaration order, bits in index order
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    qubit: int
    clbit: int
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Circuit:
    """A parsed circuit. Qubits and classical bits are flat indices over the registers in declaration order.

    Barriers are not kept (they change nothing this module computes). Measurements are kept apart from the gates:
    no gate may follow a measurement of its qubit, so measuring everything at the end gives the same outcomes.
    A result bitstring lists classical bit 0 first (the reverse of Qiskit's display order).
    """

    n_qubits: int
    n_clbits: int
    qregs: tuple[tuple[str, int], ...]
    cregs: tuple[tuple[str, int], ...]
    ops: tuple[Gate, ...]
    measurements: tuple[Measurement, ...]


# --- tokens -------------------------------------------------------------------------------------------------

_TOKEN_RE: Final = re.compile(
    r"""
    (?P<space>[ \t\r\f\v]+)
  | (?P<newline>\n)
  | (?P<comment>//[^\n]*)
  | (?P<number>(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>"[^"\n]*")
  | (?P<arrow>->)
  | (?P<symbol>==|[;,()\[\]{}+\-*/^])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # number, name, string, arrow, symbol, end
    text: str
    line: int


def _fail(line: int, reason: str) -> RequestError:
    return RequestError("circuit", f"line {line}: {reason}")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    line = 1
    pos = 0
    end = len(text)
    while pos < end:
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise _fail(line, f"unexpected character {text[pos]!r}")
        kind = m.lastgroup or ""
        if kind == "newline":
            line += 1
        elif kind not in ("space", "comment"):
            tokens.append(_Token(kind, m.group(), line))
        pos = m.end()
    tokens.append(_Token("end", "", line))
    return tokens


def _describe(tok: _Token) -> str:
    return "end of input" if tok.kind == "end" else repr(tok.text)


# --- parameter expressions ----------------------------------------------------------------------------------

_FUNCTIONS: Final = frozenset({"sin", "cos", "tan", "exp", "ln", "sqrt"})


def _bounded(a: Angle, line: int) -> Angle:
    for f in (a.pi, a.rational):
        if f.numerator.bit_length() > MAX_FRACTION_BITS or f.denominator.bit_length() > MAX_FRACTION_BITS:
            raise _fail(line, "parameter value too large or too precise")
    return a


def _number(tok: _Token) -> Fraction:
    text = tok.text
    if len(text) > MAX_NUMBER_CHARS:
        raise _fail(tok.line, f"number {text[:20]}... is longer than {MAX_NUMBER_CHARS} characters")
    mantissa, _, exponent = text.lower().partition("e")
    if exponent and abs(int(exponent)) > MAX_EXPONENT:
        raise _fail(tok.line, f"exponent of {text} is outside -{MAX_EXPONENT}..{MAX_EXPONENT}")
    if mantissa.endswith("."):
        mantissa += "0"
    value = Fraction(mantissa)
    if exponent:
        value *= Fraction(10) ** int(exponent)
    return value


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.nesting = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def accept(self, text: str) -> bool:
        tok = self.peek()
        if tok.kind in ("symbol", "arrow") and tok.text == text:
            self.i += 1
            return True
        return False

    def expect(self, text: str, what: str) -> _Token:
        tok = self.peek()
        if tok.kind in ("symbol", "arrow") and tok.text == text:
            self.i += 1
            return tok
        raise _fail(tok.line, f"expected {text!r} {what}, got {_describe(tok)}")

    def expect_name(self, what: str) -> _Token:
        tok = self.peek()
        if tok.kind != "name":
            raise _fail(tok.line, f"expected {what}, got {_describe(tok)}")
        self.i += 1
        return tok

    def expect_int(self, what: str) -> int:
        tok = self.peek()
        if tok.kind != "number" or not tok.text.isdigit():
            raise _fail(tok.line, f"expected {what} (a non-negative integer), got {_describe(tok)}")
        if len(tok.text) > 9:
            raise _fail(tok.line, f"{what} {tok.text[:20]} is too large")
        self.i += 1
        return int(tok.text)

    # expr := term (('+'|'-') term)* ; term := unary (('*'|'/') unary)* ; unary := ('-'|'+') unary | power
    # power := primary ('^' unary)? ; primary := number | pi | '(' expr ')'
    def expression(self) -> Angle:
        value = self.term()
        while True:
            line = self.peek().line
            if self.accept("+"):
                value = _bounded(value + self.term(), line)
            elif self.accept("-"):
                value = _bounded(value - self.term(), line)
            else:
                return value

    def term(self) -> Angle:
        value = self.unary()
        while True:
            line = self.peek().line
            if self.accept("*"):
                value = _bounded(_multiply(value, self.unary(), line), line)
            elif self.accept("/"):
                value = _bounded(_divide(value, self.unary(), line), line)
            else:
                return value

    def unary(self) -> Angle:
        if self.accept("-"):
            return -self.unary()
        if self.accept("+"):
            return self.unary()
        return self.power()

    def power(self) -> Angle:
        base = self.primary()
        line = self.peek().line
        if self.accept("^"):
            return _bounded(_power(base, self.unary(), line), line)
        return base

    def primary(self) -> Angle:
        tok = self.take()
        if tok.kind == "number":
            return _bounded(Angle(rational=_number(tok)), tok.line)
        if tok.kind == "name":
            if tok.text == "pi":
                return Angle(pi=Fraction(1))
            if tok.text in _FUNCTIONS:
                raise _fail(
                    tok.line,
                    f"function {tok.text!r} is not supported: parameters must be exact (rationals and multiples of pi)",
                )
            raise _fail(tok.line, f"unknown identifier {tok.text!r} in a parameter")
        if tok.kind == "symbol" and tok.text == "(":
            self.nesting += 1
            if self.nesting > MAX_NESTING:
                raise _fail(tok.line, f"parameter expression nested deeper than {MAX_NESTING}")
            value = self.expression()
            self.expect(")", "to close '('")
            self.nesting -= 1
            return value
        raise _fail(tok.line, f"expected a parameter value, got {_describe(tok)}")


def _multiply(a: Angle, b: Angle, line: int) -> Angle:
    if a.pi != 0 and b.pi != 0:
        raise _fail(line, "cannot represent a product of two multiples of pi exactly")
    return Angle(a.pi * b.rational + b.pi * a.rational, a.rational * b.rational)


def _divide(a: Angle, b: Angle, line: int) -> Angle:
    if b.pi == 0:
        if b.rational == 0:
            raise _fail(line, "division by zero in a parameter")
        return a.scaled(1 / b.rational)
    if b.rational == 0 and a.rational == 0:
        return Angle(rational=a.pi / b.pi)
    raise _fail(line, "cannot represent a division by a multiple of pi exactly")


def _power(base: Angle, exponent: Angle, line: int) -> Angle:
    if exponent.pi != 0 or exponent.rational.denominator != 1:
        raise _fail(line, "cannot represent a power with a non-integer exponent exactly")
    n = exponent.rational.numerator
    if abs(n) > MAX_EXPONENT:
        raise _fail(line, f"exponent {n} is outside -{MAX_EXPONENT}..{MAX_EXPONENT}")
    if n == 1:
        return base
    if base.pi != 0:
        raise _fail(line, "cannot represent a power of pi exactly")
    if base.rational == 0 and n < 0:
        raise _fail(line, "division by zero in a parameter")
    return Angle(rational=base.rational**n)


# --- statements ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Register:
    name: str
    size: int
    offset: int
    quantum: bool


class _Builder:
    """Mutable state of one parse; `parse_circuit` freezes it into a `Circuit`."""

    def __init__(self) -> None:
        self.registers: dict[str, _Register] = {}
        self.qregs: list[tuple[str, int]] = []
        self.cregs: list[tuple[str, int]] = []
        self.n_qubits = 0
        self.n_clbits = 0
        self.included = False
        self.ops: list[Gate] = []
        self.measurements: list[Measurement] = []
        self.level: list[int] = []  # ASAP layer of the last gate on each qubit
        self.depth = 0
        self.measured: dict[int, int] = {}  # qubit -> line of its measurement
        self.written: set[int] = set()

    def qubit_name(self, q: int) -> str:
        return _bit_name(self.qregs, q)

    def clbit_name(self, c: int) -> str:
        return _bit_name(self.cregs, c)


def _bit_name(regs: Sequence[tuple[str, int]], flat: int) -> str:
    for name, size in regs:
        if flat < size:
            return f"{name}[{flat}]"
        flat -= size
    raise IndexError(flat)


_Arg = tuple[_Register, int | None, int]  # register, index (None: the whole register), line


def _argument(p: _Parser, b: _Builder) -> _Arg:
    tok = p.expect_name("a register")
    reg = b.registers.get(tok.text)
    if reg is None:
        raise _fail(tok.line, f"undeclared register {tok.text!r}")
    index: int | None = None
    if p.accept("["):
        index = p.expect_int("an index")
        p.expect("]", "after the index")
        if index >= reg.size:
            kind = "qreg" if reg.quantum else "creg"
            raise _fail(tok.line, f"index {index} out of range for {kind} {reg.name}[{reg.size}]")
    return reg, index, tok.line


def _arguments(p: _Parser, b: _Builder) -> list[_Arg]:
    args = [_argument(p, b)]
    while p.accept(","):
        args.append(_argument(p, b))
    return args


def _broadcast(args: list[_Arg], line: int, what: str) -> Iterator[tuple[int, ...]]:
    """OpenQASM 2 broadcasting: whole registers of one size apply element-wise; single bits repeat."""
    sized = [(reg.name, reg.size) for reg, index, _ in args if index is None]
    sizes = {size for _, size in sized}
    if len(sizes) > 1:
        (a, na), (c, nc) = next((x, y) for x in sized for y in sized if x[1] != y[1])
        raise _fail(line, f"registers of different sizes in one {what} ({a}[{na}] and {c}[{nc}])")
    count = sizes.pop() if sizes else 1
    for k in range(count):
        yield tuple(reg.offset + (k if index is None else index) for reg, index, _ in args)


def _statement_include(p: _Parser, b: _Builder, tok: _Token) -> None:
    target = p.take()
    if target.kind != "string":
        raise _fail(tok.line, f"expected a file name in quotes after include, got {_describe(target)}")
    if target.text[1:-1] != QELIB1:
        raise _fail(tok.line, f'only "{QELIB1}" can be included, got {target.text}')
    if b.included:
        raise _fail(tok.line, f'"{QELIB1}" is included twice')
    b.included = True
    p.expect(";", "after include")


def _statement_register(p: _Parser, b: _Builder, tok: _Token) -> None:
    quantum = tok.text == "qreg"
    name_tok = p.expect_name("a register name")
    name = name_tok.text
    if not name[0].islower():
        raise _fail(name_tok.line, f"register name {name!r} must start with a lowercase letter")
    if name in b.registers:
        raise _fail(name_tok.line, f"register {name!r} is declared twice")
    p.expect("[", "after the register name")
    size = p.expect_int("a register size")
    p.expect("]", "after the register size")
    p.expect(";", f"after {tok.text} {name}[{size}]")
    if size < 1:
        raise _fail(name_tok.line, f"register {name!r} must have at least 1 bit")
    if quantum:
        if b.n_qubits + size > MAX_QUBITS:
            raise _fail(name_tok.line, f"{b.n_qubits + size} qubits exceed the limit of {MAX_QUBITS}")
        _check_volume(b.n_qubits + size, b.depth, name_tok.line)
        b.registers[name] = _Register(name, size, b.n_qubits, quantum=True)
        b.qregs.append((name, size))
        b.n_qubits += size
        b.level.extend([0] * size)
    else:
        if b.n_clbits + size > MAX_CLBITS:
            raise _fail(name_tok.line, f"{b.n_clbits + size} classical bits exceed the limit of {MAX_CLBITS}")
        b.registers[name] = _Register(name, size, b.n_clbits, quantum=False)
        b.cregs.append((name, size))
        b.n_clbits += size


def _check_volume(n_qubits: int, depth: int, line: int) -> None:
    if n_qubits * depth > MAX_VOLUME:
        raise _fail(line, f"{n_qubits} qubits × depth {depth} exceed the limit of {MAX_VOLUME}")


def _statement_measure(p: _Parser, b: _Builder, tok: _Token) -> None:
    source = _argument(p, b)
    p.expect("->", "in measure")
    target = _argument(p, b)
    p.expect(";", "after measure")
    (qreg, qi, _), (creg, ci, _) = source, target
    if not qreg.quantum:
        raise _fail(tok.line, f"measure reads a qubit, but {qreg.name!r} is a classical register")
    if creg.quantum:
        raise _fail(tok.line, f"measure writes a classical bit, but {creg.name!r} is a quantum register")
    if (qi is None) != (ci is None):
        raise _fail(tok.line, "measure needs both sides indexed or both whole registers")
    for q, c in _broadcast([source, target], tok.line, "measure"):
        if q in b.measured:
            raise _fail(tok.line, f"{b.qubit_name(q)} is measured twice")
        if c in b.written:
            raise _fail(tok.line, f"{b.clbit_name(c)} is written twice")
        b.measured[q] = tok.line
        b.written.add(c)
        b.measurements.append(Measurement(qubit=q, clbit=c, line=tok.line))


def _statement_barrier(p: _Parser, b: _Builder, tok: _Token) -> None:
    for reg, _, line in _arguments(p, b):
        if not reg.quantum:
            raise _fail(line, f"barrier acts on qubits, but {reg.name!r} is a classical register")
    p.expect(";", "after barrier")


def _statement_gate(p: _Parser, b: _Builder, tok: _Token) -> None:
    name = tok.text
    spec = GATES.get(name)
    if spec is None:
        raise _fail(tok.line, f"unknown gate {name!r}")
    if not spec.builtin and not b.included:
        raise _fail(tok.line, f'gate {name!r} needs include "{QELIB1}";')
    params: list[Angle] = []
    if p.accept("(") and not p.accept(")"):
        params.append(p.expression())
        while p.accept(","):
            params.append(p.expression())
        p.expect(")", "after the parameters")
    if len(params) != spec.n_params:
        raise _fail(tok.line, f"gate {name!r} takes {spec.n_params} parameter(s), got {len(params)}")
    args = _arguments(p, b)
    p.expect(";", f"after gate {name!r}")
    if len(args) != spec.n_qubits:
        raise _fail(tok.line, f"gate {name!r} acts on {spec.n_qubits} qubit(s), got {len(args)}")
    for reg, _, line in args:
        if not reg.quantum:
            raise _fail(line, f"gate {name!r} acts on qubits, but {reg.name!r} is a classical register")
    for qubits in _broadcast(args, tok.line, "gate"):
        if len(set(qubits)) != len(qubits):
            twice = next(q for q in qubits if qubits.count(q) > 1)
            raise _fail(tok.line, f"gate {name!r} uses {b.qubit_name(twice)} more than once")
        for q in qubits:
            if q in b.measured:
                raise _fail(tok.line, f"gate {name!r} on {b.qubit_name(q)} after it was measured")
        layer = 1 + max(b.level[q] for q in qubits)
        if layer > MAX_DEPTH:
            raise _fail(tok.line, f"depth exceeds the limit of {MAX_DEPTH}")
        _check_volume(b.n_qubits, layer, tok.line)
        for q in qubits:
            b.level[q] = layer
        b.depth = max(b.depth, layer)
        b.ops.append(Gate(name=name, params=tuple(params), qubits=qubits, line=tok.line))


def _decode(data: bytes, max_bytes: int) -> str:
    if not isinstance(data, bytes):
        raise RequestError("circuit", f"expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise RequestError("circuit", f"{len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _fail(line, f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def _header(p: _Parser) -> None:
    tok = p.take()
    if tok.kind == "end":
        raise _fail(tok.line, "empty circuit: expected 'OPENQASM 2.0;'")
    if tok.kind != "name" or tok.text != "OPENQASM":
        raise _fail(tok.line, f"a circuit must start with 'OPENQASM 2.0;', got {_describe(tok)}")
    version = p.take()
    if version.kind != "number" or version.text != "2.0":
        raise _fail(version.line, f"unsupported OpenQASM version {_describe(version)}: only 2.0 is accepted")
    p.expect(";", "after the OPENQASM version")


def _build(data: bytes, max_bytes: int = MAX_CIRCUIT_BYTES) -> _Builder:
    p = _Parser(_tokenize(_decode(data, max_bytes)))
    _header(p)
    b = _Builder()
    while (tok := p.take()).kind != "end":
        if tok.kind != "name":
            raise _fail(tok.line, f"expected a statement, got {_describe(tok)}")
        if tok.text in _REFUSED:
            raise _fail(tok.line, _REFUSED[tok.text])
        if tok.text == "include":
            _statement_include(p, b, tok)
        elif tok.text in ("qreg", "creg"):
            _statement_register(p, b, tok)
        elif tok.text == "measure":
            _statement_measure(p, b, tok)
        elif tok.text == "barrier":
            _statement_barrier(p, b, tok)
        else:
            _statement_gate(p, b, tok)
    if not b.measurements:
        raise _fail(p.peek().line, "the circuit measures nothing")
    return b


def parse_circuit(data: bytes, *, max_bytes: int = MAX_CIRCUIT_BYTES) -> Circuit:
    """Parse a requester's circuit. Raises RequestError("circuit", "line N: ...") for the first problem found.

    A provider parsing a batch passes max_bytes=MAX_BATCH_CIRCUIT_BYTES: trap circuits of a large job are longer
    than the job (every layer of a trap is full), though within MAX_VOLUME.
    """
    b = _build(data, max_bytes)
    return Circuit(
        n_qubits=b.n_qubits,
        n_clbits=b.n_clbits,
        qregs=tuple(b.qregs),
        cregs=tuple(b.cregs),
        ops=tuple(b.ops),
        measurements=tuple(b.measurements),
    )


def depth(circuit: Circuit) -> int:
    """ASAP layer count of the gates (SPEC §3): each gate sits one layer above the latest gate on its qubits.

    Measurements and barriers are excluded; a barrier does not synchronise its qubits either.
    """
    level = [0] * circuit.n_qubits
    deepest = 0
    for op in circuit.ops:
        layer = 1 + max(level[q] for q in op.qubits)
        for q in op.qubits:
            level[q] = layer
        deepest = max(deepest, layer)
    return deepest


def circuit_depth(data: bytes) -> int:
    """The `CircuitDepth` callback of `validate_request`: parse, then depth. Raises RequestError."""
    return _build(data).depth


def format_circuit(circuit: Circuit) -> str:
    """OpenQASM 2 text that `parse_circuit` reads back as `circuit` (gates first, then measurements)."""
    lines = ["OPENQASM 2.0;", f'include "{QELIB1}";']
    lines += [f"qreg {name}[{size}];" for name, size in circuit.qregs]
    lines += [f"creg {name}[{size}];" for name, size in circuit.cregs]
    qnames = [f"{name}[{i}]" for name, size in circuit.qregs for i in range(size)]
    cnames = [f"{name}[{i}]" for name, size in circuit.cregs for i in range(size)]
    for op in circuit.ops:
        params = f"({','.join(format_angle(a) for a in op.params)})" if op.params else ""
        qubits = ",".join([qnames[q] for q in op.qubits])
        lines.append(f"{op.name}{params} {qubits};")
    for m in circuit.measurements:
        lines.append(f"measure {qnames[m.qubit]} -> {cnames[m.clbit]};")
    return "\n".join(lines) + "\n"


QBATCH_TAG: Final = "aicf/qbatch/v1"  # not a SPEC tag (issue 14): what a QUANTUM_V1 body's circuit_digest commits to


def batch_digest(circuits: Sequence[bytes], shots: Sequence[int]) -> bytes:
    """What a QUANTUM_V1 body's `circuit_digest` commits to (issue 14): the whole batch the provider ran, in batch
    order, `H("aicf/qbatch/v1", [H("aicf/circuit/v1", circuit) …], [shots …])`. The lease names no job circuit,
    so a provider commits to what it was given, and the verifier rebuilds the same batch from the seed."""
    return tagged_hash(QBATCH_TAG, [circuit_digest(c) for c in circuits], list(shots))


# --- Clifford lowering --------------------------------------------------------------------------------------

StimOp = tuple[str, tuple[int, ...]]  # a stim gate name and its targets

_DIRECT: Final[dict[str, str]] = {
    "id": "I",
    "x": "X",
    "y": "Y",
    "z": "Z",
    "h": "H",
    "s": "S",
    "sdg": "S_DAG",
    "sx": "SQRT_X",
    "sxdg": "SQRT_X_DAG",
    "cx": "CX",
    "CX": "CX",
    "cy": "CY",
    "cz": "CZ",
    "swap": "SWAP",
}
_NEVER_CLIFFORD: Final = frozenset({"t", "tdg", "ch", "csx", "ccx", "cswap"})
_RZ_QUARTERS: Final = ("", "S", "Z", "S_DAG")  # Rz(kπ/2) up to a global phase
_RY_QUARTERS: Final = ("", "SQRT_Y", "Y", "SQRT_Y_DAG")  # Ry(kπ/2) up to a global phase
_HALF_PI: Final = Angle(pi=Fraction(1, 2))
_ZERO: Final = Angle()
_HALF: Final = Fraction(1, 2)


def _quarters(a: Angle, name: str, line: int) -> int:
    k = a.quarter_turns()
    if k is None:
        raise NotCliffordError(line, f"gate {name!r} with angle {format_angle(a)} is not a Clifford gate")
    return k


def _u3(theta: Angle, phi: Angle, lam: Angle, q: int, name: str, line: int) -> list[StimOp]:
    """U(θ,φ,λ) = Rz(φ)·Ry(θ)·Rz(λ) up to a global phase: Rz(λ) acts first."""
    out: list[StimOp] = []
    for table, angle in ((_RZ_QUARTERS, lam), (_RY_QUARTERS, theta), (_RZ_QUARTERS, phi)):
        gate = table[_quarters(angle, name, line)]
        if gate:
            out.append((gate, (q,)))
    return out


def _rz(lam: Angle, q: int, name: str, line: int) -> list[StimOp]:
    return _u3(_ZERO, _ZERO, lam, q, name, line)


def _lower(op: Gate) -> list[StimOp]:
    name, p, qs, line = op.name, op.params, op.qubits, op.line
    if name in _DIRECT:
        return [(_DIRECT[name], qs)]
    if name in _NEVER_CLIFFORD:
        raise NotCliffordError(line, f"gate {name!r} is not a Clifford gate")
    if name in ("U", "u3", "u"):
        return _u3(p[0], p[1], p[2], qs[0], name, line)
    if name == "u2":
        return _u3(_HALF_PI, p[0], p[1], qs[0], name, line)
    if name in ("u1", "p", "rz"):
        return _rz(p[0], qs[0], name, line)
    if name == "rx":
        return _u3(p[0], -_HALF_PI, _HALF_PI, qs[0], name, line)
    if name == "ry":
        return _u3(p[0], _ZERO, _ZERO, qs[0], name, line)
    a, b = qs[0], qs[1]
    cx: StimOp = ("CX", (a, b))
    if name in ("cu1", "cp"):  # qelib1.inc: u1(λ/2) a; cx a,b; u1(-λ/2) b; cx a,b; u1(λ/2) b;
        half = p[0].scaled(_HALF)
        return [*_rz(half, a, name, line), cx, *_rz(-half, b, name, line), cx, *_rz(half, b, name, line)]
    if name == "crz":  # u1(λ/2) b; cx a,b; u1(-λ/2) b; cx a,b;
        half = p[0].scaled(_HALF)
        return [*_rz(half, b, name, line), cx, *_rz(-half, b, name, line), cx]
    if name == "crx":  # u1(π/2) b; cx a,b; u3(-λ/2,0,0) b; cx a,b; u3(λ/2,-π/2,0) b;
        half = p[0].scaled(_HALF)
        return [
            *_rz(_HALF_PI, b, name, line),
            cx,
            *_u3(-half, _ZERO, _ZERO, b, name, line),
            cx,
            *_u3(half, -_HALF_PI, _ZERO, b, name, line),
        ]
    if name == "cry":  # ry(λ/2) b; cx a,b; ry(-λ/2) b; cx a,b;
        half = p[0].scaled(_HALF)
        return [*_u3(half, _ZERO, _ZERO, b, name, line), cx, *_u3(-half, _ZERO, _ZERO, b, name, line), cx]
    if name == "cu3":  # u1((λ+φ)/2) a; u1((λ-φ)/2) b; cx a,b; u3(-θ/2,0,-(φ+λ)/2) b; cx a,b; u3(θ/2,φ,0) b;
        theta, phi, lam = p
        return [
            *_rz((lam + phi).scaled(_HALF), a, name, line),
            *_rz((lam - phi).scaled(_HALF), b, name, line),
            cx,
            *_u3(-theta.scaled(_HALF), _ZERO, -(phi + lam).scaled(_HALF), b, name, line),
            cx,
            *_u3(theta.scaled(_HALF), phi, _ZERO, b, name, line),
        ]
    if name == "rzz":  # cx a,b; u1(θ) b; cx a,b;
        return [cx, *_rz(p[0], b, name, line), cx]
    if name == "rxx":  # h a; h b; rzz(θ) a,b; h a; h b;
        hh: list[StimOp] = [("H", (a,)), ("H", (b,))]
        return [*hh, cx, *_rz(p[0], b, name, line), cx, *hh]
    raise NotCliffordError(line, f"gate {name!r} has no Clifford lowering")


def clifford_ops(circuit: Circuit) -> tuple[StimOp, ...]:
    """The gates as stim operations, exact up to a global phase. Raises NotCliffordError at the first gate a
    stabilizer simulator cannot run (T-type angles, rationals that are not multiples of π/2, ch, ccx, ...)."""
    return tuple(stim_op for op in circuit.ops for stim_op in _lower(op))
