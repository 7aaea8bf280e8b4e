"""`aicf up`: the whole system in one process on its embedded defaults (issue 7).

A devnet producing blocks on the wall clock, the coordinator (ingest, settlement, matching, sweeps) on one
store, the JSON-RPC / WebSocket / metrics API with the operator dashboard, the reference providers (AI on
the two real models, quantum on stim) talking to the API like any third-party provider, and requesters
sending a steady demo load. This module is part of the composition root: it may import every layer.
"""

import hashlib
import logging
import os
import secrets
import signal
import threading
import time
import tomllib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from aicf.chain.devnet import Devnet, DevnetConfig
from aicf.client.signing import deployment_id
from aicf.core.capacity import enqueue_interval_s
from aicf.core.chain import TxKind
from aicf.core.encoding import tagged_hash
from aicf.core.errors import AicfError
from aicf.core.jobs import JobStatus
from aicf.core.ledger import FUND
from aicf.core.params import Params
from aicf.core.qasm import circuit_depth
from aicf.core.requests import validate_request
from aicf.core.slashing import SlashReason
from aicf.core.txs import SignedTx
from aicf.service import reads, requesters
from aicf.service.collateral import CollateralWatch
from aicf.service.coordinator import Coordinator
from aicf.service.faucet import top_up_fund
from aicf.service.ingest import ReorgBelowFinalityError, ingest_available
from aicf.service.nonces import StoreNonces
from aicf.service.traps import ExpectedAnswer, TrapOracle, TrapPrompt
from aicf.service.verifier import StandardVerifier
from aicf.store.devnet_journal import StoreDevnetJournal
from aicf.store.interface import Store, read_transaction
from aicf.transports.asgi import build_app
from aicf.transports.auth import NONCE_TTL_S
from aicf.transports.health import Readiness, health_routes, probe
from aicf.transports.history import History, chart_routes
from aicf.transports.methods import build_registry, cbor_json
from aicf.transports.methods_devnet import ReorgOutcome, devnet_reorg_method, reorg_chain
from aicf.transports.methods_requester import requester_methods
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
from aicf.transports.ws import Event

log = logging.getLogger("aicf.up")

PROVIDER_STAKE = 10_000_000_000  # µANM each reference provider is funded to (devnet operator mint)
BELL = b'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n'


class ChainMismatchError(AicfError):
    """The store was filled from another chain than the one this run would feed it."""


class ShippedRootsError(AicfError):
    """The vendor roots shipped with aicf (aicf/proofs/attestation/roots_data) are missing or altered."""


def shipped_vendor_roots() -> list[tuple[str, str, bytes]]:
    """(vendor, name, DER) of the public vendor roots listed in roots_data/roots.toml, each checked against its
    SHA-256 there. Raises ShippedRootsError on a missing or altered file."""
    folder = files("aicf.proofs.attestation") / "roots_data"
    manifest = tomllib.loads((folder / "roots.toml").read_text(encoding="utf-8"))
    out: list[tuple[str, str, bytes]] = []
    for entry in manifest.get("root", []):
        try:
            der = (folder / str(entry["file"])).read_bytes()
        except OSError as exc:
            raise ShippedRootsError(f"shipped root {entry['file']} cannot be read: {exc}") from exc
        got = hashlib.sha256(der).hexdigest()
        if got != entry["sha256"]:
            raise ShippedRootsError(f"shipped root {entry['file']}: expected sha256 {entry['sha256']}, got {got}")
        out.append((str(entry["vendor"]), str(entry["name"]), der))
    return out


class WallClock:
    """The real clock: the one place outside tests that reads the time."""

    def now(self) -> int:
        return int(time.time())

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class DevnetWriter:
    """Accepted proofs go into the devnet's mempool, from the coordinator's own address."""

    def __init__(self, devnet: Devnet, lock: threading.Lock, sender: bytes) -> None:
        self.devnet, self.lock, self.sender = devnet, lock, sender

    def include_proof(self, body: Mapping[str, object]) -> None:
        with self.lock:
            self.devnet.submit(self.sender, TxKind.PROOF, body)

    def submit(self, kind: TxKind, body: Mapping[str, object], sender: bytes) -> None:
        """A transaction from another of the coordinator's addresses (an AI trap's fresh caller)."""
        with self.lock:
            self.devnet.submit(sender, kind, body)


class ModelTrapOracle:
    """The coordinator's own re-execution of AI traps on the real models (SPEC §8; aicf.service.traps)."""

    def expected(self, model: str, prompt: bytes, max_tokens: int) -> ExpectedAnswer:
        from aicf.provider.models import reexecute_trap

        answer = reexecute_trap(model, prompt, max_tokens)
        return ExpectedAnswer(kind=answer.kind, output=answer.output, token_ids=answer.token_ids, text=answer.text)


