"""The `aicf` command line's transport-level commands, built by `build_app` from what the composition root hands in.

The entry point (`main`, `aicf up`, `aicf serve`) is aicf/bootstrap/cli.py: it passes the store opener, the
devnet scenario and the chain operations in here, so no import runs from transports up to the bootstrap.
Exit 0 on success, 1 on an AicfError or failed check, 2 on bad usage."""

import json
import sys
from collections.abc import Mapping
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from aicf.core.conformance import VectorError, parse_vector_file, run_case
from aicf.core.errors import AicfError
from aicf.core.params import Params, params_from_toml
from aicf.service.ports import DefaultUrl, StoreOpener
from aicf.transports.cli_chain import ClaimFn, DeployFn, build_chain_app
from aicf.transports.cli_db import build_db_app
from aicf.transports.cli_devnet import ScenarioRunner, build_devnet_app
from aicf.transports.cli_operator import allowlist_app, grant_app, params_app, status_command, tier_app, traps_app
from aicf.transports.cli_ops import register_ops
from aicf.transports.cli_provider import provider_app
from aicf.transports.cli_request import EvmOp, register_evm_ops, request_app
from aicf.transports.cli_roots import devices_app, policy_app, roots_app
from aicf.transports.demo import worked_example

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def load_params(path: Path | None) -> Params:
    """SPEC defaults, or a TOML params file laid over them. Exits 2 with the offending key on a bad file."""
    if path is None:
        return Params.default()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        err.print(f"error: cannot read params file {path}: {exc.strerror}")
        raise typer.Exit(2) from None
    try:
        return params_from_toml(text)
    except AicfError as exc:
        err.print(f"error: {path}: {exc}")
        raise typer.Exit(2) from None


ParamsOption = typer.Option(None, "--params", help="A TOML params file (keys it omits keep SPEC's defaults).")
VectorFiles = typer.Argument(..., help="Vector files of SPEC §14: {kind, cases: [{name, input, expect}]}")


def conformance(
    files: list[Path] = VectorFiles,
    params_file: Path | None = ParamsOption,
) -> None:
    """Run conformance vectors: one line per case, then `N passed, N failed`."""
    params = load_params(params_file)
    passed = failed = 0
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            kind, cases = parse_vector_file(data)
        except OSError as exc:
            out.print(f"FAIL {path}: cannot read: {exc.strerror or exc}", markup=False)
            failed += 1
            continue
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            out.print(f"FAIL {path}: not valid JSON: {exc}", markup=False)
            failed += 1
            continue
        except VectorError as exc:
            out.print(f"FAIL {path}: {exc}", markup=False)
            failed += 1
            continue
        for index, case in enumerate(cases):
            result = run_case(kind, case, params, index)
            if result.passed:
                passed += 1
                out.print(f"ok   {kind}/{result.name}", markup=False)
            else:
                failed += 1
                out.print(f"FAIL {kind}/{result.name}: {result.detail}", markup=False)
    out.print(f"{passed} passed, {failed} failed", markup=False)
    if failed:
        raise typer.Exit(1)


def demo(params_file: Path | None = ParamsOption) -> None:
    """Run the worked example of docs/DESIGN.md §10 through the core and print every step."""
    params = load_params(params_file)
    for title, rows in worked_example(params):
        table = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key, value in rows:
            table.add_row(key, value)
        out.print(table)
        out.print()


def build_app(
    *,
    open_store: StoreOpener,
    default_db_url: DefaultUrl,
    run_scenario: ScenarioRunner,
    deploy_to_node: DeployFn,
    claim_payout: ClaimFn,
    evm_requester_ops: Mapping[str, EvmOp],
) -> typer.Typer:
    """The `aicf` app with every command that needs no bootstrap of its own; the composition root hands in the
    store opener, the devnet scenario, the chain deployment and claim and the EVM requester's operations, and adds
    `up` and `serve` after these (the order here is the order `aicf --help` lists)."""
    app = typer.Typer(help="AI Compute Fund coordinator.", no_args_is_help=True, add_completion=False)
    app.add_typer(build_db_app(open_store, default_db_url), name="db")
    app.add_typer(build_devnet_app(open_store, default_db_url, run_scenario), name="devnet")
    app.add_typer(build_chain_app(deploy_to_node, claim_payout), name="chain")  # aicf chain deploy / claim
    register_evm_ops(evm_requester_ops)  # aicf request on an EVM chain: the requester's own Ethereum transactions
    app.add_typer(provider_app, name="provider")
    app.add_typer(request_app, name="request")  # aicf request ai|quantum|deposit|balance|cancel|status|result
    register_ops(app)  # aicf providers, jobs, job, epoch, audit payout, devnet reorg (over JSON-RPC)
    app.add_typer(roots_app, name="roots")  # aicf roots list|add|rotate
    app.add_typer(policy_app, name="policy")  # aicf policy show|set
    app.add_typer(devices_app, name="devices")  # aicf devices pin|list
    app.add_typer(params_app, name="params")  # aicf params set KEY=VALUE… | --file F  (operator transactions)
    app.add_typer(tier_app, name="tier")  # aicf tier set ADDR N
    app.add_typer(allowlist_app, name="allowlist")  # aicf allowlist add|remove PID
    app.add_typer(traps_app, name="traps")  # aicf traps fund AMOUNT [--to ADDR]
    app.add_typer(grant_app, name="grant")  # aicf grant set ADDR ALLOWANCE
    app.command("status")(status_command)  # head, epoch, params version, pending and applied operator transactions
    app.command()(conformance)
    app.command()(demo)
    return app


if __name__ == "__main__":  # the old `python -m aicf.transports.cli`: the command is wired in the bootstrap now
    err.print("error: run `aicf` or `python -m aicf` (aicf/bootstrap/cli.py); aicf.transports.cli is not a command")
    sys.exit(2)
