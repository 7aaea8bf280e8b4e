"""Coordinator replicas on one PostgreSQL database (issue 5, item 6): `python benchmarks/replica.py --db URL`.

A benchmark and test harness, outside the product package (issue 13); `aicf serve` is the product's replica.

Each process is a whole coordinator: it ingests the shared chain, sweeps, matches and serves the proofs of
simulated providers, until every planned job is final (exit 0) or the time limit passes (exit 2). Run several
on one database and kill any of them: PostgreSQL rolls back what the killed one had in flight, `lock_ingest`
serializes ingestion and `lease_job` claims a job row with SKIP LOCKED, so the others carry on.

The shared chain is a devnet kept in the same database (tables `replica_blocks`, `replica_mempool`,
`replica_meta`, next to the store's): the first replica writes genesis, the requesters' deposits and enqueues
(a deterministic plan from `--seed` and `--jobs`) and registers and stakes the providers, all under one advisory
lock; after that, whichever replica finds a block due takes the lock and mines it from the mempool. A
transaction's hash uses its mempool sequence number as the devnet nonce, so every replica rebuilds the same
blocks. Accepted proofs go to the mempool like any transaction.

Time: a `ScaledClock` runs `--speed` virtual seconds per wall second from the start instant stored with the
chain, so every replica reads the same clock; blocks come every 10 virtual seconds. The simulated providers are
external agents every replica can reach: each replica heartbeats all of them and submits their (honest) proofs
for whatever live leases they hold, so two replicas racing on one proof is part of what this exercises.
Availability is not checked (`min_availability_bps` 0): a loaded machine may miss a 20 s heartbeat slot in
wall time, which says nothing about the coordinator.
"""

import argparse
import json
import logging
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

import cbor2
import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from aicf.bootstrap.coordinator import CoordinatorConfig, build_coordinator
from aicf.bootstrap.stores import open_store
from aicf.chain.devnet import Devnet, DevnetConfig, decode_block, encode_block
from aicf.core.chain import Block, Job, TxKind
from aicf.core.clock import Clock
from aicf.core.errors import AicfError
from aicf.core.ids import input_digest, output_digest, provider_id
from aicf.core.jobs import FINAL_STATUSES, JobStatus
from aicf.core.params import Params, params_from_mapping
from aicf.core.records import LeaseRecord
from aicf.proofs.envelope import ProofEnvelope, sign_envelope
from aicf.service.coordinator import Capabilities, ChainWriter, Coordinator, decode_request
from aicf.service.ingest import ingest_available
from aicf.service.proof_groups import MAX_PROOF_GROUP
from aicf.store.interface import Store

log = logging.getLogger("replica")

