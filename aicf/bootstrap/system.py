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

from aicf.bootstrap.adapters import ModelTrapOracle, StoreEvents, default_trap_corpus
from aicf.bootstrap.chains import ChainBackend, DevnetBackend
from aicf.bootstrap.coordinator import CoordinatorConfig, build_coordinator
from aicf.chain.devnet import Devnet, DevnetConfig
from aicf.client.clock import WallClock
from aicf.client.signing import deployment_id
from aicf.core.clock import Clock
from aicf.core.encoding import tagged_hash
from aicf.core.params import Params
from aicf.core.qasm import circuit_depth
from aicf.core.slashing import SlashReason
from aicf.proofs.attestation.shipped import shipped_vendor_roots
from aicf.service import reads
from aicf.service.collateral import CollateralWatch
from aicf.service.coordinator import Coordinator
from aicf.service.ingest import ReorgBelowFinalityError, ingest_available
from aicf.service.nonces import StoreNonces
from aicf.service.traps import TrapOracle, TrapPrompt
from aicf.store.devnet_journal import StoreDevnetJournal
from aicf.store.interface import Store, read_transaction
from aicf.transports.asgi import build_app
from aicf.transports.auth import NONCE_TTL_S
from aicf.transports.health import Readiness, health_routes, probe
from aicf.transports.history import History, chart_routes
from aicf.transports.key_files import load_or_create_key, load_or_create_secret, public_bytes
from aicf.transports.methods import build_registry
from aicf.transports.metrics import (
    CollateralExpiry,
    EpochMetrics,
    KindQueueMetrics,
    MetricsSnapshot,
    ProviderMetrics,
    TrapShortfallMetrics,
    metrics_response,
)
from aicf.transports.secret_files import OperatorToken, load_or_create_operator_token

log = logging.getLogger("aicf.up")


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

    @property
    def devnet(self) -> Devnet:
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
        )

    history: History = field(default_factory=History)  # the last hour of /metrics, for /charts (issue 17)

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
        self.coord.sweep()
        self.coord.trap_pass()  # seed commitments and reveals, AI trap jobs (before any lease of the pass)
        self.coord.match()
        self.chain.after_pass()  # an EVM node: the settled batches and slashes go to the contract
        self.app.state.events.notify()
        self.history.offer(now, self.metrics)  # one snapshot per SAMPLE_S for the dashboard's charts

    def run_loop(self, period_s: float = 1.0) -> None:
        while not self.stop.is_set():
            try:
                self.tick()
                self.last_pass_at, self.wedged = self.clock.now(), ""
            except ReorgBelowFinalityError as exc:  # an operator has to act (docs/CHAIN.md); /readyz says so
                self.wedged = str(exc)
                log.error("coordinator wedged: %s", exc)
            except Exception:  # the loop must survive a failed pass; the next one retries
                log.exception("coordinator pass failed; retrying")
            self.stop.wait(period_s)

    def metrics(self) -> MetricsSnapshot:
        now = self.clock.now()
        status = reads.status(self.store, now, self.params)
        providers = reads.list_providers(self.store, now, self.params, None, 1000)
        budgets = reads.provider_job_budgets(self.store, self.params)
        queues = reads.queues_by_kind(self.store, now, self.params)
        epochs: list[EpochMetrics] = []
        last = status.last_settled_epoch
        for epoch in range(last if last is not None else -1, max(-1, (last or 0) - 8), -1):
            found = reads.get_epoch(self.store, epoch)
            if found is None:
                continue
            batch, payouts = found
            epochs.append(
                EpochMetrics(
                    epoch=epoch,
                    units_mu=batch.units_mu,
                    payouts=batch.payouts,
                    carried=batch.carried,
                    provider=sum(p.provider for p in payouts),
                    miner=sum(p.miner for p in payouts),
                    fund=sum(p.fund for p in payouts),
                    cap_use_bps=batch.units_mu * 10_000 // self.params.gamma_mu,
                    price_bps=batch.price_bps,
                )
            )
        return MetricsSnapshot(
            readiness=self.readiness(),
            jobs_by_status=status.job_counts,
            oldest_queued_age_s=status.oldest_queued_age_s,
            assignments_total=status.assignments_total,
            retries_total=status.retries_total,
            budget_throttle_active=status.throttled,
            providers=[
                ProviderMetrics(
                    provider_id=v.provider.provider_id,
                    status=v.provider.status,
                    live_leases=v.live_leases,
                    proofs_accepted=v.proofs_accepted,
                    proofs_rejected=v.slashes,
                    latency_p50_ms=v.latency_p50_ms or 0,
                    latency_p95_ms=v.latency_p95_ms or 0,
                    availability_bps=v.availability_bps,
                    bonded_stake=v.provider.bonded,
                    job_budget_ms=budgets.get(v.provider.provider_id, 0),
                )
                for v in providers
            ],
            queues_by_kind=[
                KindQueueMetrics(
                    kind=q.kind,
                    depth=q.depth,
                    depth_limit=q.limits.depth,
                    oldest_age_s=q.oldest_age_s,
                    age_limit_s=q.limits.age_s,
                )
                for q in queues
            ],
            trap_shortfalls=[
                TrapShortfallMetrics(model=m, count=t.count, escrow=t.escrow)
                for m, t in sorted(self.coord.trap_shortfalls.items())
            ],
            rejections_by_code={code: n for code, n in status.verdicts.items() if code != "ACCEPT"},
            slashes_by_reason={SlashReason(r): n for r, (n, _) in status.slash_totals.items()},
            slashed_by_reason={SlashReason(r): amount for r, (_, amount) in status.slash_totals.items()},
            current_epoch=status.current_epoch,
            last_settled_epoch=last if last is not None else -1,
            cap_use_bps=status.cap_use_bps,
            epochs=epochs,
            treasury_balance=status.treasury,
            fund_balance=status.fund,
            collateral=[  # SPEC §13 collateral near expiry: seconds left at this scrape's `now`
                CollateralExpiry(kind="vendor_root", item=e.what, expires_in_s=e.not_after - now)
                for e in self.coord.trust.root_expiries()
            ]
            + [  # and the TEE collateral and certificates the latest accepted evidence of each kind relied on
                CollateralExpiry(kind="tee_collateral", item=e.what, expires_in_s=e.not_after - now)
                for e in self.collateral.expiries()
            ],
        )


