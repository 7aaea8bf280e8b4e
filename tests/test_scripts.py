"""scripts/conformance: the shipped vectors, then every folder named in AICF_EXTRA_VECTORS (SPEC §14)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aicf.core.merkle import merkle_root

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # each test starts `aicf conformance` in a subprocess


def run_conformance(extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AICF_EXTRA_VECTORS": extra,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
    }
    bash = shutil.which("bash")
    assert bash is not None, "scripts/conformance needs bash"
    return subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [bash, str(ROOT / "scripts" / "conformance")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def write_merkle_vector(folder: Path, root: str) -> None:
    folder.mkdir()
    case = {"name": "empty-list", "input": {"leaves": []}, "expect": {"root": root}}
    (folder / "merkle.json").write_text(json.dumps({"kind": "merkle", "cases": [case]}))


def test_every_extra_vector_folder_runs_after_the_shipped_vectors(tmp_path: Path) -> None:
    empty_root = "0x" + merkle_root([]).hex()
    write_merkle_vector(tmp_path / "a", empty_root)
    write_merkle_vector(tmp_path / "b", empty_root)

    done = run_conformance(f"{tmp_path / 'a'} {tmp_path / 'b'}")

    assert done.returncode == 0, done.stderr
    assert done.stdout.count("1 passed, 0 failed") == 2
    assert done.stdout.index("(tests/vectors)") < done.stdout.index(f"({tmp_path / 'a'})")


def test_a_failing_case_in_an_extra_folder_fails_the_run(tmp_path: Path) -> None:
    write_merkle_vector(tmp_path / "held-out", "0x" + "00" * 32)

    done = run_conformance(str(tmp_path / "held-out"))

    assert done.returncode != 0
    assert "0 passed, 1 failed" in done.stdout


def test_a_named_folder_without_vectors_fails_the_run_naming_it(tmp_path: Path) -> None:
    done = run_conformance(str(tmp_path / "missing"))

    assert done.returncode == 1
    assert f"{tmp_path / 'missing'}: no *.json vector files there" in done.stderr
