"""Coordinator lifecycle benchmarks (issue 5, item 8). Prints markdown tables.

Run: .venv/bin/python benchmarks/bench_lifecycle.py [--jobs N] [--skip-replicas] [--skip-assign]

1. Full lifecycle, in one process with a fake clock: N AI jobs enqueued on the devnet → ingested and QUEUED →
   matched and leased → proofs submitted and verified (no TEE) → inclusions ingested (VERIFIED) → the epoch's
   batch settled. Only the coordinator's work is timed (ingest, match, heartbeat + proof, settlement ingest);
   mining the devnet is not. On SQLite (a tmp file) and PostgreSQL (a fresh schema).
2. PostgreSQL with 1, 2 and 4 replica processes (`python -m aicf.devtools.replica`, a scaled clock of 10 virtual s per
   wall s, replica i serving providers i mod n): wall time from the first lease to every job past SUBMITTED
   (the coordinator-bound part) and to every job SETTLED (which waits for blocks, the epoch boundary and its
   finality: chain time, not work).
3. Assignment latency with 1,000 providers and 100,000 queued jobs on SQLite: `Coordinator.match(limit=1)`
   timed per call (one assignment each), and `match(limit=500)` per assignment (the pass amortizes the
   provider scan).

Params as in aicf.devtools.replica: Γ = 1,000,000 (a provider's bucket admits its 4 leases in one pass), devnet
issuance 10^12 per block (the budget throttle is off), epochs of 60 s, availability not checked.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from aicf.chain.devnet import Devnet, DevnetConfig
from aicf.core.chain import TxKind
from aicf.core.clock import FixedClock
from aicf.core.jobs import JobStatus
from aicf.devtools.replica import (
    GENESIS,
    MODEL,
    PARAMS,
    PROOF_SENDER,
    make_coordinator_for,
    operator_key,
    plan_txs,
    proof_envelope,
    provider_key,
    public_key,
)
from aicf.service.coordinator import Capabilities
from aicf.service.ingest import ingest_available
from aicf.store.interface import Store
from aicf.store.sqlite import SqliteStore

PROVED = (JobStatus.SUBMITTED, JobStatus.VERIFIED, JobStatus.SETTLED)
PG_DSN = os.environ.get("AICF_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def _depth(_: bytes) -> int:
    return 1


class Timer:
    def __init__(self) -> None:
        self.phases: dict[str, float] = {}

    def run(self, phase: str, call: Callable[[], object]) -> object:
        started = time.perf_counter()
        out = call()
        self.phases[phase] = self.phases.get(phase, 0.0) + time.perf_counter() - started
        return out


class DevnetWriter:
    def __init__(self, devnet: Devnet) -> None:
        self.devnet = devnet

    def include_proof(self, body: object) -> None:
        self.devnet.submit(PROOF_SENDER, TxKind.PROOF, body)  # type: ignore[arg-type]

    def submit(self, kind: TxKind, body: object, sender: bytes) -> None:
        self.devnet.submit(sender, kind, body)  # type: ignore[arg-type]


def lifecycle(store: Store, jobs: int, providers: int) -> tuple[float, dict[str, float]]:
    """Coordinator seconds for `jobs` jobs from enqueue to settlement, and the phases."""
    clock = FixedClock(GENESIS)
    devnet = Devnet(DevnetConfig(genesis_time=GENESIS, issuance=10**12))
    coord = make_coordinator_for(store, clock, PARAMS, DevnetWriter(devnet))
    op = public_key(operator_key())
    keys = {}
    for i in range(providers):
        key = provider_key(9, i)
        p = coord.register(public_key(key), Capabilities(kinds=("ai",), models=(MODEL,)))
        coord.deposit_stake(p.provider_id, 10**9, source="external")
        keys[p.provider_id] = key
    t = Timer()

    def mine(n: int) -> None:
        for _ in range(n):
            (block,) = devnet.mine(1)
            clock.set(block.time)
            t.run("ingest", lambda: ingest_available(store, devnet, PARAMS, _depth, operator_key=op))

    for sender, kind, body in plan_txs(9, jobs):
        devnet.submit(sender, kind, body)
    mine(7)  # enqueued, then final: QUEUED
    proved = 0
    while proved < jobs:
        clock.advance(1)
        t.run("match", lambda: coord.match(limit=1000))
        for pid, key in keys.items():
            leases = t.run("heartbeat", lambda pid=pid: coord.heartbeat(pid))
            for lease in leases:  # type: ignore[attr-defined]
                with store.transaction() as tx:
                    job = tx.get_job(lease.task_id)
                assert job is not None
                env = proof_envelope(key, pid, lease.lease_id, job)
                outcome = t.run("proof", lambda env=env: coord.submit_proof(env))
                proved += outcome.accepted  # type: ignore[attr-defined]
    started = time.perf_counter()
    mine(1)  # the inclusions: VERIFIED
    t.phases["include"] = time.perf_counter() - started
    t.phases["ingest"] -= t.phases["include"]
    before = t.phases["ingest"]
    while True:
        with store.transaction() as tx:
            if tx.job_counts().get(JobStatus.SETTLED, 0) == jobs:
                break
        mine(1)
    t.phases["settle (ingest up to the batch)"] = t.phases["ingest"] - before
    t.phases["ingest"] = before
    return sum(t.phases.values()), t.phases


def _pg_store(schema: str) -> Store:
    from aicf.store.postgres import PostgresStore

    return PostgresStore(PG_DSN, schema=schema)


def _drop(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _pg_url(schema: str) -> str:
    sep = "&" if "?" in PG_DSN else "?"
    return f"{PG_DSN}{sep}options=-csearch_path%3D{schema}"


def bench_lifecycle(jobs: int, providers: int) -> None:
    print(f"\n### Full lifecycle, one process ({jobs} jobs, {providers} providers)\n")
    print("| store | jobs/s | total s | ingest | match | heartbeat | proof | include | settle |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        store = SqliteStore(Path(d) / "bench.db")
        total, ph = lifecycle(store, jobs, providers)
        store.close()
        _row("SQLite", jobs, total, ph)
    schema = "b_" + uuid.uuid4().hex[:12]
    try:
        pg = _pg_store(schema)
        total, ph = lifecycle(pg, jobs, providers)
        pg.close()
        _row("PostgreSQL", jobs, total, ph)
    finally:
        _drop(schema)


def _row(name: str, jobs: int, total: float, ph: dict[str, float]) -> None:
    cols = ["ingest", "match", "heartbeat", "proof", "include", "settle (ingest up to the batch)"]
    cells = " | ".join(f"{ph.get(c, 0.0):.2f}" for c in cols)
    print(f"| {name} | {jobs / total:.0f} | {total:.2f} | {cells} |")


def bench_replicas(jobs: int, providers: int, counts: list[int]) -> None:
    print(f"\n### PostgreSQL replicas ({jobs} jobs, {providers} providers, processes)\n")
    print("| replicas | first lease → all proved (s) | jobs/s (coordinator-bound) | → all settled (s) | exit codes |")
    print("|---|---|---|---|---|")
    from aicf.store.postgres import PostgresStore

    for n in counts:
        schema = "b_" + uuid.uuid4().hex[:12]
        PostgresStore(PG_DSN, schema=schema).close()
        url = _pg_url(schema)
        cmd = [
            sys.executable,
            "-m",
            "aicf.devtools.replica",
            "--db",
            url,
            "--jobs",
            str(jobs),
            "--providers",
            str(providers),
        ]
        cmd += ["--speed", "10", "--limit-s", "150", "--seed", "11"]
        procs = [
            subprocess.Popen([*cmd, "--serve", f"{i}/{n}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # noqa: S603
            for i in range(n)
        ]
        store = PostgresStore(url, min_size=1, max_size=1)
        tick = threading.Event()
        first = proved = settled = None
        started = time.perf_counter()
        try:
            while settled is None and time.perf_counter() - started < 160:
                with store.transaction() as tx:
                    c = tx.job_counts()
                now = time.perf_counter()
                if first is None and sum(
                    c.get(s, 0) for s in (JobStatus.LEASED, JobStatus.SUBMITTED, JobStatus.VERIFIED, JobStatus.SETTLED)
                ):
                    first = now
                if (
                    proved is None
                    and sum(c.get(s, 0) for s in (JobStatus.SUBMITTED, JobStatus.VERIFIED, JobStatus.SETTLED)) >= jobs
                ):
                    proved = now
                if c.get(JobStatus.SETTLED, 0) >= jobs:
                    settled = now
                tick.wait(0.05)
            codes = []
            for p in procs:
                try:
                    codes.append(p.wait(timeout=max(5.0, 170 - (time.perf_counter() - started))))
                except subprocess.TimeoutExpired:
                    codes.append(None)  # killed below: reported as did not finish
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                if p.stdout is not None:
                    p.stdout.close()
            store.close()
            _drop(schema)
        if first is None or proved is None:
            print(f"| {n} | did not finish | | | {codes} |")
            continue
        span = proved - first
        end = f"{settled - first:.1f}" if settled else "—"
        print(f"| {n} | {span:.2f} | {jobs / span:.0f} | {end} | {codes} |")


def bench_assign(providers: int, queued: int, calls: int) -> None:
    print(f"\n### Assignment latency ({providers} providers, {queued} queued jobs, SQLite)\n")
    with tempfile.TemporaryDirectory() as d:
        store = SqliteStore(Path(d) / "assign.db")
        clock = FixedClock(GENESIS)
        devnet = Devnet(DevnetConfig(genesis_time=GENESIS, issuance=10**12))
        coord = make_coordinator_for(store, clock, PARAMS, DevnetWriter(devnet))
        op = public_key(operator_key())
        started = time.perf_counter()
        for sender, kind, body in plan_txs(21, queued):
            devnet.submit(sender, kind, body)
        for _ in range(queued // 10_000 + 8):
            (block,) = devnet.mine(1)
            clock.set(block.time)
            ingest_available(store, devnet, PARAMS, _depth, operator_key=op)
        pids = []
        for i in range(providers):
            p = coord.register(public_key(provider_key(21, i)), Capabilities(kinds=("ai",), models=(MODEL,)))
            coord.deposit_stake(p.provider_id, 10**9, source="external")
            coord.heartbeat(p.provider_id)
            pids.append(p.provider_id)
        with store.transaction() as tx:
            n_queued = tx.job_counts().get(JobStatus.QUEUED, 0)
        seed_s = time.perf_counter() - started
        one: list[float] = []
        for _ in range(calls):
            t0 = time.perf_counter()
            (decision,) = coord.match(limit=1)
            one.append(time.perf_counter() - t0)
            assert decision.winner is not None
        cold: list[float] = []  # each call right after a registry change: the profiles and the pool are rebuilt
        for i in range(min(calls, 20)):
            coord.deposit_stake(pids[i], 1, source="external")
            t0 = time.perf_counter()
            (decision,) = coord.match(limit=1)
            cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        decisions = coord.match(limit=500)
        batch_s = time.perf_counter() - t0
        won = sum(d.winner is not None for d in decisions)
        store.close()
    one.sort()
    p50 = statistics.median(one) * 1000
    p95 = one[int(0.95 * (len(one) - 1))] * 1000
    print(f"seeded {n_queued} QUEUED jobs and {len(pids)} providers in {seed_s:.1f} s\n")
    print("| measure | p50 ms | p95 ms | per assignment ms |")
    print("|---|---|---|---|")
    print(f"| match(limit=1), {calls} calls | {p50:.1f} | {p95:.1f} | {p50:.1f} |")
    cold.sort()
    print(
        f"| match(limit=1) right after a registry change, {len(cold)} calls | {statistics.median(cold) * 1000:.1f} "
        f"| {cold[int(0.95 * (len(cold) - 1))] * 1000:.1f} | |"
    )
    print(f"| match(limit=500), one pass ({won} assigned) | | | {batch_s * 1000 / max(won, 1):.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--providers", type=int, default=100)
    ap.add_argument("--replica-jobs", type=int, default=1000)
    ap.add_argument("--replicas", default="1,2,4")
    ap.add_argument("--queued", type=int, default=100_000)
    ap.add_argument("--assign-providers", type=int, default=1000)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--skip-lifecycle", action="store_true")
    ap.add_argument("--skip-replicas", action="store_true")
    ap.add_argument("--skip-assign", action="store_true")
    args = ap.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")
    if not args.skip_lifecycle:
        bench_lifecycle(args.jobs, args.providers)
    if not args.skip_replicas:
        bench_replicas(args.replica_jobs, args.providers, [int(x) for x in args.replicas.split(",")])
    if not args.skip_assign:
        bench_assign(args.assign_providers, args.queued, args.calls)


if __name__ == "__main__":
    main()