@dataclass(frozen=True, kw_only=True)
class SystemConfig:
    """What shapes the node `aicf up` serves. AI traps run on the models of `model_digests` through
    `trap_oracle` (default: the real models) with `trap_corpus` (default: aicf.provider.trap_corpus for those
    models); the operator token comes from `operator_token`, else $AICF_OPERATOR_TOKEN, else var/operator.token."""

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
    backend = (
        chain(operator_key) if chain is not None else devnet_backend(store, params, config, clock, operator_key, lock)
    )
    watch = CollateralWatch()  # what accepted TEE evidence relied on: /metrics and getStatus alarm on it
    coord = build_coordinator(
        CoordinatorConfig(
            params=params,
            operator_key=operator_key,
            model_digests=model_digests,
            trap_secret=trap_secret,
            trap_oracle=config.trap_oracle if config.trap_oracle is not None else ModelTrapOracle(),
            trap_corpus=default_trap_corpus(model_digests) if config.trap_corpus is None else config.trap_corpus,
            watch=watch,
        ),
        store=store,
        clock=clock,
        chain_writer=backend.writer,
    )
    pinned = coord.trust.pin_defaults(shipped_vendor_roots())  # a fresh store: from height 0; later runs: none
    if pinned:
        log.info("pinned %d shipped vendor roots: %s", len(pinned), ", ".join(f"{r.vendor}/{r.name}" for r in pinned))
    token = (  # from the caller, else $AICF_OPERATOR_TOKEN, else var/operator.token (created 0600): never printed
        OperatorToken(value=config.operator_token, source="the caller")
        if config.operator_token is not None
        else load_or_create_operator_token(var, os.environ)
    )
    registry = build_registry(coord, store, clock, params, collateral=watch, chain_id=backend.chain_id)
    for method in backend.rpc_methods(store, params):
        registry.add(method)

    def provider_key(pid: bytes) -> bytes | None:
        with read_transaction(store) as tx:
            p = tx.get_provider(pid)
        return p.public_key if p is not None else None  # a BANNED provider may only claim (the service says so)

    holder: dict[str, System] = {}
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
) -> DevnetBackend:
    """The embedded devnet. It lives in the coordinator's store: a restart on the same database resumes the same
    chain, and `config` only shapes a new one (a kept chain keeps its own genesis time, interval and issuance)."""
    devnet = Devnet.resume(
        StoreDevnetJournal(store),
        DevnetConfig(
            genesis_time=clock.now() - config.devnet_interval_s,
            interval_s=config.devnet_interval_s,
            issuance=config.devnet_issuance,
            finality_depth=params.finality_depth,
        ),
    )
    return DevnetBackend(devnet, lock, tagged_hash("aicf/devnet/operator/v1", public_bytes(operator_key))[:20])
