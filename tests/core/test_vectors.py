"""The SPEC §14 vectors, case by case, and the conformance runner's handling of bad vectors.

Every case of every file in tests/vectors/ is one test (id `<kind>/<name>`), run through the same
`run_case` the `aicf conformance` command uses. The runner's own behaviour (first differing field,
clear messages for malformed input, exit codes) is tested on vectors written to a tmp dir.
"""

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aicf.bootstrap.cli import app
from aicf.core.conformance import KINDS, VectorError, parse_vector_file, run_case
from aicf.core.params import Params

VECTOR_DIR = Path(__file__).resolve().parent.parent / "vectors"
VECTOR_FILES = sorted(VECTOR_DIR.glob("*.json"))


def _all_cases() -> list[Any]:
    out = []
    for path in VECTOR_FILES:
        data = json.loads(path.read_text(encoding="utf-8"))
        for case in data["cases"]:
            out.append(pytest.param(data["kind"], case, id=f"{data['kind']}/{case['name']}"))
    return out


ALL_CASES = _all_cases()


@pytest.mark.parametrize(("kind", "case"), ALL_CASES)
def test_vector_case_passes(kind: str, case: dict[str, Any]) -> None:
    result = run_case(kind, case, Params.default())
    assert result.passed, result.detail
    assert result.name == case["name"]


def _spec_14_kinds() -> set[str]:
    """The kinds docs/SPEC.md §14's table lists (first column)."""
    spec = (VECTOR_DIR.parent.parent / "docs" / "SPEC.md").read_text(encoding="utf-8")
    section = spec[spec.index("## 14. Conformance vectors") : spec.index("## 15.")]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))


def test_every_kind_of_spec_14_has_vectors() -> None:
    kinds = {json.loads(p.read_text(encoding="utf-8"))["kind"] for p in VECTOR_FILES}
    spec_kinds = _spec_14_kinds()
    assert {"task_id", "settlement", "settlement_postings", "slash_outcome"} <= spec_kinds
    assert kinds == spec_kinds
    assert set(KINDS) == spec_kinds


def test_case_names_are_unique_within_the_suite() -> None:
    names = [p.id for p in ALL_CASES]
    assert len(names) == len(set(names))


def _case(kind: str, name: str) -> dict[str, Any]:
    data = json.loads((VECTOR_DIR / f"{kind}.json").read_text(encoding="utf-8"))
    return next(c for c in data["cases"] if c["name"] == name)


