"""The `aicf` command line. Exit 0 on success, 1 on an AicfError or failed check, 2 on bad usage."""

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from aicf.bootstrap.scenario import claim_payout, deploy_to_node, evm_requester_ops, run_scenario
from aicf.bootstrap.stores import DB_ENV, default_db_url, open_store
from aicf.bootstrap.up import UpConfig, start_up
from aicf.core.conformance import VectorError, parse_vector_file, run_case
from aicf.core.errors import AicfError
from aicf.core.params import Params, params_from_toml
from aicf.transports.cli_chain import build_chain_app
from aicf.transports.cli_db import build_db_app
from aicf.transports.cli_devnet import build_devnet_app
from aicf.transports.cli_operator import allowlist_app, grant_app, params_app, status_command, tier_app, traps_app
from aicf.transports.cli_ops import register_ops
from aicf.transports.cli_provider import provider_app
from aicf.transports.cli_request import register_evm_ops, request_app
from aicf.transports.cli_roots import devices_app, policy_app, roots_app
from aicf.transports.demo import worked_example

app = typer.Typer(help="AI Compute Fund coordinator.", no_args_is_help=True, add_completion=False)
app.add_typer(build_db_app(open_store, default_db_url), name="db")
app.add_typer(build_devnet_app(open_store, default_db_url, run_scenario), name="devnet")
app.add_typer(build_chain_app(deploy_to_node, claim_payout), name="chain")  # aicf chain deploy / claim
register_evm_ops(evm_requester_ops())  # aicf request on an EVM chain: the requester's own Ethereum transactions
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


@app.command()
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


@app.command()
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


@app.command("up")
def up_command(
    db: Annotated[
        str | None, typer.Option("--db", help=f"memory:, sqlite:///path.db or postgresql://… (${DB_ENV})")
    ] = None,
    host: Annotated[str, typer.Option(help="Where the API and dashboard listen")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port")] = 8000,
    var: Annotated[Path, typer.Option(help="Folder for the database, keys and logs")] = Path("var"),
    params_file: Annotated[Path | None, typer.Option("--params", help="A TOML params file")] = None,
    providers: Annotated[bool, typer.Option(help="Run the reference providers")] = True,
    load: Annotated[bool, typer.Option(help="Run requesters sending a demo load")] = True,
    duration: Annotated[int | None, typer.Option(help="Stop after this many seconds")] = None,
    models: Annotated[
        str | None,
        typer.Option(help="Real models the reference providers serve: a comma list, or 'none' (default: all)"),
    ] = None,
    chain: Annotated[
        str,
        typer.Option(help="devnet (embedded), anvil (start a local anvil and deploy), or an EVM node's RPC URL"),
    ] = "devnet",
    contracts: Annotated[
        Path | None, typer.Option(help="With --chain URL: the deployment file of `aicf chain deploy`")
    ] = None,
) -> None:
    """Start the whole system: devnet, coordinator, API, dashboard, reference providers and a demo load."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = UpConfig(
        db_url=db,
        host=host,
        port=port,
        var=var,
        params_file=params_file,
        providers=providers,
        load=load,
        duration_s=duration,
        serve_models=None if models is None else [m for m in models.split(",") if m and m != "none"],
        chain=chain,
        contracts=contracts,
    )
    try:
        start_up(config, lambda text: out.print(text, markup=False))
    except AicfError as exc:  # a start-up check failed: one line, nothing left behind
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None


@app.command("serve")
def serve_command(
    db: Annotated[str | None, typer.Option("--db", help=f"postgresql://… shared by every replica (${DB_ENV})")] = None,
    host: Annotated[str, typer.Option(help="Where the API listens")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port")] = 8000,
    var: Annotated[
        Path, typer.Option(help="Folder of operator.key, trap.secret, operator.token: the same on every replica")
    ] = Path("var"),
    params_file: Annotated[Path | None, typer.Option("--params", help="A TOML params file")] = None,
    chain: Annotated[
        str, typer.Option(help="The chain: devnet (embedded, kept in the database) or an EVM node's RPC URL")
    ] = "devnet",
    contracts: Annotated[
        Path | None, typer.Option(help="With --chain URL: the deployment file of `aicf chain deploy`")
    ] = None,
    duration: Annotated[int | None, typer.Option(help="Stop after this many seconds")] = None,
    models: Annotated[
        str | None, typer.Option(help="Real models providers may serve: a comma list, or 'none' (default: all)")
    ] = None,
) -> None:
    """Run one coordinator replica (API, ingest, leasing, proofs, settlement) on a shared PostgreSQL: no
    providers, no demo load. Several on one database are one coordinator (docs/DEPLOY.md)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = UpConfig(
        db_url=db,
        host=host,
        port=port,
        var=var,
        params_file=params_file,
        providers=False,
        load=False,
        duration_s=duration,
        serve_models=None if models is None else [m for m in models.split(",") if m and m != "none"],
        replica=True,
        chain=chain,
        contracts=contracts,
    )
    try:
        start_up(config, lambda text: out.print(text, markup=False))
    except AicfError as exc:  # a start-up check failed: one line, nothing left behind
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None


def main() -> None:
    try:
        app()
    except AicfError as exc:  # a use-case refused: say why, exit 1
        err.print(f"error: {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
