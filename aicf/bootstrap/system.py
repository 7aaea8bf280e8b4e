"""The running coordinator node that `aicf up` serves: one store, the devnet kept in it, the coordinator, the
JSON-RPC / WebSocket / metrics app, and the pass that drives them (issue 7).
"""

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from aicf.bootstrap.adapters import ModelTrapOracle, StoreEvents, load_trap_corpus
from aicf.bootstrap.chains import ChainBackend, DevnetBackend
from aicf.bootstrap.coordinator import CoordinatorConfig, build_coordinator
from aicf.bootstrap.deployment import check_identity, pin_shipped_roots
from aicf.bootstrap.shared_devnet import SharedDevnet
from aicf.bootstrap.system_metrics import metrics_snapshot
from aicf.chain.devnet import DevnetConfig
from aicf.chain.devnet_writer import NoOperatorKeyError
from aicf.client.backoff import Reconnect
from aicf.client.clock import WallClock
from aicf.client.signing import deployment_id
from aicf.core.clock import Clock
from aicf.core.encoding import tagged_hash
from aicf.core.params import Params
from aicf.core.qasm import circuit_depth
from aicf.core.txs import address_of
from aicf.service import operator_calls
from aicf.service.collateral import CollateralWatch
from aicf.service.coordinator import Coordinator
from aicf.service.ingest import ReorgBelowFinalityError, ingest_available
from aicf.service.nonces import StoreNonces
from aicf.service.operator_ops import OperatorSender
from aicf.service.traps import TrapOracle, TrapPrompt
from aicf.store.interface import Store, StoreUnavailableError, read_transaction
from aicf.transports.asgi import build_app
from aicf.transports.auth import NONCE_TTL_S
from aicf.transports.health import Readiness, health_routes, probe
from aicf.transports.history import History, chart_routes
from aicf.transports.key_files import load_or_create_key, load_or_create_secret, public_bytes
from aicf.transports.methods import build_registry
from aicf.transports.methods_requester import grant_method
from aicf.transports.metrics import MetricsSnapshot, metrics_response
from aicf.transports.secret_files import OperatorToken, load_or_create_operator_token

log = logging.getLogger("aicf.up")
PASS_ERROR_LOG_EVERY_S = 30  # a database failure that lasts is logged again this often, not every pass


