"""The `aicf` command line's entry point (`aicf`, `python -m aicf`): the transport-level commands of
aicf/transports/cli*.py, wired here to the store opener, the devnet scenario and the chain operations, plus `up` and
`serve`, which start the composed system. Exit 0 on success, 1 on an AicfError or failed check, 2 on bad usage."""

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from aicf.bootstrap.scenario import claim_payout, deploy_to_node, evm_requester_ops, run_scenario
from aicf.bootstrap.stores import DB_ENV, default_db_url, open_store
from aicf.bootstrap.up import UpConfig, start_up
from aicf.core.errors import AicfError
from aicf.transports.cli import build_app, err, out

app = build_app(
    open_store=open_store,
    default_db_url=default_db_url,
    run_scenario=run_scenario,
    deploy_to_node=deploy_to_node,
    claim_payout=claim_payout,
    evm_requester_ops=evm_requester_ops(),
)


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
