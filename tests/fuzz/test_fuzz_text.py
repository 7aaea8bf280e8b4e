"""Issue 15 item 4: the text decoders of outside input, fuzzed: OpenQASM circuits (aicf.core.qasm) and params files
(aicf.core.params). Each returns a value or raises its specific error (RequestError naming the circuit's line,
ParamsError naming the key); nothing else escapes."""

import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aicf.core.errors import ParamsError, RequestError
from aicf.core.params import Params, params_from_toml
from aicf.core.qasm import circuit_depth, format_circuit, parse_circuit

FAST = settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
LONG = settings(max_examples=3000, deadline=None, database=None, suppress_health_check=list(HealthCheck))

HEADER = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'
WORDS = ["OPENQASM", "2.0", "include", '"qelib1.inc"', "qreg", "creg", "q", "c", "[", "]", "[2]", "[0]", "[1]",
         "[99999999999]", "(", ")", ",", ";", "->", "h", "cx", "x", "s", "sdg", "u3", "u1", "rz", "measure", "barrier",
         "gate", "opaque", "if", "==", "reset", "pi", "pi/2", "-pi", "*", "/", "^", "+", "-", "1e308", "0.5", "2",
         "sin", "sqrt", "ln", "\n", " ", "//", "{", "}", "\x00", "é"]  # fmt: skip

token_soup = st.lists(st.sampled_from(WORDS), max_size=60).map(" ".join)
statements = st.lists(
    st.sampled_from(
        [
            "qreg q[2];",
            "creg c[2];",
            "h q[0];",
            "cx q[0],q[1];",
            "cx q,q;",
            "u3(pi/2, -pi, pi^2) q[1];",
            "rz(1e308*1e308) q[0];",
            "rz(pi/0) q[0];",
            "measure q -> c;",
            "measure q[0] -> c[1];",
            "barrier q;",
            "gate g a { h a; }",
            "g q[0];",
            "qreg r[100000];",
            "creg d[0];",
            "x q[5];",
            "if (c==1) x q[0];",
        ]
    ),
    max_size=12,
).map(lambda xs: HEADER + "\n".join(xs) + "\n")
circuits = (
    st.binary(max_size=300)
    | token_soup.map(lambda s: s.encode("utf-8"))
    | st.builds(lambda s: (HEADER + s).encode("utf-8"), token_soup)
    | statements.map(lambda s: s.encode("utf-8"))
)


def _check_circuit(data: bytes) -> None:
    try:
        circuit = parse_circuit(data)
    except RequestError as exc:
        refused: RequestError | None = exc
    else:
        refused = None
    if refused is not None:
        assert refused.field == "circuit"
        assert refused.reason
        return
    assert circuit.measurements
    again = parse_circuit(format_circuit(circuit).encode("utf-8"))  # what was accepted prints and reads back
    assert (again.n_qubits, len(again.ops), again.measurements) == (
        circuit.n_qubits,
        len(circuit.ops),
        circuit.measurements,
    )
    assert circuit_depth(data) >= 0


@FAST
@given(data=circuits)
def test_a_circuit_parses_or_is_refused_with_its_line(data: bytes) -> None:
    _check_circuit(data)


@pytest.mark.slow
@LONG
@given(data=circuits)
def test_circuit_parser_long_run(data: bytes) -> None:
    _check_circuit(data)


KEYS = [*Params.__dataclass_fields__, "params", "nope", "model_weights", "slash_bps", "jail_s"]
toml_scalars = st.integers(-(2**70), 2**70).map(str) | st.sampled_from(
    [
        "true",
        "false",
        "1.5",
        "nan",
        "inf",
        '"text"',
        "[]",
        "[1, 2]",
        "[[300, 11500]]",
        "[[1, 2], [3]]",
        "{}",
        "{a = 1}",
        "{llama3-8b = -1}",
        "1979-05-27",
        "0x10",
        "1_000",
    ]
)
toml_lines = st.tuples(st.sampled_from(KEYS), toml_scalars).map(lambda kv: f"{kv[0]} = {kv[1]}")
toml_docs = (
    st.lists(toml_lines, max_size=8).map("\n".join)
    | st.builds(
        lambda a, b: f"{a}\n[params]\n{b}",
        st.lists(toml_lines, max_size=3).map("\n".join),
        st.lists(toml_lines, max_size=3).map("\n".join),
    )
    | st.builds(
        lambda t, b: f"[{t}]\n{b}",
        st.sampled_from(["model_weights", "slash_bps", "jail_s", "params", "x"]),
        st.lists(toml_lines, max_size=4).map("\n".join),
    )
    | st.text(max_size=80)
)


def _check_params(text: str) -> None:
    try:
        params = params_from_toml(text)
    except ParamsError as exc:
        refused: ParamsError | None = exc
    else:
        refused = None
    if refused is not None:
        assert refused.key
        assert refused.reason
        return
    assert isinstance(params, Params)
    tomllib.loads(text)  # what was accepted is TOML


@FAST
@given(text=toml_docs)
def test_a_params_file_loads_or_is_refused_naming_the_key(text: str) -> None:
    _check_params(text)


@pytest.mark.slow
@LONG
@given(text=toml_docs)
def test_params_parser_long_run(text: str) -> None:
    _check_params(text)