@dataclass
class System:
    store: Store
    params: Params
    chain: ChainBackend
    clock: Clock
    coord: Coordinator
    operator_key: Ed25519PrivateKey
    operator_token: str
    app: Starlette
    chain_lock: threading.Lock
    var: Path
    stop: threading.Event = field(default_factory=threading.Event)
    collateral: CollateralWatch = field(default_factory=CollateralWatch)  # the verifier's: TEE collateral expiry
    operator_token_source: str = ""  # where the token is kept (a 0600 file or the environment): the banner names it
    last_pass_at: int | None = None  # when the last coordinator pass succeeded (/readyz, /metrics)
    wedged: str = ""  # why the coordinator cannot go on by itself ("" when it can): a reorg below finality
    store_failure: str = ""  # why the last pass failed on the database (down, read-only, full); "": it did not

    @property
    def devnet(self) -> SharedDevnet:
        """The embedded devnet this system runs on (the demo load and the devnet tools send to it)."""
        if not isinstance(self.chain, DevnetBackend):
            raise TypeError(f"this system runs on a {self.chain.kind} chain, not the embedded devnet")
        return self.chain.devnet

    def readiness(self) -> Readiness:
        """What /readyz and /metrics report: database reachable, last pass age, ingest lag, wedge."""

        def stored_head() -> int | None:
            with self.store.transaction() as tx:
                head = tx.head_block()
            return None if head is None else head.height

        def chain_head() -> int:
            return self.chain.head_height()

        return probe(
            now=self.clock.now(),
            last_pass_at=self.last_pass_at,
            stored_head=stored_head,
            chain_head=chain_head,
            wedged=lambda: self.wedged,
            store_failure=self.store_failure,
        )

    history: History = field(default_factory=History)  # the last hour of /metrics, for /charts (issue 17)
    writer: OperatorSender | None = None  # signs and sends operator transactions (the devnet's chain writer)

    def send_operator(self, body: Mapping[str, object]) -> bytes:
        """Check an operator transaction as ingestion would, sign it with the operator key and send it."""
        if self.writer is None:
            raise NoOperatorKeyError(
                f"operator transactions are not built for a {self.chain.kind} chain yet (docs/EVM.md)"
            )
        return operator_calls.send_operator(self.store, self.writer, self.params, body)

    def tick(self) -> None:
        """One coordinator pass: new blocks, ingest (with settlement), sweeps, matching; then wake the WS hub."""
        now = self.clock.now()
        self.chain.advance(now)
        ingest_available(  # another replica ingesting does the work: match and sweep instead of waiting
            self.store,
            self.chain.view,
            self.params,
            circuit_depth,
            operator_key=public_bytes(self.operator_key),
            wait=False,
        )
        self.coord.follow_chain()  # the params of the head's epoch and the allowlist the operator's transactions set
        self.coord.sweep()
        self.coord.trap_pass()  # seed commitments and reveals, AI trap jobs (before any lease of the pass)
        self.coord.match()
        self.chain.after_pass()  # an EVM node: the settled batches and slashes go to the contract
        self.app.state.events.notify()
        self.history.offer(now, self.metrics)  # one snapshot per SAMPLE_S for the dashboard's charts

    def run_loop(self, period_s: float = 1.0, reconnect: Reconnect | None = None) -> None:
        """A pass every `period_s`; after a failed pass the next waits as `reconnect` says (aicf.core.backoff:
        growing, jittered, capped at 30 s, back to `period_s` after a pass that works)."""
        retry = reconnect if reconnect is not None else Reconnect(now_ms=self.clock.now_ms)
        logged_at: int | None = None  # when the current database failure was last logged
        while not self.stop.is_set():
            wait = period_s
            try:
                self.tick()
                self.last_pass_at, self.wedged = self.clock.now(), ""
                if self.store_failure:
                    log.warning("coordinator pass succeeded again; the database answers and takes writes")
                self.store_failure, logged_at = "", None
                retry.succeeded()
            except ReorgBelowFinalityError as exc:  # an operator has to act (docs/CHAIN.md); /readyz says so
                self.wedged = str(exc)
                log.error("coordinator wedged: %s", exc)
                wait = max(period_s, retry.failed())
            except StoreUnavailableError as exc:  # down, read-only or full: nothing written; retried with backoff
                wait = max(period_s, retry.failed())
                now = self.clock.now()
                if str(exc) != self.store_failure or logged_at is None or now - logged_at >= PASS_ERROR_LOG_EVERY_S:
                    log.error(
                        "coordinator pass failed (%d in a row), retrying in %.1f s: %s", retry.failures, wait, exc
                    )
                    logged_at = now
                self.store_failure = str(exc)
            except Exception:  # the loop must survive a failed pass; the next one retries
                wait = max(period_s, retry.failed())
                log.exception("coordinator pass failed (%d in a row); retrying in %.1f s", retry.failures, wait)
            self.stop.wait(wait)

    def metrics(self) -> MetricsSnapshot:
        """What /metrics serves now (aicf.bootstrap.system_metrics)."""
        return metrics_snapshot(self.store, self.params, self.clock, self.coord, self.collateral, self.readiness)


@dataclass(frozen=True, kw_only=True)
class SystemConfig:
    """What shapes the node `aicf up` serves. AI traps run on the models of `model_digests` through
    `trap_oracle` (default: the real models) with `trap_corpus` (default: the operator's private
    var/trap_corpus.jsonl, else the public aicf.provider.trap_corpus with a warning); the operator token comes
    from `operator_token`, else $AICF_OPERATOR_TOKEN, else var/operator.token."""

    var: Path
    model_digests: Mapping[str, bytes]
    devnet_interval_s: int = 2
    devnet_issuance: int = 10_000_000_000
    operator_token: str | None = None
    trap_oracle: TrapOracle | None = None
    trap_corpus: Sequence[TrapPrompt] | None = None