def default_trap_corpus(models: Collection[str]) -> tuple[TrapPrompt, ...]:
    """The devnet's trap corpus (aicf.provider.trap_corpus) for the models served here."""
    from aicf.provider.trap_corpus import DEFAULT_CORPUS

    return tuple(
        TrapPrompt(model=c.model, prompt=c.prompt, max_tokens=c.max_tokens) for c in DEFAULT_CORPUS if c.model in models
    )


class StoreEvents:
    """The WebSocket hub's event source: the store's gapless event log."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def read_since(self, seq: int, topics: Collection[str] | None, limit: int) -> Sequence[Event]:
        with read_transaction(self.store) as tx:  # reads take no write lock (issue 15)
            rows = tx.events_since(seq, sorted(topics) if topics else [], limit)
        return [Event(seq=e.seq, topic=e.topic, data=cbor_json(cbor2.loads(e.data))) for e in rows]

    def latest_seq(self) -> int:
        with read_transaction(self.store) as tx:
            return tx.latest_event_seq()


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The operator's Ed25519 key (it signs acceptance records and lease grants), kept in a 0600 file."""
    if path.exists():
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(path.read_text(encoding="utf-8").strip()))
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = secrets.token_bytes(32)
    path.touch(mode=0o600)
    path.write_text(seed.hex(), encoding="utf-8")
    return Ed25519PrivateKey.from_private_bytes(seed)


def load_or_create_secret(path: Path) -> bytes:
    """The operator's trap secret (docs/TRAPS.md): 32 random bytes from `secrets`, hex in a 0600 file beside
    operator.key, made on the first run and kept across restarts (committed seeds must stay revealable). A file
    that group or others may read, or that is not 32 bytes of hex, is refused: the secret would not be secret."""
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise AicfError(f"{path}: mode {mode:04o} lets others read the trap secret; chmod 600 it")
        try:
            secret = bytes.fromhex(path.read_text(encoding="utf-8").strip())
        except ValueError as exc:
            raise AicfError(f"{path}: not hex: {exc}") from exc
        if len(secret) != 32:
            raise AicfError(f"{path}: the trap secret must be 32 bytes, got {len(secret)}")
        return secret
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(secret.hex(), encoding="utf-8")
    return secret


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass
class System:
    store: Store
    params: Params
    devnet: Devnet
    clock: WallClock
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

    def readiness(self) -> Readiness:
        """What /readyz and /metrics report: database reachable, last pass age, ingest lag, wedge."""

        def stored_head() -> int | None:
            with self.store.transaction() as tx:
                head = tx.head_block()
            return None if head is None else head.height

        def chain_head() -> int:
            with self.chain_lock:
                return self.devnet.head_height()

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
        with self.chain_lock:
            self.devnet.tick(now)
        ingest_available(  # another replica ingesting does the work: match and sweep instead of waiting
            self.store,
            self.devnet,
            self.params,
            circuit_depth,
            operator_key=public_bytes(self.operator_key),
            wait=False,
        )
        self.coord.sweep()
        self.coord.trap_pass()  # seed commitments and reveals, AI trap jobs (before any lease of the pass)
        self.coord.match()
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


