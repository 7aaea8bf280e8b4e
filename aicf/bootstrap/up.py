"""`aicf up`: start-up checks first, then the whole system in one process on its embedded defaults (issue 7, 17).

The checks run before anything is created, in this order, each failing with one line and a non-zero exit:
1. the params file parses;
2. the database URL has a known form;
3. the API port is bound (a port in use fails here, within a second, before any file exists);
4. the database opens (PostgreSQL not answering and a database that does not exist are told apart);
5. the real models load, one progress line each, before anything reports ready.
Whatever a failed start created (the var folder, a new SQLite file) is removed again. The reference providers
and the demo load come from aicf.devtools: `aicf up`'s embedded defaults are the one place the product starts
them (aicf/devtools/__init__.py).
"""

import errno
import logging
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from aicf.bootstrap.adapters import quiet_model_loading, start_threads
from aicf.bootstrap.stores import DB_ENV, check_url, open_store, sqlite_path
from aicf.core.errors import AicfError
from aicf.core.jobs import JobStatus
from aicf.core.params import Params, params_from_toml
from aicf.service import reads
from aicf.store.interface import Store, read_transaction

if TYPE_CHECKING:  # the system is imported once the start-up checks passed: a failed check answers at once
    from aicf.bootstrap.evm import EvmBackend
    from aicf.bootstrap.evm_up import ChainPlan
    from aicf.bootstrap.system import System
    from aicf.provider.models import ModelRunner

DEFAULT_MODELS = ("minilm-l6-v2", "smollm2-135m")

log = logging.getLogger("aicf.up")


@dataclass(frozen=True, kw_only=True)
class UpConfig:
    """What `aicf up` was asked for. `db_url` None: $AICF_DB, else sqlite:///<var>/aicf.db (the embedded devnet
    keeps its chain in the same database, so a second `aicf up` on it resumes where the first one stopped).
    `serve_models` None: both real models."""

    db_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    var: Path = Path("var")
    params_file: Path | None = None
    providers: bool = True
    load: bool = True
    duration_s: int | None = None
    serve_models: Sequence[str] | None = None
    replica: bool = False  # `aicf serve`: PostgreSQL only, the models loaded though no provider runs here
    chain: str = "devnet"  # "devnet", "anvil" (a local anvil, deployed on), or an EVM node's RPC URL
    contracts: Path | None = None  # with an RPC URL: the deployment file to follow


class StartupError(AicfError):
    """`aicf up` cannot start; the message is the one line the operator reads."""


class ChainMismatchError(AicfError):
    """The store was filled from another chain than the one this run would feed it."""


def jobs_summary(store: Store) -> str:
    with read_transaction(store) as tx:
        counts = tx.job_counts()
    return ", ".join(f"{s.value.lower()} {counts.get(s, 0)}" for s in JobStatus if counts.get(s, 0))


def devnet_params() -> Params:
    """The params `aicf up` runs with unless given a file: aicf/devnet.toml over SPEC's defaults."""
    return params_from_toml((files("aicf") / "devnet.toml").read_text(encoding="utf-8"))


