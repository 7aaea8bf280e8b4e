"""The composition root: the only module that picks a backend, a chain view, a clock and wires them.

`open_store(url)`: `memory:`, `sqlite:///path/to/file.db` (default ./var/aicf.db), `postgresql://…`.
"""

import logging
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol

import typer

from aicf.chain.devnet import Devnet, DevnetConfig
from aicf.chain.scenario import apply_step, plan
from aicf.core.params import Params
from aicf.core.qasm import circuit_depth
from aicf.core.requests import CircuitDepth
from aicf.service.ingest import IngestStep, ingest_available
from aicf.store.interface import Store, StoreUnavailableError
from aicf.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from aicf.store.postgres import PostgresStore
    from aicf.system import System

DEFAULT_DB = "sqlite:///var/aicf.db"
DB_ENV = "AICF_DB"


def default_db_url() -> str:
    return os.environ.get(DB_ENV, DEFAULT_DB)


class _Versioned(Store, Protocol):
    def schema_version(self) -> int: ...
    def migrate(self, target: int | None = None) -> int: ...


def open_store(url: str | None = None, *, migrate_to: int | None = None, must_exist: bool = False) -> Store:
    """Open (and migrate) the store a URL names. Raises StoreUnavailableError with what to do.

    With `must_exist` (the read-only commands: `db verify`, `db digest`) a database that does not exist or
    holds no aicf schema is refused instead of being created."""
    url = url or default_db_url()
    if url in ("memory:", "memory://"):
        if must_exist:
            raise StoreUnavailableError("memory: is a new empty database", "name the database to check with --db")
        return SqliteStore(":memory:", migrate_to=migrate_to)  # a fresh database: the same SQL as a file
    if url.startswith("sqlite://"):
        # sqlite:///relative/path.db and sqlite:////absolute/path.db, as SQLAlchemy spells them
        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url.removeprefix("sqlite://")
        path, _, query = path.partition("?")
        read_only = query == "mode=ro"  # sqlite:///path.db?mode=ro opens the file read-only
        path = path or "var/aicf.db"
        if must_exist and not Path(path).is_file():
            raise StoreUnavailableError(
                f"no database at {Path(path).resolve()}", "check the path (--db sqlite:///path/to/aicf.db)"
            )
        store: _Versioned = SqliteStore(path, read_only=read_only, migrate_to=0 if must_exist else migrate_to)
    elif url.startswith(("postgresql://", "postgres://")):
        store = _open_postgres(url, 0 if must_exist else migrate_to)
    else:
        raise StoreUnavailableError(
            f"unknown database URL {url!r}", "use memory:, sqlite:///path/to/file.db or postgresql://user@host:port/db"
        )
    if must_exist:
        found = store.schema_version()
        if found == 0:
            store.close()
            raise StoreUnavailableError(f"{url} holds no aicf database", "point --db at the database aicf up used")
        store.migrate(None)
    return store
    raise StoreUnavailableError(
        f"unknown database URL {url!r}", "use memory:, sqlite:///path/to/file.db or postgresql://user@host:port/db"
    )


def _open_postgres(url: str, migrate_to: int | None) -> "PostgresStore":
    try:
        from aicf.store.postgres import PostgresStore
    except ImportError as exc:  # the optional extra is missing
        raise StoreUnavailableError(
            f"PostgreSQL support is not installed ({exc})", "pip install 'aicf[postgres]'"
        ) from exc
    return PostgresStore(url, migrate_to=migrate_to)


def depth_function() -> CircuitDepth:
    return circuit_depth


def open_devnet(seed: int = 0, interval_s: int = 10, miners: int = 3, genesis_time: int = 1_700_000_000) -> Devnet:
    return Devnet(DevnetConfig(seed=seed, interval_s=interval_s, miners=miners, genesis_time=genesis_time))


def _read_progress(path: Path | None) -> int:
    if path is None or not path.exists():
        return 0
    text = path.read_text(encoding="utf-8").strip()
    return int(text) if text else 0


