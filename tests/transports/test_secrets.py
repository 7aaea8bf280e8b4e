"""The operator token and key files: 0600 on disk, taken from a file or the environment, never an argument,
never printed (docs/SECURITY.md, "Transport and secrets")."""

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aicf.bootstrap.cli import app as cli_app
from aicf.bootstrap.up import UpConfig, start_up
from aicf.core.errors import AicfError
from aicf.provider.agent import load_or_create_key as load_or_create_provider_key
from aicf.transports.key_files import load_or_create_key
from aicf.transports.secret_files import (
    OPERATOR_TOKEN_ENV,
    OperatorTokenError,
    SecretFileError,
    create_private_file,
    load_or_create_operator_token,
    operator_token_for_client,
    read_secret_file,
)

TOKEN = "a-test-operator-token-0123456789"  # noqa: S105 - a test fixture


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    """The most common umask (022), which leaves new files world-readable unless the code says otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---- aicf up's token ------------------------------------------------------------------------------------------------


def test_the_token_file_is_created_0600_with_a_long_random_token_and_kept_across_runs(tmp_path: Path) -> None:
    first = load_or_create_operator_token(tmp_path, {})
    path = tmp_path / "operator.token"
    assert mode(path) == 0o600
    assert first.source == str(path)
    assert len(first.value) >= 40
    assert path.read_text(encoding="utf-8").strip() == first.value
    assert load_or_create_operator_token(tmp_path, {}) == first  # a restart keeps it: clients keep working
    (tmp_path / "other").mkdir()
    assert load_or_create_operator_token(tmp_path / "other", {}).value != first.value  # random, not derived
    assert first.value not in repr(first)


def test_the_environment_wins_over_the_file_and_creates_nothing(tmp_path: Path) -> None:
    found = load_or_create_operator_token(tmp_path, {OPERATOR_TOKEN_ENV: f"  {TOKEN}\n"})
    assert (found.value, found.source) == (TOKEN, "$AICF_OPERATOR_TOKEN")
    assert not (tmp_path / "operator.token").exists()


def test_a_short_token_in_the_environment_is_refused_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(OperatorTokenError, match=r"AICF_OPERATOR_TOKEN: .* at least 16 characters, got 6"):
        load_or_create_operator_token(tmp_path, {OPERATOR_TOKEN_ENV: "secret"})


def test_a_token_file_others_may_read_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "operator.token"
    path.write_text(TOKEN, encoding="utf-8")
    path.chmod(0o644)
    with pytest.raises(SecretFileError, match=r"group or others may access it \(mode 0644\); run `chmod 600 "):
        load_or_create_operator_token(tmp_path, {})
    with pytest.raises(SecretFileError, match="mode 0644"):
        operator_token_for_client(path, {})
    assert path.read_text(encoding="utf-8") == TOKEN  # nothing rewritten


@pytest.mark.parametrize(("content", "says"), [("", "the file is empty"), (None, "no such file")])
def test_an_empty_or_missing_token_file_is_refused(tmp_path: Path, content: str | None, says: str) -> None:
    path = tmp_path / "t"
    if content is not None:
        create_private_file(path, content)
    with pytest.raises(SecretFileError, match=says):
        read_secret_file(path)


def test_a_private_file_is_never_written_through_an_existing_file_or_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep", encoding="utf-8")
    link = tmp_path / "operator.token"
    link.symlink_to(target)
    with pytest.raises(FileExistsError):
        create_private_file(link, "x")
    with pytest.raises(FileExistsError):
        create_private_file(target, "x")
    assert target.read_text(encoding="utf-8") == "keep"


def test_a_client_takes_the_file_first_then_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "t"
    create_private_file(path, "from-the-file\n")
    assert operator_token_for_client(path, {OPERATOR_TOKEN_ENV: "from-env"}) == "from-the-file"
    assert operator_token_for_client(None, {OPERATOR_TOKEN_ENV: " from-env "}) == "from-env"
    assert operator_token_for_client(None, {OPERATOR_TOKEN_ENV: ""}) is None
    assert operator_token_for_client(None, {}) is None


def test_secret_errors_are_aicf_errors_so_the_clis_report_them() -> None:
    assert issubclass(SecretFileError, AicfError)
    assert issubclass(OperatorTokenError, AicfError)


# ---- key files ------------------------------------------------------------------------------------------------------


def test_the_operator_key_and_a_provider_key_are_created_0600(tmp_path: Path) -> None:
    load_or_create_key(tmp_path / "var" / "operator.key")
    load_or_create_provider_key(tmp_path / "p.key")
    assert mode(tmp_path / "var" / "operator.key") == 0o600
    assert mode(tmp_path / "p.key") == 0o600


# ---- the CLIs never take the token as an argument ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["provider", "run", "--kind", "quantum", "--key-file", "k", "--operator-token", TOKEN, "--fund", "5"],
        ["devnet", "reorg", "--depth", "1", "--token", TOKEN],
        ["devnet", "reorg", "--depth", "1", "--operator-token", TOKEN],
        ["roots", "add", "--vendor", "amd", "--name", "x", "--der-file", "pyproject.toml", "--activation-height",
         "1", "--token", TOKEN],
        ["policy", "set", "--kind", "sgx", "--activation-height", "1", "--operator-token", TOKEN],
    ],
    ids=["provider-run", "reorg-token", "reorg-operator-token", "roots-add", "policy-set"],
)  # fmt: skip
def test_an_operator_token_given_as_an_argument_is_refused_with_exit_2_and_the_way_to_pass_it(
    args: list[str],
) -> None:
    result = CliRunner().invoke(cli_app, [*args, "--url", "http://127.0.0.1:9"], env={OPERATOR_TOKEN_ENV: None})
    assert result.exit_code == 2, result.output
    assert "no longer taken as an argument" in result.stderr
    assert "AICF_OPERATOR_TOKEN" in result.stderr
    assert "--operator-token-file" in result.stderr


def test_a_token_file_others_may_read_stops_the_cli_with_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "operator.token"
    path.write_text(TOKEN, encoding="utf-8")
    path.chmod(0o644)
    result = CliRunner().invoke(
        cli_app,
        ["devnet", "reorg", "--depth", "1", "--operator-token-file", str(path), "--url", "http://127.0.0.1:9"],
        env={OPERATOR_TOKEN_ENV: None},
    )
    assert result.exit_code == 1
    assert "chmod 600" in result.stderr


def test_the_cli_says_how_to_pass_the_token_when_none_is_given() -> None:
    result = CliRunner().invoke(
        cli_app, ["devnet", "reorg", "--depth", "1", "--url", "http://127.0.0.1:9"], env={OPERATOR_TOKEN_ENV: None}
    )
    assert result.exit_code == 2
    assert "needs the operator token: set AICF_OPERATOR_TOKEN, or pass --operator-token-file" in result.stderr


# ---- aicf up: the banner names the file, never the token ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_aicf_up_never_prints_the_token_and_names_the_0600_file_it_is_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(OPERATOR_TOKEN_ENV, raising=False)
    said: list[str] = []
    var = tmp_path / "var"
    config = UpConfig(db_url="memory:", port=free_port(), var=var, providers=False, load=False, duration_s=0)
    system = start_up(config, said.append)
    token_file = var / "operator.token"
    assert mode(token_file) == 0o600
    assert token_file.read_text(encoding="utf-8").strip() == system.operator_token
    assert not any(system.operator_token in line for line in said), said
    assert any(f"operator token in {token_file}" in line for line in said), said