MODEL = "llama3-8b"
MODEL_DIGEST = b"\x5a" * 32
GENESIS = 1_700_000_000
INTERVAL_S = 10
LOCK_KEY = 0x41494346  # pg_advisory_xact_lock key of the shared chain ("AICF")
JOBS_PER_REQUESTER = 50  # SPEC's max_open_jobs is 100
PARAMS = params_from_mapping({"epoch_seconds": 60, "min_availability_bps": 0})
DDL = (
    "CREATE TABLE IF NOT EXISTS replica_blocks (height BIGINT PRIMARY KEY, data BYTEA NOT NULL)",
    "CREATE TABLE IF NOT EXISTS replica_mempool (seq BIGSERIAL PRIMARY KEY, sender BYTEA NOT NULL, "
    "kind TEXT NOT NULL, body BYTEA NOT NULL)",
    "CREATE TABLE IF NOT EXISTS replica_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class ScaledClock:
    """`speed` virtual seconds per wall second since `start_wall_ms`, starting at `genesis`."""

    def __init__(self, start_wall_ms: int, genesis: int, speed: int) -> None:
        self.start_wall_ms, self.genesis, self.speed = start_wall_ms, genesis, speed

    def now_ms(self) -> int:
        return self.genesis * 1000 + max(0, _wall_ms() - self.start_wall_ms) * self.speed

    def now(self) -> int:
        return self.now_ms() // 1000


# -- the plan ---------------------------------------------------------------------------------------------
def provider_key(seed: int, i: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(((seed << 32) + i + 1).to_bytes(32, "big"))


def public_key(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def operator_key() -> Ed25519PrivateKey:
    """The coordinators' operator key: the same in every replica (it signs grants and acceptances)."""
    return Ed25519PrivateKey.from_private_bytes(b"\x63" * 32)


def requester(i: int) -> bytes:
    return (0x5200 + i).to_bytes(2, "big") * 10


def plan_txs(seed: int, jobs: int) -> list[tuple[bytes, TxKind, dict[str, object]]]:
    """The requesters' deposits and enqueues: `jobs` AI jobs, 50 per requester."""
    n_req = max(1, -(-jobs // JOBS_PER_REQUESTER))
    txs: list[tuple[bytes, TxKind, dict[str, object]]] = [
        (requester(r), TxKind.DEPOSIT, {"to": requester(r), "amount": 10**12}) for r in range(n_req)
    ]
    for i in range(jobs):
        body: dict[str, object] = {
            "model": MODEL,
            "prompt": b"replica-%d-%d" % (seed, i),
            "max_tokens": 64,
            "max_runtime_ms": 1000,
            "fee_per_unit": 20_000,
            "tier": 0,
        }
        txs.append((requester(i // JOBS_PER_REQUESTER), TxKind.AI_ENQUEUE, body))
    return txs


def _as_bytes(value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"expected bytes from the database, got {type(value).__name__}")
    return bytes(value)


# -- the shared chain ---------------------------------------------------------------------------------------
_TO_MEMPOOL = "INSERT INTO replica_mempool (sender, kind, body) VALUES (%s, %s, %s)"
PROOF_SENDER = b"\x0c" * 20  # who sends the accepted proofs' inclusion transactions


@dataclass
class SharedChain:
    """A devnet whose blocks and mempool live in PostgreSQL; a ChainView and a ChainWriter."""

    url: str
    config: DevnetConfig
    conn: psycopg.Connection[tuple[object, ...]] = field(init=False)
    devnet: Devnet = field(init=False)
    outbox: list[bytes] = field(default_factory=list)  # proof transactions waiting for `flush`

    def __post_init__(self) -> None:
        self.conn = psycopg.connect(self.url, autocommit=True)
        with self.conn.transaction():  # concurrent CREATE TABLE IF NOT EXISTS can collide in pg_type: serialize
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            for ddl in DDL:
                self.conn.execute(ddl)
        self.devnet = Devnet(self.config)
        self.devnet.blocks.clear()

    # ChainView
    @property
    def chain_id(self) -> int:
        return self.config.chain_id

    def head_height(self) -> int:
        return self.devnet.head_height()

    def block_at(self, height: int) -> Block | None:
        return self.devnet.block_at(height)

    def finalized_height(self) -> int:
        return self.devnet.finalized_height()

    # ChainWriter
    def include_proof(self, body: Mapping[str, object]) -> None:
        """Queued, and sent with the round's others by `flush` (as a node client batches its transactions). A
        replica killed before its flush loses them: the sweep of a surviving replica sends them again."""
        self.outbox.append(cbor2.dumps(dict(body)))

    def flush(self) -> int:
        """Send the queued proof transactions to the mempool together."""
        sent, self.outbox = self.outbox, []
        if sent:
            with self.conn.cursor() as cur:
                cur.executemany(_TO_MEMPOOL, [(PROOF_SENDER, TxKind.PROOF.value, body) for body in sent])
        return len(sent)

    def submit(self, kind: TxKind, body: Mapping[str, object], sender: bytes) -> None:
        self.conn.execute(_TO_MEMPOOL, (sender, kind.value, cbor2.dumps(dict(body))))

    # driving it
    def start_wall_ms(self) -> int | None:
        row = self.conn.execute("SELECT value FROM replica_meta WHERE key = 'start_wall_ms'").fetchone()
        return None if row is None else int(str(row[0]))

    def setup(self, coord: Coordinator, seed: int, jobs: int, providers: int) -> bool:
        """Genesis, the plan's transactions, the providers staked: once, by whichever replica comes first."""
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            if self.conn.execute("SELECT 1 FROM replica_blocks WHERE height = 0").fetchone() is not None:
                return False
            genesis = Devnet(self.config).blocks[0]
            self.conn.execute("INSERT INTO replica_blocks VALUES (0, %s)", (encode_block(genesis),))
            for sender, kind, body in plan_txs(seed, jobs):
                self.submit(kind, body, sender)
            for i in range(providers):
                p = coord.register(public_key(provider_key(seed, i)), Capabilities(kinds=("ai",), models=(MODEL,)))
                coord.deposit_stake(p.provider_id, 1_000_000_000, source="external")
            self.conn.execute("INSERT INTO replica_meta VALUES ('start_wall_ms', %s)", (_wall_ms(),))
        return True

    def refresh(self) -> None:
        rows = self.conn.execute(
            "SELECT data FROM replica_blocks WHERE height > %s ORDER BY height", (self.devnet.head_height(),)
        ).fetchall()
        self.devnet.blocks.extend(decode_block(_as_bytes(r[0])) for r in rows)

    def mine_due(self, now: int) -> int:
        """Mine every block due by `now` (under the chain lock); returns how many this replica mined."""
        self.refresh()
        head = self.devnet.blocks[-1]
        if head.time + self.config.interval_s > now:
            return 0
        known = len(self.devnet.blocks)
        try:
            return self._mine_locked(now)
        except BaseException:
            del self.devnet.blocks[known:]  # what the rolled-back transaction mined is on no one's chain
            raise

    def _mine_locked(self, now: int) -> int:
        mined = 0
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            self.refresh()
            while self.devnet.blocks[-1].time + self.config.interval_s <= now:
                rows = self.conn.execute(
                    "SELECT seq, sender, kind, body FROM replica_mempool ORDER BY seq LIMIT %s",
                    (self.config.max_txs_per_block,),
                ).fetchall()
                self.devnet.mempool.clear()
                for seq, sender, kind, body in rows:
                    self.devnet.nonce = int(str(seq))
                    self.devnet.submit(_as_bytes(sender), TxKind(str(kind)), cbor2.loads(_as_bytes(body)))
                (block,) = self.devnet.mine(1)
                self.conn.execute("INSERT INTO replica_blocks VALUES (%s, %s)", (block.height, encode_block(block)))
                if rows:  # exactly the rows taken: a lower seq committed late is still waiting for its block
                    self.conn.execute("DELETE FROM replica_mempool WHERE seq = ANY(%s)", ([r[0] for r in rows],))
                mined += 1
        return mined


# -- one replica --------------------------------------------------------------------------------------------
@dataclass
class Replica:
    store: Store
    chain: SharedChain
    clock: ScaledClock
    seed: int
    providers: int
    params: Params = PARAMS
    match_limit: int = 100
    shard: tuple[int, int] = (0, 1)  # (i, n): serve the providers whose index is i mod n
    operator: Ed25519PrivateKey = field(default_factory=lambda: operator_key())
    stats: Counter[str] = field(default_factory=Counter)
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))  # wall seconds per phase
    keys: dict[bytes, Ed25519PrivateKey] = field(default_factory=dict)
    last_heartbeat: dict[bytes, int] = field(default_factory=dict)
    pending: dict[bytes, tuple[bytes, bytes]] = field(default_factory=dict)  # lease id -> (provider, task)
    event_seq: int = 0  # the last jobAssigned event looked at
    coord: Coordinator = field(init=False)
    operator_pub: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.coord = make_coordinator(self.store, self.clock, self.params, self.operator, self.chain)
        self.operator_pub = public_key(self.operator)
        for i in range(self.shard[0], self.providers, self.shard[1]):
            key = provider_key(self.seed, i)
            self.keys[provider_id(public_key(key))] = key

    def round(self, rng: random.Random, deadline: float = float("inf")) -> int:
        """Mine what is due, ingest, sweep, match, heartbeat and prove; returns how much work was done."""
        work = self.chain.mine_due(self.clock.now())
        self.stats["mined"] += work
        work += self._timed(
            "ingest",
            lambda: len(
                ingest_available(
                    self.store, self.chain, self.params, _depth, operator_key=self.operator_pub, wait=False
                )
            ),
        )
        self._timed("sweep", lambda: self.coord.sweep().expired)
        work += self._timed("match", self._match)
        self._timed("events", self._assigned)
        # Providers heartbeat on their interval (the heartbeat lists their leases) and learn of new leases from
        # jobAssigned events, whichever replica granted them, as an agent subscribed to /ws would.
        now = self.clock.now()
        pids = list(self.keys)
        rng.shuffle(pids)
        for pid in pids:
            if now - self.last_heartbeat.get(pid, -(10**9)) < self.params.heartbeat_interval_s // 2:
                continue
            self.last_heartbeat[pid] = now
            with self._phase("heartbeat"):
                for lease in self._guard_list(pid):
                    self.pending.setdefault(lease.lease_id, (pid, lease.task_id))
        # the providers fetch their jobs (as nextLease would hand them over): one read for the round's leases
        pending = list(self.pending.items())
        with self._phase("proof"):
            jobs = self._jobs([task for _, (_, task) in pending])
        envelopes: list[dict[str, object]] = []
        for lid, (pid, task) in pending:
            if time.monotonic() > deadline:
                break
            del self.pending[lid]
            job = jobs.get(task)
            if job is not None and job.status is JobStatus.LEASED:
                envelopes.append(proof_envelope(self.keys[pid], pid, lid, job))
        for at in range(0, len(envelopes), MAX_PROOF_GROUP):  # the round's proofs in groups, one commit each
            work += self._timed("proof", partial(self._prove, envelopes[at : at + MAX_PROOF_GROUP]))
        self._timed("proof", self.chain.flush)  # the accepted proofs' inclusions, to the mempool together
        return work

    def _jobs(self, tasks: list[bytes]) -> dict[bytes, Job]:
        if not tasks:
            return {}
        with self.store.transaction() as tx:
            return tx.get_jobs(tasks)

    def _match(self) -> int:
        return sum(d.winner is not None for d in self.coord.match(limit=self.match_limit))

    def _assigned(self) -> int:
        """Queue the leases granted to this replica's providers since the last look (the jobAssigned events)."""
        with self.store.transaction() as tx:
            events = tx.events_since(self.event_seq, ["jobAssigned"], 10_000)
        for event in events:
            self.event_seq = event.seq
            data = cbor2.loads(event.data)
            pid, lid, task = data.get("provider_id"), data.get("lease_id"), data.get("task_id")
            if pid in self.keys and isinstance(lid, bytes) and isinstance(task, bytes):
                self.pending.setdefault(lid, (pid, task))
        return len(events)

    def _timed(self, what: str, call: Callable[[], int]) -> int:
        with self._phase(what):
            return self._guard(what, call)

    @contextmanager
    def _phase(self, what: str) -> Iterator[None]:
        """Add the wall time of the block to the phase `what` (the replica's report)."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[what] += time.monotonic() - started

    def _guard(self, what: str, call: Callable[[], int]) -> int:
        try:
            return call()
        except AicfError as exc:  # a race another replica won: retried on the next round
            self.stats[f"{what} {type(exc).__name__}"] += 1
            log.info("%s: %s", what, exc)
            return 0

    def _guard_list(self, pid: bytes) -> list[LeaseRecord]:
        try:
            return list(self.coord.heartbeat(pid))
        except AicfError as exc:
            self.stats[f"heartbeat {type(exc).__name__}"] += 1
            return []

    def _prove(self, envelopes: list[dict[str, object]]) -> int:
        for outcome in self.coord.submit_proofs(envelopes):
            code = type(outcome).__name__ if isinstance(outcome, AicfError) else outcome.code
            self.stats[f"proof {code}"] += 1
        return len(envelopes)

    def done(self, jobs: int) -> bool:
        with self.store.transaction() as tx:
            counts = tx.job_counts()
        final = sum(n for s, n in counts.items() if s in FINAL_STATUSES and s is not JobStatus.VERIFIED)
        return final >= jobs and not counts.get(JobStatus.VERIFIED)


def _depth(_: bytes) -> int:
    return 1


def make_coordinator(
    store: Store, clock: Clock, params: Params, operator: Ed25519PrivateKey, chain: ChainWriter
) -> Coordinator:
    """A replica's coordinator: the bootstrap's, pinning the plan's one model; no quantum traps are planted."""
    config = CoordinatorConfig(
        params=params,
        operator_key=operator,
        model_digests={MODEL: MODEL_DIGEST},
        trap_secret=b"replica-secret",
        trap_seed=lambda e: bytes(32),
    )
    return build_coordinator(config, store=store, clock=clock, chain_writer=chain)


def make_coordinator_for(store: Store, clock: Clock, params: Params, chain: ChainWriter) -> Coordinator:
    """A coordinator with the replicas' operator key (benchmarks drive one in-process)."""
    return make_coordinator(store, clock, params, operator_key(), chain)


def proof_envelope(key: Ed25519PrivateKey, pid: bytes, lid: bytes, job: Job) -> dict[str, object]:
    """An honest provider's signed AI_V1 envelope for a job of the plan (the answer is derived from the prompt)."""
    prompt = decode_request(job)["prompt"]
    if not isinstance(prompt, bytes):
        raise TypeError("a plan's job carries its prompt as bytes")
    output = b"answer to " + prompt
    body = {
        "model_id": MODEL,
        "model_digest": MODEL_DIGEST,
        "input_digest": input_digest(prompt),
        "output_digest": output_digest(output),
        "output": output,
        "qos": {"runtime_ms": 700, "tokens": 3},
    }
    env = ProofEnvelope(
        version=1, kind="AI_V1", task_id=job.task_id, lease_id=lid, provider_id=pid, body=body, sig=bytes(64)
    )
    return {**env.to_map(), "sig": sign_envelope(key, env)}


def wait_for_jobs(url: str, statuses: frozenset[JobStatus], at_least: int, timeout_s: float) -> int:
    """Poll the store until `at_least` jobs are in `statuses` (or the timeout); returns the last count seen."""
    store = open_store(url)
    stop = threading.Event()
    deadline = time.monotonic() + timeout_s
    seen = 0
    try:
        while time.monotonic() < deadline:
            with store.transaction() as tx:
                seen = sum(n for s, n in tx.job_counts().items() if s in statuses)
            if seen >= at_least:
                break
            stop.wait(0.1)
    finally:
        store.close()
    return seen


def run(
    url: str,
    *,
    seed: int,
    jobs: int,
    providers: int,
    speed: int,
    limit_s: float,
    match_limit: int = 100,
    shard: tuple[int, int] = (0, 1),
) -> dict[str, object]:
    started = time.monotonic()
    store = open_store(url)
    chain = SharedChain(url, DevnetConfig(seed=seed, genesis_time=GENESIS, interval_s=INTERVAL_S, issuance=10**12))
    setup_clock = ScaledClock(_wall_ms(), GENESIS, speed)
    operator = operator_key()
    chain.setup(make_coordinator(store, setup_clock, PARAMS, operator, chain), seed, jobs, providers)
    start = chain.start_wall_ms()
    assert start is not None
    clock = ScaledClock(start, GENESIS, speed)
    replica = Replica(store, chain, clock, seed, providers, match_limit=match_limit, shard=shard, operator=operator)
    rng = random.Random()  # noqa: S311  (the order this replica visits providers in; not security)
    idle = threading.Event()
    code = 2
    try:
        while time.monotonic() - started < limit_s:
            replica.stats["rounds"] += 1
            if replica.round(rng, started + limit_s) == 0:
                if replica.done(jobs):
                    code = 0
                    break
                idle.wait(0.02)
    finally:
        store.close()
        chain.conn.close()
    phases = {f"s_{k}": round(v, 2) for k, v in replica.seconds.items()}
    return {"exit": code, "seconds": round(time.monotonic() - started, 2), **replica.stats, **phases}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/replica.py", description=__doc__.split("\n")[0])
    ap.add_argument("--db", required=True, help="postgresql://… (all replicas share it)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--providers", type=int, default=20)
    ap.add_argument("--speed", type=int, default=10, help="virtual seconds per wall second")
    ap.add_argument(
        "--match-limit", type=int, default=100, help="jobs per matcher pass (short rounds keep leases fresh)"
    )
    ap.add_argument(
        "--serve", default="0/1", help="i/n: heartbeat and prove for providers i, i+n, … (default all of them)"
    )
    ap.add_argument("--limit-s", type=float, default=80.0, help="give up (exit 2) after this many wall seconds")
    args = ap.parse_args(argv)
    i, _, n = args.serve.partition("/")
    logging.basicConfig(level=logging.WARNING)
    result = run(args.db, seed=args.seed, jobs=args.jobs, providers=args.providers, speed=args.speed,
                 limit_s=args.limit_s, match_limit=args.match_limit, shard=(int(i), int(n)))  # fmt: skip
    sys.stdout.write(json.dumps(result) + "\n")
    return int(str(result["exit"]))


if __name__ == "__main__":
    sys.exit(main())
