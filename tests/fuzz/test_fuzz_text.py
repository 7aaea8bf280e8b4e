"""Issue 15 item 4: the text decoders of outside input, fuzzed: OpenQASM circuits (aicf.core.qasm) and params files
(aicf.core.params). Each returns a value or raises its specific error (RequestError naming the circuit's line,
ParamsError naming the key); nothing else escapes."""

import tomllib

from hypothesis import given
from hypothesis import strategies as st

from aicf.core.errors import ParamsError, RequestError
from aicf.core.params import Params, params_from_toml
from aicf.core.qasm import circuit_depth, format_circuit, parse_circuit
from fuzz.scaffold import fuzz_settings, outcome

FUZZ = fuzz_settings(full=3000, fast=100)

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


@FUZZ
@given(data=circuits)
def test_a_circuit_parses_or_is_refused_with_its_line(data: bytes) -> None:
    circuit = outcome(lambda: parse_circuit(data), RequestError)
    if isinstance(circuit, RequestError):
        assert circuit.field == "circuit"
        assert circuit.reason
        return
    assert circuit.measurements
    again = parse_circuit(format_circuit(circuit).encode("utf-8"))  # what was accepted prints and reads back
    assert (again.n_qubits, len(again.ops), again.measurements) == (
        circuit.n_qubits,
        len(circuit.ops),
        circuit.measurements,
    )
    assert circuit_depth(data) >= 0


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


@FUZZ
@given(text=toml_docs)
def test_a_params_file_loads_or_is_refused_naming_the_key(text: str) -> None:
    params = outcome(lambda: params_from_toml(text), ParamsError)
    if isinstance(params, ParamsError):
        assert params.key
        assert params.reason
        return
    assert isinstance(params, Params)
    tomllib.loads(text)  # what was accepted is TOML