def _write_progress(path: Path | None, done: int) -> None:
    """Atomically: a killed process leaves either the old count or the new one, never a torn file."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(str(done))
        f.flush()
        os.fsync(f.fileno())
    Path(tmp).replace(path)


def run_scenario(
    store: Store,
    params: Params,
    *,
    seed: int,
    steps: int,
    progress: Path | None = None,
    on_step: Callable[[int, list[IngestStep]], None] | None = None,
) -> Devnet:
    """Drive a devnet through the seeded scenario and ingest after every step.

    With `progress`, the number of steps done is kept in that file: a restarted run rebuilds the devnet to
    that point (it is deterministic) and goes on, while the store resumes from what it committed.
    """
    depth = depth_function()
    script = plan(seed, steps)
    done = _read_progress(progress)
    devnet = open_devnet(seed)
    for step in script[:done]:
        apply_step(devnet, step, params)
    for index in range(done, len(script)):
        apply_step(devnet, script[index], params)
        _write_progress(progress, index + 1)
        ingested = ingest_available(store, devnet, params, depth)
        if on_step is not None:
            on_step(index, ingested)
    ingest_available(store, devnet, params, depth)
    return devnet


def wire_cli(app: typer.Typer) -> None:
    """Add the store and devnet commands to the `aicf` CLI (called by aicf.transports.cli)."""
    from aicf.transports.cli_db import build_db_app
    from aicf.transports.cli_devnet import build_devnet_app

    app.add_typer(build_db_app(open_store, default_db_url), name="db")
    app.add_typer(build_devnet_app(open_store, default_db_url, run_scenario), name="devnet")
    from aicf.transports.cli_chain import build_chain_app

    app.add_typer(build_chain_app(_deploy_to_node), name="chain")  # aicf chain deploy --rpc-url URL
    app.command("up")(up_command)


def _deploy_to_node(**kwargs: object) -> dict[str, object]:
    """web3 is imported only when a deployment runs: importing it raises the interpreter's recursion limit to
    100,000 (eth_account does), which must not happen in a process that parses outside JSON (`aicf up`)."""
    from aicf.chain.deploy import deploy_to_node

    return deploy_to_node(**kwargs)  # type: ignore[arg-type]


def up_command(
    db: Annotated[str | None, typer.Option("--db", help="memory:, sqlite:///path.db or postgresql://…")] = None,
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
) -> None:
    """Start the whole system: devnet, coordinator, API, dashboard, reference providers and a demo load."""
    from rich.console import Console

    from aicf.core.errors import AicfError
    from aicf.core.params import params_from_toml
    from aicf.system import devnet_params, run_up

    console = Console(highlight=False, soft_wrap=True)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        params = params_from_toml(params_file.read_text(encoding="utf-8")) if params_file else devnet_params()
        var.mkdir(parents=True, exist_ok=True)
        # The embedded devnet keeps its chain in the same database, so a second `aicf up` on it resumes the chain,
        # the queue, the balances and the epochs where the first one stopped.
        url = db or os.environ.get(DB_ENV) or f"sqlite:///{var / 'aicf.db'}"
        store = open_store(url)
    except (AicfError, OSError) as exc:
        console.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    console.print(f"database: {url}  (check it any time with: aicf db verify --db {url})", markup=False)
    try:
        run_up(
            store,
            params,
            host=host,
            port=port,
            var=var,
            providers=providers,
            load=load,
            duration_s=duration,
            say=lambda text: console.print(text, markup=False),
            start_providers=_start_reference_providers,
            serve_models=None if models is None else [m for m in models.split(",") if m and m != "none"],
        )
    except AicfError as exc:
        console.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None


def _start_reference_providers(system: "System", url: str, models: "Sequence[str]", stop: "threading.Event") -> None:
    """The reference providers, as threads speaking JSON-RPC to the API like any outside provider."""
    from aicf.system import start_reference_providers

    start_reference_providers(system, url, models, stop)
