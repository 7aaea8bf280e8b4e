"""The `aicf` command's entry point lives in the composition root (aicf/bootstrap/cli.py): transports/cli.py
builds the app from the functions the bootstrap hands in, and imports nothing above it (issue 16)."""

import runpy
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import aicf
from aicf.bootstrap.cli import app
from aicf.core.errors import AicfError
from aicf.store.interface import Store
from aicf.transports.cli import build_app

PACKAGE = Path(aicf.__file__).parent
# The order `aicf --help` lists them in: commands first, then groups, each in the order they are registered.
COMMANDS = ["providers", "jobs", "job", "epoch", "report", "status", "conformance", "demo", "up", "serve"]
GROUPS = ["db", "devnet", "chain", "provider", "request", "audit", "roots", "policy", "devices", "params", "tier",
          "allowlist", "traps", "grant"]  # fmt: skip


def test_the_aicf_command_registers_every_command_and_group_in_the_order_help_lists_them() -> None:
    group = typer.main.get_group(app)
    names = list(group.commands)
    assert [n for n in names if not isinstance(group.commands[n], typer.core.TyperGroup)] == COMMANDS
    assert [n for n in names if isinstance(group.commands[n], typer.core.TyperGroup)] == GROUPS


def test_build_app_uses_the_store_opener_and_default_url_it_is_handed() -> None:
    asked: list[tuple[str | None, bool]] = []

    class NoStoreError(AicfError):
        pass

    def open_store(url: str | None = None, *, must_exist: bool = False) -> Store:
        asked.append((url, must_exist))
        raise NoStoreError(f"no database at {url}")

    def never(**kwargs: object) -> dict[str, Any]:
        raise AssertionError("not called by `aicf db verify`")

    built = build_app(
        open_store=open_store,
        default_db_url=lambda: "sqlite:///handed-in.db",
        run_scenario=never,
        deploy_to_node=never,
        claim_payout=never,
        evm_requester_ops={},
    )
    done = CliRunner().invoke(built, ["db", "verify"])
    assert done.exit_code == 1
    assert asked == [("sqlite:///handed-in.db", True)]
    assert "no database at sqlite:///handed-in.db" in done.output
    assert "up" not in typer.main.get_group(built).commands  # `up` and `serve` are the bootstrap's to add


def test_the_old_module_path_refuses_with_the_new_command_instead_of_doing_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(PACKAGE / "transports" / "cli.py"), run_name="__main__")  # python -m aicf.transports.cli
    assert exited.value.code == 2
    assert "python -m aicf" in capsys.readouterr().err


def test_importing_aicf_main_runs_nothing() -> None:
    namespace = runpy.run_path(str(PACKAGE / "__main__.py"), run_name="aicf.__main__")  # as a package walk imports it
    assert callable(namespace["main"])