def load_params(path: Path | None) -> Params:
    """aicf/devnet.toml's params, or a TOML params file laid over SPEC's defaults (check 1)."""
    if path is None:
        return devnet_params()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StartupError(f"cannot read the params file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise StartupError(f"the params file {path} is not UTF-8 text: {exc.reason}") from None
    try:
        return params_from_toml(text)
    except AicfError as exc:
        raise StartupError(f"the params file {path}: {exc}") from None


def bind_api(host: str, port: int) -> socket.socket:
    """The API's listening socket, bound before anything else starts (check 3)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"cannot listen on {host}:{port}: the address is in use (another `aicf up`?); stop it or pass --port"
            ) from None
        reason = exc.strerror or str(exc)
        raise StartupError(f"cannot listen on {host}:{port}: {reason}; check --host and --port") from None


def load_models(
    models: Sequence[str],
    say: Callable[[str], None],
    clock: Callable[[], float],
    runner_for: "Callable[[str], ModelRunner] | None" = None,
) -> dict[str, bytes]:
    """Load each real model whose package is installed, one line each, and return its digest (the registry pins
    what providers must run). A model whose package is missing is not served, and its line says so (check 5)."""
    quiet_model_loading()  # before the model modules import tqdm
    from aicf.provider.models import ModelUnavailableError, runner

    out: dict[str, bytes] = {}
    for model in models:
        started = clock()
        try:
            found = (runner_for or runner)(model)
            found.load()
            out[model] = found.model_digest()
        except ModelUnavailableError as exc:  # a missing package: the model is not served, and we say so
            say(f"model {model}: not available ({exc}); it will not be served")
            continue
        say(f"model {model}: loaded in {clock() - started:.1f} s")
    return out


def _first_missing(path: Path) -> Path | None:
    """The outermost of `path` and its parents that does not exist yet (what creating `path` would create)."""
    missing = None
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing = candidate
    return missing


class _Created:
    """What a start is about to create (the var folder, a new SQLite file and its folders), so that a failed
    start removes it again and leaves nothing behind."""

    def __init__(self, var: Path, db_file: Path | None) -> None:
        self.paths = [p for p in (_first_missing(var), None if db_file is None else _first_missing(db_file)) if p]

    def remove(self) -> None:
        for path in self.paths:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)


def start_up(
    config: UpConfig, say: Callable[[str], None], *, runner_for: "Callable[[str], ModelRunner] | None" = None
) -> "System":
    """`aicf up`: the checks of this module's docstring, then everything until Ctrl-C, SIGTERM or `duration_s`.
    Raises StartupError (or the store's StoreUnavailableError) with one line, having removed what it created.
    `runner_for` picks the model runners (default: aicf.provider.models.runner, the real models)."""
    params = load_params(config.params_file)  # 1
    url = config.db_url or os.environ.get(DB_ENV) or f"sqlite:///{config.var / 'aicf.db'}"
    check_url(url)  # 2
    plan = check_chain(config)  # 2b: an EVM chain that cannot be followed fails here, before anything exists
    if config.replica and not url.startswith(("postgresql://", "postgres://")):
        raise StartupError(
            f"aicf serve needs PostgreSQL (--db postgresql://user@host:port/db), not {url!r}: its replicas share one "
            "database; for one process on SQLite run `aicf up --no-providers --no-load`"
        )
    if config.replica and plan is not None and plan.anvil is not None:
        raise StartupError(
            "aicf serve follows a node its replicas share: --chain URL --contracts FILE (or the devnet); "
            "`--chain anvil` is for `aicf up`"
        )
    sock = bind_api(config.host, config.port)  # 3
    created = _Created(config.var, sqlite_path(url))
    try:
        config.var.mkdir(parents=True, exist_ok=True)
        store = open_store(url)  # 4
    except BaseException:
        sock.close()
        created.remove()
        raise
    say(f"database: {url}  (check it any time with: aicf db verify --db {url})")
    try:
        system, stop = launch(store, params, config, sock=sock, say=say, runner_for=runner_for, chain_plan=plan)
    except BaseException:
        sock.close()
        store.close()
        created.remove()
        raise
    report_until_stopped(system, config.duration_s, say)
    stop()
    return system


def launch(
    store: Store,
    params: Params,
    config: UpConfig,
    *,
    sock: socket.socket,
    say: Callable[[str], None],
    runner_for: "Callable[[str], ModelRunner] | None" = None,
    chain_plan: "ChainPlan | None" = None,
) -> "tuple[System, Callable[[], None]]":
    """Load the models, build the system on `store`, serve the API on `sock` and start the coordinator, the
    reference providers and the demo load; print where to look. Returns the system and how to stop it."""
    wanted = DEFAULT_MODELS if config.serve_models is None else tuple(config.serve_models)
    models = [m for m in wanted if m in params.model_weights]
    digests = load_models(models, say, time.monotonic, runner_for) if _with_models(config) else {}  # 5
    if chain_plan is None:
        return _launch(store, params, config, digests, sock=sock, say=say, backend=None)
    from aicf.bootstrap.evm_up import open_chain

    backend = open_chain(chain_plan, config.var, store, params, say)
    try:
        return _launch(store, params, config, digests, sock=sock, say=say, backend=backend)
    except BaseException:
        backend.close()
        raise


def _with_models(config: UpConfig) -> bool:
    """Whether the run loads models: for its providers, its demo load, or (a replica) the providers elsewhere."""
    return config.providers or config.load or config.replica


def check_chain(config: UpConfig) -> "ChainPlan | None":
    """None for the embedded devnet; else what `--chain` names, checked without creating anything."""
    if config.chain == "devnet":
        if config.contracts is not None:
            raise StartupError("--contracts goes with --chain URL (an EVM node), not the embedded devnet")
        return None
    from aicf.bootstrap.evm_up import ChainStartError
    from aicf.bootstrap.evm_up import check_chain as check_evm

    try:
        return check_evm(config.chain, config.contracts)
    except ChainStartError as exc:
        raise StartupError(str(exc)) from None


def _launch(
    store: Store,
    params: Params,
    config: UpConfig,
    digests: dict[str, bytes],
    *,
    sock: socket.socket,
    say: Callable[[str], None],
    backend: "EvmBackend | None",
) -> "tuple[System, Callable[[], None]]":
    import uvicorn

    from aicf.bootstrap.system import SystemConfig, build_system
    from aicf.devtools.demo import DemoRequesters  # aicf up's embedded demo (aicf/devtools/__init__.py)
    from aicf.devtools.providers import start_reference_providers

    if backend is None:
        system = build_system(store, params, SystemConfig(var=config.var, model_digests=digests))
    else:  # an EVM chain: operator transactions and AI traps go through the contract (docs/EVM.md)
        system_config = SystemConfig(var=config.var, model_digests=digests)
        system = build_system(store, params, system_config, chain=backend.with_operator_key)
    with store.transaction() as tx:
        stored_genesis = tx.block_at(0)
    genesis = system.chain.view.block_at(0)
    if stored_genesis is not None and genesis is not None and stored_genesis.hash != genesis.hash:
        raise ChainMismatchError(
            f"this database was filled from another chain than the {system.chain.kind} chain this run follows (for "
            "example by `aicf devnet run`, or a fresh anvil): start `aicf up` on another database (--db) or an "
            "empty one"
        )
    host, port = config.host, sock.getsockname()[1]
    url = f"http://{host}:{port}"
    server = uvicorn.Server(uvicorn.Config(system.app, host=host, port=port, log_level="warning", lifespan="on"))
    threads = start_threads([("aicf-api", lambda: server.run([sock])), ("aicf-coordinator", system.run_loop)])
    ready = threading.Event()
    for _ in range(200):
        if server.started:
            ready.set()
            break
        system.stop.wait(0.05)
    if not ready.is_set():
        system.stop.set()
        raise StartupError(f"the API did not start on {url} within 10 s")
    served = sorted(digests)
    provider_ids = start_reference_providers(system, url, served, system.stop) if config.providers else []
    if backend is not None and (config.providers or config.load):  # not for a replica: it pays and stakes
        _evm_demo(system, backend, provider_ids, served, config.load)
    elif config.load:
        demo = DemoRequesters(system=system, models=served)
        start_threads([("aicf-requesters", lambda: demo.run(system.stop))])
    resumed = system.chain.head_height()
    what = "aicf serve (one coordinator replica; no providers, no demo load)" if config.replica else "aicf is up"
    say(f"{what}: dashboard {url}/dashboard/  JSON-RPC {url}/rpc  WebSocket {url.replace('http', 'ws')}/ws")
    say(f"point the CLI at it: export AICF_URL={url}   (or pass --url {url}); try: aicf request --help")
    if backend is not None:
        say(f"chain: EVM node {backend.rpc_url} (chain id {backend.chain_id}), Aicf at {backend.deployment.aicf}")
        say(f"contracts: {backend.deployment_file}  coordinator role {backend.writer_key.address}")
    elif resumed > 1:
        say(f"resumed the devnet chain {system.devnet.chain_id} at height {resumed} from the database")
    say(f"metrics {url}/metrics  OpenRPC {url}/openrpc.json  operator token in {system.operator_token_source}")
    why_none = "install the models extra" if _with_models(config) else "no providers in this run"
    say(f"models served: {', '.join(served) or f'none ({why_none})'}; epoch every {params.epoch_seconds} s")

    def stop() -> None:
        system.stop.set()
        server.should_exit = True
        for t in threads:
            t.join(timeout=10)
        system.chain.close()

    return system, stop


def _evm_demo(
    system: "System", backend: "EvmBackend", provider_ids: Sequence[bytes], models: Sequence[str], load: bool
) -> None:
    """The demo on an EVM node: the treasury funded once, the reference providers staked on chain from anvil
    dev accounts (their shares are paid there), requesters enqueueing through the contract."""
    from web3 import Web3

    from aicf.chain.deploy import contract
    from aicf.devtools.evm_demo import EvmDemoRequesters, approve_fund, fund_treasury, stake_providers

    w3 = backend.chain.w3
    accounts = [str(a) for a in w3.eth.accounts]
    if len(accounts) < 10:  # a node that signs for no one (not anvil): the operator stakes and funds by hand
        return
    token, aicf = contract(w3, "AicfTestToken", backend.deployment.token), backend.aicf
    fund_treasury(w3, token, aicf, accounts[0])
    if Web3.to_checksum_address(backend.deployment.fund) in accounts:  # the fund pays trap escrow on chain
        approve_fund(w3, token, aicf, Web3.to_checksum_address(backend.deployment.fund))
    stake_providers(w3, token, aicf, accounts[2:5], provider_ids)
    if load:
        demo = EvmDemoRequesters(system=system, w3=w3, token=token, aicf=aicf, callers=accounts[5:8], models=models)
        start_threads([("aicf-requesters", lambda: demo.run(system.stop))])


def report_until_stopped(system: "System", duration_s: int | None, say: Callable[[str], None]) -> None:
    """A progress line every 10 s until Ctrl-C, SIGTERM or `duration_s`."""
    started = time.monotonic()
    stop_on_sigterm(system.stop, say)
    try:
        while duration_s is None or time.monotonic() - started < duration_s:
            if system.stop.wait(10):
                break
            report_progress(system.store, system.clock.now(), system.params, say)
    except KeyboardInterrupt:
        say("stopping…")


def report_progress(store: Store, now: int, params: Params, say: Callable[[str], None]) -> None:
    """`aicf up`'s progress line. A database that does not answer (a dropped PostgreSQL connection, a restart of
    the server) skips the line with a warning instead of ending the process: the pool reconnects and the
    coordinator's loop retries its pass (issue 15, docs/RELIABILITY.md)."""
    try:
        status = reads.status(store, now, params)
        jobs = jobs_summary(store)
    except AicfError as exc:
        log.warning("progress report skipped, the database did not answer: %s", exc)
        return
    say(
        f"head {status.head_height} final {status.finalized_height} epoch {status.current_epoch}"
        f" settled {status.last_settled_epoch if status.last_settled_epoch is not None else '-'}"
        f" | jobs: {jobs or 'none yet'} | treasury {status.treasury:,} µANM"
    )


def stop_on_sigterm(stop: threading.Event, say: Callable[[str], None]) -> None:
    """SIGTERM (systemd, Docker, Kubernetes) stops `aicf up` as cleanly as Ctrl-C: the progress loop sees the
    event, the coordinator finishes its pass, the API closes. Only the main thread may set a handler."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, _frame: object) -> None:
        say(f"received {signal.Signals(signum).name}; stopping…")
        stop.set()

    signal.signal(signal.SIGTERM, handler)