def _write(tmp_path: Path, name: str, doc: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


# ---- the runner reports the first differing field -------------------------------------------------------


def test_runner_names_the_first_differing_field_of_a_wrong_expect() -> None:
    case = _case("reward_split", "reward_split-5")
    case["expect"]["miner"] += 1
    case["expect"]["fund"] += 1
    result = run_case("reward_split", case, Params.default())
    assert not result.passed
    assert result.detail.startswith("expect.miner:")
    assert str(case["expect"]["miner"]) in result.detail
    assert "20844" in result.detail  # the actual value


def test_runner_names_the_differing_field_inside_a_list_of_payouts() -> None:
    case = _case("settlement", "settlement-0")
    assert len(case["expect"]["payouts"]) >= 2
    case["expect"]["payouts"][1]["charged"] += 7
    result = run_case("settlement", case, Params.default())
    assert not result.passed
    assert result.detail.startswith("expect.payouts[1].charged:")


def test_runner_reports_a_missing_payout_as_a_length_difference() -> None:
    case = _case("settlement", "settlement-0")
    case["expect"]["payouts"].pop()
    result = run_case("settlement", case, Params.default())
    assert not result.passed
    assert "expect.payouts" in result.detail
    assert "entries" in result.detail


def test_runner_compares_hex_without_regard_to_case() -> None:
    case = _case("task_id", "task_id-0")
    case["expect"]["task_id"] = case["expect"]["task_id"].upper().replace("0X", "0x")
    assert run_case("task_id", case, Params.default()).passed


def test_runner_does_not_take_true_for_the_integer_one() -> None:
    case = {"name": "bool", "input": {"shots": 1, "depth": 1, "quality_bps": 10}, "expect": {"units_mu": True}}
    result = run_case("quantum_units", case, Params.default())
    assert not result.passed
    assert result.detail.startswith("expect.units_mu:")


# ---- malformed vectors get one clear message naming the field ------------------------------------------


def test_runner_rejects_an_unknown_kind_naming_it() -> None:
    with pytest.raises(VectorError, match="unknown kind 'tsak_id'"):
        parse_vector_file({"kind": "tsak_id", "cases": []})


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ([], "file"),
        ({"cases": []}, "kind"),
        ({"kind": "merkle"}, "cases"),
        ({"kind": "merkle", "cases": {}}, "cases"),
        ({"kind": "merkle", "cases": [3]}, "cases[0]"),
    ],
)
def test_runner_rejects_a_file_not_of_the_spec_shape(doc: object, field: str) -> None:
    with pytest.raises(VectorError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_vector_file(doc)


@pytest.mark.parametrize(
    ("bad_hex", "reason"),
    [("0xzz", "not valid hex"), ("abcd", "0x-prefixed"), ("0xabc", "odd number"), (12, "expected a 0x hex")],
)
def test_runner_rejects_wrong_hex_naming_the_field(bad_hex: object, reason: str) -> None:
    case = _case("task_id", "task_id-0")
    case["input"]["tx_hash"] = bad_hex
    result = run_case("task_id", case, Params.default())
    assert not result.passed
    assert "input.tx_hash" in result.detail
    assert reason in result.detail


def test_runner_rejects_wrong_hex_in_a_list_naming_the_index() -> None:
    case = {"name": "m", "input": {"leaves": ["0x00", "0xg0"]}, "expect": {"root": "0x00"}}
    result = run_case("merkle", case, Params.default())
    assert not result.passed
    assert "input.leaves[1]" in result.detail


@pytest.mark.parametrize(
    ("kind", "name", "field"),
    [
        ("reward_split", "reward_split-5", "units_mu"),
        ("reward_split", "reward_split-5", "price_bps"),
        ("quantum_units", "quantum_units-0", "shots"),
        ("ai_units", "ai_units-0", "runtime_ms"),
        ("settlement", "settlement-0", "treasury"),
        ("price_clamp", "price_clamp-0", "demand_mu"),
        ("slash_outcome", "active-missed-lease-jails-one-hour", "bonded"),
        ("slash_outcome", "active-missed-lease-jails-one-hour", "now"),
    ],
)
def test_runner_rejects_a_negative_amount_naming_the_field(kind: str, name: str, field: str) -> None:
    case = _case(kind, name)
    case["input"][field] = -1
    result = run_case(kind, case, Params.default())
    assert not result.passed
    assert f"input.{field}" in result.detail
    assert ">= 0" in result.detail


def test_runner_rejects_a_negative_amount_inside_a_settlement_job() -> None:
    case = _case("settlement", "settlement-0")
    case["input"]["jobs"][2]["units_mu"] = -5
    result = run_case("settlement", case, Params.default())
    assert not result.passed
    assert "input.jobs[2].units_mu" in result.detail


def test_runner_rejects_a_negative_amount_inside_a_payout_naming_it() -> None:
    case = _case("settlement_postings", "reward-charge-and-refund")
    case["input"]["payouts"][0]["escrow"] = -1
    result = run_case("settlement_postings", case, Params.default())
    assert not result.passed
    assert "input.payouts[0].escrow" in result.detail


def test_runner_fails_a_postings_case_whose_charge_exceeds_its_escrow() -> None:
    case = _case("settlement_postings", "reward-charge-and-refund")
    case["input"]["payouts"][0]["escrow"] = 1
    result = run_case("settlement_postings", case, Params.default())
    assert not result.passed
    assert "exceeds its escrow of 1" in result.detail


@pytest.mark.parametrize(("field", "value"), [("status", "RETIRED"), ("reason", "LATE")])
def test_runner_rejects_an_unknown_status_or_reason_in_a_slash_case(field: str, value: str) -> None:
    case = _case("slash_outcome", "active-missed-lease-jails-one-hour")
    case["input"][field] = value
    result = run_case("slash_outcome", case, Params.default())
    assert not result.passed
    assert f"input.{field}: unknown" in result.detail


def test_runner_rejects_an_unknown_model_naming_the_field() -> None:
    case = _case("ai_units", "ai_units-0")
    case["input"]["model"] = "gpt-17"
    result = run_case("ai_units", case, Params.default())
    assert not result.passed
    assert "input.model" in result.detail
    assert "gpt-17" in result.detail


@pytest.mark.parametrize(("value", "type_name"), [(True, "bool"), (1.5, "float"), ("7", "str")])
def test_runner_rejects_a_non_integer_amount_naming_the_field(value: object, type_name: str) -> None:
    case = _case("quantum_units", "quantum_units-0")
    case["input"]["shots"] = value
    result = run_case("quantum_units", case, Params.default())
    assert not result.passed
    assert "input.shots" in result.detail
    assert type_name in result.detail


def test_runner_rejects_a_missing_input_field_naming_it() -> None:
    case = _case("price_clamp", "price_clamp-0")
    del case["input"]["gamma_units"]
    result = run_case("price_clamp", case, Params.default())
    assert not result.passed
    assert "gamma_units" in result.detail


def test_ai_units_vector_applies_no_max_runtime_cap() -> None:
    # SPEC §14: ai_units uses runtime_ms as given; 52_377_920 ms is far above max_runtime_ms.
    assert run_case("ai_units", _case("ai_units", "ai_units-1"), Params.default()).passed


# ---- the `aicf conformance` command ---------------------------------------------------------------------


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["conformance", *args])