def build_system(
    store: Store,
    params: Params,
    config: SystemConfig,
    *,
    clock: Clock | None = None,
    chain: Callable[[Ed25519PrivateKey], ChainBackend] | None = None,
) -> System:
    """The whole system on one store, reading `clock` (default: the wall clock), on the chain `chain` makes
    from the operator key (default: the embedded devnet kept in the store)."""
    clock = clock or WallClock()
    var, model_digests = config.var, config.model_digests
    operator_key = load_or_create_key(var / "operator.key")
    trap_secret = load_or_create_secret(var / "trap.secret")  # random, never derived from a public key
    lock = threading.Lock()
    identity = (public_bytes(operator_key), trap_secret)
    backend = (
        chain(operator_key)
        if chain is not None
        else devnet_backend(store, params, config, clock, operator_key, lock, identity)
    )
    watch = CollateralWatch()  # what accepted TEE evidence relied on: /metrics and getStatus alarm on it
    coord = build_coordinator(
        CoordinatorConfig(
            params=params,
            operator_key=operator_key,
            model_digests=model_digests,
            trap_secret=trap_secret,
            trap_oracle=config.trap_oracle if config.trap_oracle is not None else ModelTrapOracle(),
            trap_corpus=load_trap_corpus(var, model_digests) if config.trap_corpus is None else config.trap_corpus,
            watch=watch,
        ),
        store=store,
        clock=clock,
        chain_writer=backend.writer,
    )
    pinned = pin_shipped_roots(coord)
    if pinned:
        log.info("pinned %d shipped vendor roots: %s", len(pinned), ", ".join(f"{r.vendor}/{r.name}" for r in pinned))
    token = (  # from the caller, else $AICF_OPERATOR_TOKEN, else var/operator.token (created 0600): never printed
        OperatorToken(value=config.operator_token, source="the caller")
        if config.operator_token is not None
        else load_or_create_operator_token(var, os.environ)
    )
    writer = backend.writer if isinstance(backend.writer, OperatorSender) else None  # devnet and EVM writers
    holder: dict[str, System] = {}  # the RPC methods and routes below reach the system built last
    registry = build_registry(
        coord,
        store,
        clock,
        params,
        collateral=watch,
        chain_id=backend.chain_id,
        send_operator=None if writer is None else lambda body: holder["system"].send_operator(body),
    )
    for method in backend.rpc_methods(store, params):
        registry.add(method)
    if writer is not None:  # grants are sent like traps, by the operator's writer (devnet and EVM)
        registry.add(grant_method(lambda tx: coord.request_grant(tx, backend.chain_id)))

    def provider_key(pid: bytes) -> bytes | None:
        with read_transaction(store) as tx:
            p = tx.get_provider(pid)
        return p.public_key if p is not None else None  # a BANNED provider may only claim (the service says so)

    history = History()

    def metrics(request: Request) -> Response:
        return metrics_response(holder["system"].metrics(), request.headers.get("accept"))

    static = str(files("aicf.transports") / "static")
    app = build_app(
        registry,
        StoreEvents(store),
        clock,
        token.value,
        provider_key,
        nonce_store=StoreNonces(store, NONCE_TTL_S),
        deployment_id=deployment_id(backend.chain_id, public_bytes(operator_key)),  # signed calls bind it
        extra_routes=[
            Route("/metrics", metrics, methods=["GET"]),
            *health_routes(lambda: holder["system"].readiness()),
            *chart_routes(history, clock.now),
            Route("/", lambda _: RedirectResponse("/dashboard/"), methods=["GET"]),
            Mount("/dashboard", StaticFiles(directory=static, html=True)),
        ],
    )
    system = System(
        store=store,
        params=params,
        chain=backend,
        clock=clock,
        coord=coord,
        operator_key=operator_key,
        operator_token=token.value,
        operator_token_source=token.source,
        app=app,
        chain_lock=lock,
        var=var,
        collateral=watch,
        history=history,
        writer=writer,
    )
    holder["system"] = system
    return system


def devnet_backend(
    store: Store,
    params: Params,
    config: SystemConfig,
    clock: Clock,
    operator_key: Ed25519PrivateKey,
    lock: threading.Lock,
    identity: Sequence[bytes],
) -> DevnetBackend:
    """The embedded devnet. It lives in the coordinator's store, shared by every process on it (aicf serve
    replicas): a restart on the same database resumes the same chain, and `config` only shapes a new one (a kept
    chain keeps its own genesis time, interval and issuance). Genesis and the deployment's fingerprints are
    written in one transaction under the devnet lock: two replicas starting at once, or one killed, set it up
    once."""
    devnet = SharedDevnet(
        store,
        DevnetConfig(
            genesis_time=clock.now() - config.devnet_interval_s,
            interval_s=config.devnet_interval_s,
            issuance=config.devnet_issuance,
            finality_depth=params.finality_depth,
        ),
        setup=lambda tx: check_identity(tx, identity),
    )
    devnet.operator = address_of(public_bytes(operator_key))  # the one sender of operator transactions
    sender = tagged_hash("aicf/devnet/operator/v1", public_bytes(operator_key))[:20]
    return DevnetBackend(devnet, lock, sender, operator_key)