def build_system(
    store: Store,
    params: Params,
    *,
    var: Path,
    model_digests: Mapping[str, bytes],
    devnet_interval_s: int = 2,
    devnet_issuance: int = 10_000_000_000,
    operator_token: str | None = None,
    clock: WallClock | None = None,
    trap_oracle: TrapOracle | None = None,
    trap_corpus: Sequence[TrapPrompt] | None = None,
) -> System:
    """The whole system on one store. AI traps run on the models of `model_digests` through `trap_oracle`
    (default: the real models) with `trap_corpus` (default: aicf.provider.trap_corpus for those models)."""
    clock = clock or WallClock()
    operator_key = load_or_create_key(var / "operator.key")
    trap_secret = load_or_create_secret(var / "trap.secret")  # random, never derived from a public key
    # The devnet lives in the coordinator's store: a restart on the same database resumes the same chain, and
    # the config below only shapes a new one (a kept chain keeps its own genesis time, interval and issuance).
    devnet = Devnet.resume(
        StoreDevnetJournal(store),
        DevnetConfig(
            genesis_time=clock.now() - devnet_interval_s,
            interval_s=devnet_interval_s,
            issuance=devnet_issuance,
            finality_depth=params.finality_depth,
        ),
    )
    lock = threading.Lock()
    coordinator_address = tagged_hash("aicf/devnet/operator/v1", public_bytes(operator_key))[:20]

    def trap_seed(epoch: int) -> bytes:
        return coord.trap_seed(epoch)

    watch = CollateralWatch()  # what accepted TEE evidence relied on: /metrics and getStatus alarm on it
    coord = Coordinator(
        store=store,
        clock=clock,
        params=params,
        operator_key=operator_key,
        verifier=StandardVerifier(params=params, model_digests=model_digests, trap_seed=trap_seed, watch=watch),
        chain_writer=DevnetWriter(devnet, lock, coordinator_address),
        trap_secret=trap_secret,
        trap_oracle=trap_oracle if trap_oracle is not None else ModelTrapOracle(),
        trap_corpus=default_trap_corpus(model_digests) if trap_corpus is None else trap_corpus,
    )
    pinned = coord.trust.pin_defaults(shipped_vendor_roots())  # a fresh store: from height 0; later runs: none
    if pinned:
        log.info("pinned %d shipped vendor roots: %s", len(pinned), ", ".join(f"{r.vendor}/{r.name}" for r in pinned))
    token = (  # from the caller, else $AICF_OPERATOR_TOKEN, else var/operator.token (created 0600): never printed
        OperatorToken(value=operator_token, source="the caller")
        if operator_token is not None
        else load_or_create_operator_token(var, os.environ)
    )
    registry = build_registry(coord, store, clock, params, collateral=watch, chain_id=devnet.chain_id)

    def devnet_reorg(depth: int) -> ReorgOutcome:  # aicf.devnetReorg: the next tick ingests the new branch
        with lock:
            return reorg_chain(devnet, depth, params.finality_depth)

    registry.add(devnet_reorg_method(devnet_reorg))

    def send(tx: SignedTx) -> bytes:  # check and send under the chain lock: no two sends race on one balance
        with lock:
            return requesters.send_transaction(store, devnet, params, tx, circuit_depth)

    def tx_status(tx_hash: bytes) -> requesters.TxStatus:
        with lock:
            return requesters.transaction_status(store, devnet, tx_hash)

    def account(address: bytes) -> requesters.Account:
        with lock:
            return requesters.account(store, devnet, address)

    for method in requester_methods(
        chain_id=devnet.chain_id,
        send=send,
        status=tx_status,
        account=account,
        outcome=lambda task_id: requesters.request_outcome(store, task_id),
        terms=lambda: requesters.request_terms(store, params, devnet.chain_id),
    ):
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
        deployment_id=deployment_id(devnet.chain_id, public_bytes(operator_key)),  # signed calls bind it
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
        devnet=devnet,
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


DEMO_SHARE_BPS = 5_000  # the demo asks for half of what the reference providers declare they can take
FUND_TOPUP_TRAPS = 20  # a top-up pays this many escrows of the dearest trap the fund could not pay