def test_cli_prints_one_line_per_case_and_a_summary_line() -> None:
    result = _invoke(*map(str, VECTOR_FILES))
    lines = result.stdout.strip().splitlines()
    assert result.exit_code == 0, result.output
    assert len(lines) == len(ALL_CASES) + 1
    assert lines[-1] == f"{len(ALL_CASES)} passed, 0 failed"
    for line, param in zip(lines, ALL_CASES, strict=False):
        assert param.values[1]["name"] in line


def test_cli_exits_non_zero_on_a_failing_case_and_names_the_field(tmp_path: Path) -> None:
    doc = json.loads((VECTOR_DIR / "quantum_units.json").read_text(encoding="utf-8"))
    doc["cases"][2]["expect"]["units_mu"] += 1
    result = _invoke(str(_write(tmp_path, "bad.json", doc)))
    lines = result.stdout.strip().splitlines()
    assert result.exit_code != 0
    assert lines[-1] == f"{len(doc['cases']) - 1} passed, 1 failed"
    failing = [line for line in lines if doc["cases"][2]["name"] in line]
    assert len(failing) == 1
    assert "expect.units_mu" in failing[0]


def test_cli_counts_cases_across_files_and_fails_on_any(tmp_path: Path) -> None:
    good = VECTOR_DIR / "merkle.json"
    bad = _write(tmp_path, "bad.json", {"kind": "merkle", "cases": [{"name": "x", "input": {"leaves": []}}]})
    result = _invoke(str(good), str(bad))
    assert result.exit_code != 0
    assert result.stdout.strip().splitlines()[-1] == "6 passed, 1 failed"


def test_cli_exits_non_zero_on_an_unreadable_file(tmp_path: Path) -> None:
    result = _invoke(str(tmp_path / "missing.json"))
    assert result.exit_code != 0
    assert "missing.json" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "0 passed, 1 failed"


def test_cli_exits_non_zero_on_a_directory_given_as_a_file(tmp_path: Path) -> None:
    result = _invoke(str(tmp_path))
    assert result.exit_code != 0


def test_cli_exits_non_zero_on_malformed_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"kind": "merkle", "cases": [', encoding="utf-8")
    result = _invoke(str(path))
    assert result.exit_code != 0
    assert "not valid JSON" in result.stdout


def test_cli_exits_non_zero_on_an_unknown_kind_naming_it(tmp_path: Path) -> None:
    result = _invoke(str(_write(tmp_path, "k.json", {"kind": "frobnicate", "cases": []})))
    assert result.exit_code != 0
    assert "frobnicate" in result.stdout


def test_cli_params_with_a_typo_key_exits_2_naming_the_key(tmp_path: Path) -> None:
    params = tmp_path / "params.toml"
    params.write_text("gama_units = 5\n", encoding="utf-8")
    result = _invoke("--params", str(params), str(VECTOR_DIR / "merkle.json"))
    assert result.exit_code == 2
    assert "gama_units" in result.stderr
    assert "gamma_units" in result.stderr  # the suggestion


def test_cli_params_file_changes_the_rule_it_feeds(tmp_path: Path) -> None:
    # A weight change moves ai_units: the default vectors must now fail, which shows --params is applied.
    params = tmp_path / "params.toml"
    params.write_text('[model_weights]\n"llama3-8b" = 2000\n"clip-vit-b" = 300\n', encoding="utf-8")
    result = _invoke("--params", str(params), str(VECTOR_DIR / "ai_units.json"))
    assert result.exit_code == 1
    assert result.stdout.strip().splitlines()[-1] == "3 passed, 3 failed"  # the three llama3-8b cases move


@pytest.mark.slow
def test_installed_aicf_command_runs_the_vectors() -> None:
    exe = Path(sys.executable).parent / "aicf"
    if not exe.exists():
        pytest.skip("the aicf console script is not installed in this environment")
    done = subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        [str(exe), "conformance", *map(str, VECTOR_FILES)], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"{len(ALL_CASES)} passed, 0 failed"


def test_runner_reports_an_unstorable_charge_instead_of_crashing() -> None:
    case = _case("settlement", "settlement-0")
    case["input"]["jobs"][0]["fee_per_unit"] = 2**62
    result = run_case("settlement", case, Params.default())
    assert not result.passed
    assert "charged" in result.detail


JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
        st.sampled_from(["0x", "0x00", "0x" + "ab" * 32, "0x" + "ab" * 20, "ai", "quantum", "llama3-8b"]),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            out.extend(_paths(item, (*prefix, n)))
    return out


@pytest.mark.slow
@settings(max_examples=examples(300))
@given(st.sampled_from(ALL_CASES), st.data(), JSON_VALUES)
def test_runner_never_crashes_on_a_mangled_input_field(param: Any, data: st.DataObject, junk: object) -> None:
    # SPEC §14 / issue 3: bad input gets one clear message, never a traceback. Replace one input field
    # (at any depth) by an arbitrary JSON value; run_case must return a result, not raise.
    kind, case = param.values
    case = copy.deepcopy(case)
    path = data.draw(st.sampled_from(_paths(case["input"])))
    target = case["input"]
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = junk
    result = run_case(kind, case, Params.default())
    assert isinstance(result.passed, bool)
