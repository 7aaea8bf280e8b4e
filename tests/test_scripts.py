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


# ---- scripts/torch-args: a CPU-only torch wherever the index would give the CUDA build (issue 17) --------------


def torch_args(tmp_path: Path, mode: str, resolved: list[str]) -> subprocess.CompletedProcess[str]:
    """scripts/torch-args with AICF_TORCH=mode, reading a pip report that resolved these package names."""
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"install": [{"metadata": {"name": n, "version": "1"}} for n in resolved]}, indent=2))
    bash = shutil.which("bash")
    assert bash is not None
    env = {**os.environ, "AICF_TORCH": mode, "AICF_TORCH_REPORT": str(report)}
    env.pop("AICF_TORCH_CPU_INDEX", None)
    return subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [bash, str(ROOT / "scripts" / "torch-args")], capture_output=True, text=True, env=env, timeout=30, check=False
    )


PIN = next(
    line.strip().strip('",') for line in (ROOT / "pyproject.toml").read_text().splitlines() if '"torch==' in line
)
CPU = f"--index-url https://download.pytorch.org/whl/cpu {PIN}\n"


def test_torch_comes_from_the_cpu_index_when_the_configured_index_would_bring_cuda(tmp_path: Path) -> None:
    done = torch_args(tmp_path, "auto", ["torch", "nvidia-cublas", "triton", "sympy"])
    assert (done.returncode, done.stdout) == (0, CPU)


def test_torch_comes_from_the_configured_index_when_it_already_serves_a_cpu_build(tmp_path: Path) -> None:
    done = torch_args(tmp_path, "auto", ["torch", "sympy", "filelock"])
    assert (done.returncode, done.stdout) == (0, "")


def test_aicf_torch_cpu_always_asks_the_cpu_index_and_index_never(tmp_path: Path) -> None:
    assert torch_args(tmp_path, "cpu", ["torch"]).stdout == CPU
    assert torch_args(tmp_path, "index", ["torch", "nvidia-cublas"]).stdout == ""


def test_an_unknown_aicf_torch_mode_is_refused_by_name(tmp_path: Path) -> None:
    done = torch_args(tmp_path, "gpu", ["torch"])
    assert done.returncode == 2
    assert done.stderr.strip() == "AICF_TORCH must be auto, cpu or index, not 'gpu'"