@dataclass
class DemoRequesters:
    """Requesters sending a steady demo load sized from the providers' declared rates (issue 17): each kind is
    enqueued every `enqueue_interval_s` of its jobs' units against DEMO_SHARE_BPS of the unit rates its ACTIVE
    providers run with (the AI rate split evenly between the demo's models), never more often than `period_s`,
    and not at all while nothing serves it. The fund is topped up (a devnet faucet) when a trap finds it too poor."""

    system: System
    models: Sequence[str]
    period_s: float = 4.0
    quantum: bool = True
    count: int = 0
    callers: list[bytes] = field(default_factory=list)
    due: dict[str, int] = field(default_factory=dict)  # kind or model -> unix s of its next enqueue
    sent: dict[str, int] = field(default_factory=dict)  # kind or model -> enqueues so far
    fund_topups: int = 0

    def start(self) -> None:
        self.callers = [tagged_hash("aicf/devnet/requester/v1", i)[:20] for i in range(3)]
        with self.system.chain_lock:
            for caller in self.callers:
                self.system.devnet.submit(caller, TxKind.DEPOSIT, {"to": caller, "amount": 10**12})

    def run(self, stop: threading.Event) -> None:
        self.start()
        while not stop.wait(1.0):
            self.step()

    def body(self, kind: str) -> tuple[TxKind, dict[str, object]]:
        if kind == "quantum":
            return TxKind.QUANTUM_ENQUEUE, {"circuit": BELL, "shots": 20, "fee_per_unit": 3 * 50_000, "tier": 0}
        prompts = [b"The capital of France is", b"Proof of stake means", b"A cat sat on", b"Quantum error correction"]
        price = 20_000  # µANM per unit per 1000 mu: above the reserve at any price up to the 2.0 clamp
        return TxKind.AI_ENQUEUE, {
            "model": kind,
            "prompt": prompts[self.count % len(prompts)],
            "max_tokens": 8,
            "max_runtime_ms": 20_000,
            "fee_per_unit": 2 * price,
            "tier": 0,  # a higher tier needs a tier the operator registered for the caller
        }

    def step(self) -> list[str]:
        """Enqueue each kind that is due; top up the fund if a trap could not be paid. Returns what was sent."""
        now = self.system.clock.now()
        params = self.system.params
        self.top_up_fund()
        capacity = {q.kind: q.capacity_mu_per_day for q in reads.queues_by_kind(self.system.store, now, params)}
        kinds = [*self.models, *(["quantum"] if self.quantum else [])]
        sent: list[str] = []
        for kind in kinds:
            if now < self.due.get(kind, 0):
                continue
            tx_kind, body = self.body(kind)
            request = {"kind": "quantum" if kind == "quantum" else "ai", **body}
            job_mu = validate_request(request, params, params.price_initial_bps, circuit_depth).max_units_mu
            share = capacity.get("quantum", 0) if kind == "quantum" else capacity.get("ai", 0) // len(self.models)
            interval = enqueue_interval_s(job_mu, share, DEMO_SHARE_BPS)
            if interval is None:
                continue  # nothing serves it (yet)
            self.due[kind] = now + max(int(self.period_s), interval)
            caller = self.callers[self.count % len(self.callers)]
            self.count += 1
            with self.system.chain_lock:
                self.system.devnet.submit(caller, tx_kind, body)
            self.sent[kind] = self.sent.get(kind, 0) + 1
            sent.append(kind)
        return sent

    def top_up_fund(self) -> None:
        need = max((t.escrow for t in self.system.coord.trap_shortfalls.values()), default=0)
        if need and reads.get_balances(self.system.store, [FUND])[FUND] < need:
            balance = top_up_fund(self.system.store, self.system.clock, FUND_TOPUP_TRAPS * need)
            self.fund_topups += 1
            log.info("devnet faucet: the fund could not pay a trap's %d µANM escrow; topped up to %d", need, balance)


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


def jobs_summary(store: Store) -> str:
    with read_transaction(store) as tx:
        counts = tx.job_counts()
    return ", ".join(f"{s.value.lower()} {counts.get(s, 0)}" for s in JobStatus if counts.get(s, 0))


def start_threads(targets: Sequence[tuple[str, Callable[[], None]]]) -> list[threading.Thread]:
    threads = [threading.Thread(target=fn, name=name, daemon=True) for name, fn in targets]
    for t in threads:
        t.start()
    return threads


def devnet_params() -> Params:
    """The params `aicf up` runs with unless given a file: aicf/devnet.toml over SPEC's defaults."""
    from aicf.core.params import params_from_toml

    return params_from_toml((files("aicf") / "devnet.toml").read_text(encoding="utf-8"))


def installed_model_digests(models: Sequence[str]) -> dict[str, bytes]:
    """The digest of each real model whose package is installed (the registry pins what providers must run)."""
    from aicf.provider.models import ModelUnavailableError, runner

    out: dict[str, bytes] = {}
    for model in models:
        try:
            out[model] = runner(model).model_digest()
        except ModelUnavailableError as exc:  # a missing package: the model is not served, and we say so
            log.warning("model %s is not available (%s); it will not be served", model, exc)
    return out


def run_up(
    store: Store,
    params: Params,
    *,
    host: str,
    port: int,
    var: Path,
    providers: bool,
    load: bool,
    duration_s: int | None,
    say: Callable[[str], None],
    start_providers: Callable[[System, str, Sequence[str], threading.Event], None] | None = None,
    serve_models: Sequence[str] | None = None,
) -> System:
    """Start everything, print where to look, report progress until Ctrl-C, SIGTERM (or `duration_s`).
    `serve_models` limits the real models the reference providers serve (default: both)."""
    import uvicorn

    wanted = ("minilm-l6-v2", "smollm2-135m") if serve_models is None else tuple(serve_models)
    models = [m for m in wanted if m in params.model_weights]
    digests = installed_model_digests(models) if providers or load else {}
    system = build_system(store, params, var=var, model_digests=digests)
    with store.transaction() as tx:
        stored_genesis = tx.block_at(0)
    genesis = system.devnet.block_at(0)
    if stored_genesis is not None and genesis is not None and stored_genesis.hash != genesis.hash:
        raise ChainMismatchError(
            "this database was filled from another chain than the devnet it keeps (for example by `aicf devnet "
            "run`): start `aicf up` on another database (--db) or an empty one"
        )
    url = f"http://{host}:{port}"
    server = uvicorn.Server(uvicorn.Config(system.app, host=host, port=port, log_level="warning", lifespan="on"))
    threads = start_threads([("aicf-api", server.run), ("aicf-coordinator", system.run_loop)])
    ready = threading.Event()
    for _ in range(200):
        if server.started:
            ready.set()
            break
        system.stop.wait(0.05)
    if not ready.is_set():
        system.stop.set()
        raise RuntimeError(f"the API did not start on {url}; is the port taken? try --port")
    served = sorted(digests)
    if providers and start_providers is not None:
        start_providers(system, url, served, system.stop)
    if load:
        demo = DemoRequesters(system=system, models=served)
        start_threads([("aicf-requesters", lambda: demo.run(system.stop))])
    resumed = system.devnet.head_height()
    say(f"aicf is up: dashboard {url}/dashboard/  JSON-RPC {url}/rpc  WebSocket {url.replace('http', 'ws')}/ws")
    say(f"point the CLI at it: export AICF_URL={url}   (or pass --url {url}); try: aicf request --help")
    if resumed > 1:
        say(f"resumed the devnet chain {system.devnet.chain_id} at height {resumed} from the database")
    say(f"metrics {url}/metrics  OpenRPC {url}/openrpc.json  operator token in {system.operator_token_source}")
    why_none = "install the models extra" if providers or load else "no providers in this run"
    say(f"models served: {', '.join(served) or f'none ({why_none})'}; epoch every {params.epoch_seconds} s")
    started = time.monotonic()
    stop_on_sigterm(system.stop, say)
    try:
        while duration_s is None or time.monotonic() - started < duration_s:
            if system.stop.wait(10):
                break
            report_progress(store, system.clock.now(), params, say)
    except KeyboardInterrupt:
        say("stopping…")
    system.stop.set()
    server.should_exit = True
    for t in threads:
        t.join(timeout=10)
    return system


def stop_on_sigterm(stop: threading.Event, say: Callable[[str], None]) -> None:
    """SIGTERM (systemd, Docker, Kubernetes) stops `aicf up` as cleanly as Ctrl-C: the progress loop sees the
    event, the coordinator finishes its pass, the API closes. Only the main thread may set a handler."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, _frame: object) -> None:
        say(f"received {signal.Signals(signum).name}; stopping…")
        stop.set()

    signal.signal(signal.SIGTERM, handler)


def start_reference_providers(system: System, url: str, models: Sequence[str], stop: threading.Event) -> None:
    """Two honest AI providers on the real models and one quantum provider on stim, each a thread running
    the same agent a third-party operator runs, over JSON-RPC; the operator funds their stake (devnet)."""
    from aicf.client import RpcClient, RpcError
    from aicf.provider.agent import AgentConfig, ProviderAgent
    from aicf.provider.agent import load_or_create_key as provider_key
    from aicf.provider.work_ai import AiWork
    from aicf.provider.work_quantum import QuantumWork

    quiet_model_loading()
    specs: list[tuple[str, AgentConfig, Callable[[], object]]] = []
    if models:
        for n in (1, 2):
            config = AgentConfig(kinds=("ai",), models=tuple(models), regions=("eu",) if n == 1 else ("us",))
            specs.append((f"ai-{n}", config, lambda: AiWork(tuple(models))))
    specs.append(("quantum-1", AgentConfig(kinds=("quantum",), devices=("stim",)), QuantumWork))
    for name, config, make_work in specs:
        (system.var / "providers").mkdir(parents=True, exist_ok=True)
        key = provider_key(system.var / "providers" / f"{name}.key")
        client = RpcClient(f"{url}/rpc", provider_key=key, operator_token=system.operator_token, clock=system.clock)
        agent = ProviderAgent(client, key, config, [make_work()])  # type: ignore[list-item]
        try:
            registered = agent.register()
        except RpcError:  # a new provider: registration bonds its balance, so the operator mints it first
            agent.fund(PROVIDER_STAKE)
            registered = agent.register()
        bonded = registered.get("bonded_stake", 0)
        if isinstance(bonded, int) and bonded < PROVIDER_STAKE:  # top up to the target: restarts mint nothing
            agent.fund(PROVIDER_STAKE - bonded)

        def serve(agent: ProviderAgent = agent) -> None:
            agent.run(system.clock, stop.wait, stop.is_set)

        start_threads([(f"aicf-provider-{name}", serve)])


def quiet_model_loading() -> None:
    """transformers draws a progress bar on stderr while it de-quantizes the GGUF: not in `aicf up`'s output."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
