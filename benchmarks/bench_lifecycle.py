"""Coordinator lifecycle benchmarks (issue 5, item 8; issue 18), each beside a bare queue. Prints markdown tables.

Run: .venv/bin/python benchmarks/bench_lifecycle.py [--jobs N] [--runs R] [--stores sqlite,postgres]
         [--replicas 1,2] [--growth 1000,10000] [--growth-100k] [--limit-s S]
         [--skip-lifecycle] [--skip-replicas] [--skip-assign] [--proof-path N]

Every measure runs with its reference (benchmarks/reference.py) in the same process run, interleaved, for R rounds
(default 3), and the tables give min / median / max of both and their ratio round by round, with the load average.
A lifecycle mines until the devnet's mempool is empty (a block takes at most 10,000 transactions) and stops with a
message saying how far it got once `--limit-s` wall seconds have passed.

1. Full lifecycle, in one process with a fake clock: N AI jobs enqueued on the devnet → ingested and QUEUED →
   matched and leased → proofs submitted and verified (no TEE) → inclusions ingested (VERIFIED) → the epoch's
   batch settled. Only the coordinator's work is timed (ingest, match, heartbeat + proof, settlement ingest);
   mining the devnet is not. On SQLite (a tmp file) beside a bare SQLite queue (batch 1 and 100), and on
   PostgreSQL (a fresh schema) beside a bare SKIP LOCKED queue (1 and 2 workers, batch 1 and 100).
2. PostgreSQL with 1 and 2 (`--replicas`) replica processes (`python benchmarks/replica.py`, a scaled clock of 10
   virtual s per wall s, replica i serving providers i mod n): wall time from the first lease to every job past
   SUBMITTED (the coordinator-bound part), beside the SKIP LOCKED queue with as many workers; the time to every
   job SETTLED (which waits for blocks, the epoch boundary and its finality: chain time, not work) is noted.
3. Growth (`--growth`): the one-process lifecycle at each size with `--growth-providers` (1,000) providers, each
   size in a fresh process: jobs/s and peak RSS (resource.getrusage) per size.
4. Proof path alone (`--proof-path N`): N leased jobs' honest proofs submitted in groups (`submit_proofs`, one
   commit per group of 256) beside the same proofs one at a time (`submit_proof`, a commit each) on a fresh store of
   the same kind, interleaved; the ratio is what grouping buys.
5. Assignment latency with 1,000 providers and 100,000 queued jobs on SQLite: `Coordinator.match(limit=1)`
   timed per call (one assignment each), and `match(limit=500)` per assignment (the pass amortizes the
   provider scan).

Params as in benchmarks/replica.py: Γ = 1,000,000 (a provider's bucket admits its 4 leases in one pass), devnet
issuance 10^12 per block (the budget throttle is off), epochs of 60 s, availability not checked.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from reference import PG_DSN, bare_pg_queue, bare_sqlite_queue, fmt_ratio, fmt_spread, interleave, load_average, rounds
from replica import (
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

from aicf.chain.devnet import Devnet, DevnetConfig
from aicf.core.chain import TxKind
from aicf.core.clock import FixedClock
from aicf.core.jobs import JobStatus
from aicf.service.coordinator import Capabilities
from aicf.service.ingest import ingest_available
from aicf.service.proof_groups import MAX_PROOF_GROUP
from aicf.service.proof_verdicts import ProofOutcome
from aicf.store.interface import Store
from aicf.store.sqlite import SqliteStore

PROVED = (JobStatus.SUBMITTED, JobStatus.VERIFIED, JobStatus.SETTLED)


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


class StalledError(RuntimeError):
    """The lifecycle passed its time limit: the message says where it stood."""


def _deadline(limit_s: float) -> Callable[[str], None]:
    stop = time.perf_counter() + limit_s

    def check(where: str) -> None:
        if time.perf_counter() > stop:
            raise StalledError(f"stopped after the time limit of {limit_s:.0f} s: {where}")

    return check


def lifecycle(
    store: Store, jobs: int, providers: int, limit_s: float = 900.0, block_cap: int = 10_000
) -> tuple[float, dict[str, float]]:
    """Coordinator seconds for `jobs` jobs from enqueue to settlement, and the phases.

    Mines until the mempool is empty (the devnet caps a block at `block_cap` transactions) and raises StalledError,
    naming where it stood, once `limit_s` wall seconds have passed."""
    check = _deadline(limit_s)
    clock = FixedClock(GENESIS)
    devnet = Devnet(DevnetConfig(genesis_time=GENESIS, issuance=10**12, max_txs_per_block=block_cap))
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

    def mine_out(what: str) -> None:
        """Mine until every pending transaction is in a block, then past finality."""
        while devnet.mempool:
            check(f"{len(devnet.mempool):,} {what} transactions still in the mempool")
            mine(1)
        mine(PARAMS.finality_depth)

    for sender, kind, body in plan_txs(9, jobs):
        devnet.submit(sender, kind, body)
    mine_out("enqueue")  # enqueued, then final: QUEUED
    proved = 0
    while proved < jobs:
        check(f"{proved:,} of {jobs:,} jobs proved")
        clock.advance(1)
        t.run("match", lambda: coord.match(limit=1000))
        envs: list[dict[str, object]] = []
        for pid, key in keys.items():
            leases = t.run("heartbeat", lambda pid=pid: coord.heartbeat(pid))
            with store.transaction() as tx:  # the providers' own work: not timed
                jobs_of = tx.get_jobs([lease.task_id for lease in leases])  # type: ignore[attr-defined]
            envs += [proof_envelope(key, pid, x.lease_id, jobs_of[x.task_id]) for x in leases]  # type: ignore[attr-defined]
        for at in range(0, len(envs), MAX_PROOF_GROUP):  # the proofs of a round, in groups (aicf.submitProofs)
            group = envs[at : at + MAX_PROOF_GROUP]
            outcomes = t.run("proof", lambda group=group: coord.submit_proofs(group))
            proved += sum(isinstance(o, ProofOutcome) and o.accepted for o in outcomes)  # type: ignore[attr-defined]
    before_include = t.phases["ingest"]
    mine_out("inclusion")  # the inclusions: VERIFIED
    t.phases["include"] = t.phases["ingest"] - before_include
    t.phases["ingest"] = before_include
    while True:
        with store.transaction() as tx:
            settled = tx.job_counts().get(JobStatus.SETTLED, 0)
        if settled == jobs:
            break
        check(f"{settled:,} of {jobs:,} jobs settled")
        mine(1)
    t.phases["settle (ingest up to the batch)"] = t.phases["ingest"] - before_include
    t.phases["ingest"] = before_include
    return sum(t.phases.values()), t.phases


def proof_path(store: Store, jobs: int, grouped: bool) -> float:
    """Proofs/s of the proof path alone: `jobs` jobs leased to jobs // 4 providers (4 leases each, one matcher
    pass), their honest envelopes built untimed, then submitted one at a time (`submit_proof`, a commit each) or
    in groups of MAX_PROOF_GROUP (`submit_proofs`, a commit per group)."""
    clock = FixedClock(GENESIS)
    devnet = Devnet(DevnetConfig(genesis_time=GENESIS, issuance=10**12))
    coord = make_coordinator_for(store, clock, PARAMS, DevnetWriter(devnet))
    op = public_key(operator_key())
    keys = {}
    for i in range(-(-jobs // 4)):
        key = provider_key(13, i)
        p = coord.register(public_key(key), Capabilities(kinds=("ai",), models=(MODEL,)))
        coord.deposit_stake(p.provider_id, 10**9, source="external")
        keys[p.provider_id] = key
    for sender, kind, body in plan_txs(13, jobs):
        devnet.submit(sender, kind, body)
    for _ in range(PARAMS.finality_depth + 2):
        (block,) = devnet.mine(1)
        clock.set(block.time)
        ingest_available(store, devnet, PARAMS, _depth, operator_key=op)
    clock.advance(1)
    for pid in keys:
        coord.heartbeat(pid)
    coord.match(limit=jobs)
    coord.match(limit=jobs)  # a second pass for the jobs whose draws the first refused
    envs: list[dict[str, object]] = []
    with store.transaction() as tx:
        for pid, key in keys.items():
            leases = tx.live_leases_of(pid)
            found = tx.get_jobs([x.task_id for x in leases])
            envs += [proof_envelope(key, pid, x.lease_id, found[x.task_id]) for x in leases]
    started = time.perf_counter()
    if grouped:
        results = [
            o
            for at in range(0, len(envs), MAX_PROOF_GROUP)
            for o in coord.submit_proofs(envs[at : at + MAX_PROOF_GROUP])
        ]
    else:
        results = [coord.submit_proof(env) for env in envs]
    elapsed = time.perf_counter() - started
    accepted = sum(isinstance(o, ProofOutcome) and o.accepted for o in results)
    if accepted != len(envs):
        raise StalledError(f"proof path: {accepted} of {len(envs)} proofs accepted")
    return len(envs) / elapsed  # a pass may leave a few jobs unleased (a draw refused): their proofs are not sent


def _proof_path_on(store_name: str, jobs: int, grouped: bool) -> float:
    if store_name == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            store = SqliteStore(Path(d) / "proofs.db")
            try:
                return proof_path(store, jobs, grouped)
            finally:
                store.close()
    schema = "b_" + uuid.uuid4().hex[:12]
    try:
        pg = _pg_store(schema)
        try:
            return proof_path(pg, jobs, grouped)
        finally:
            pg.close()
    finally:
        _drop(schema)


def bench_proof_path(jobs: int, runs: int, stores: list[str]) -> None:
    """Proofs in groups beside the same proofs one at a time, same store kind, interleaved, `runs` rounds."""
    print(f"\n### Proof path alone ({jobs:,} proofs, {jobs // 4:,} providers, {rounds(runs)})\n")
    print(f"at the start: {load_average()}\n")
    cases: list[tuple[str, Callable[[], float]]] = []
    for name in stores:
        cases.append((f"{name} grouped", lambda n=name: _proof_path_on(n, jobs, True)))  # type: ignore[misc]
        cases.append((f"{name} alone", lambda n=name: _proof_path_on(n, jobs, False)))  # type: ignore[misc]
    got = interleave(runs, cases)
    print(
        "| store | submit_proofs, groups of 256: proofs/s | submit_proof, one at a time: proofs/s | grouped / alone |"
    )
    print("|---|---|---|---|")
    for name in stores:
        label = "SQLite" if name == "sqlite" else "PostgreSQL"
        grouped, alone = got[f"{name} grouped"], got[f"{name} alone"]
        print(f"| {label} | {fmt_spread(grouped)} | {fmt_spread(alone)} | {fmt_ratio(grouped, alone)} |")
    print(f"\nload average (1 min) after each round: {', '.join(f'{x:.2f}' for x in got['load'])}\n")


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


def run_sqlite(jobs: int, providers: int, limit_s: float, phases: list[dict[str, float]]) -> float:
    with tempfile.TemporaryDirectory() as d:
        store = SqliteStore(Path(d) / "bench.db")
        try:
            total, ph = lifecycle(store, jobs, providers, limit_s)
        finally:
            store.close()
    phases.append(ph)
    return jobs / total


def run_postgres(jobs: int, providers: int, limit_s: float, phases: list[dict[str, float]]) -> float:
    schema = "b_" + uuid.uuid4().hex[:12]
    try:
        pg = _pg_store(schema)
        try:
            total, ph = lifecycle(pg, jobs, providers, limit_s)
        finally:
            pg.close()
    finally:
        _drop(schema)
    phases.append(ph)
    return jobs / total


def _bare_sqlite(jobs: int, batch: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        return bare_sqlite_queue(Path(d) / "bare.db", jobs, batch)


PHASES = ["ingest", "match", "heartbeat", "proof", "include", "settle (ingest up to the batch)"]


def bench_lifecycle(jobs: int, providers: int, runs: int, limit_s: float, stores: list[str]) -> None:
    """The lifecycle in one process beside the bare queues on the same store, interleaved, `runs` rounds."""
    print(f"\n### Full lifecycle, one process ({jobs:,} jobs, {providers:,} providers, {rounds(runs)})\n")
    print(f"at the start: {load_average()}\n")
    phases: dict[str, list[dict[str, float]]] = {"sqlite": [], "postgres": []}
    cases: list[tuple[str, Callable[[], float]]] = []
    refs: dict[str, list[str]] = {}
    if "sqlite" in stores:
        cases.append(("sqlite", lambda: run_sqlite(jobs, providers, limit_s, phases["sqlite"])))
        for batch in (1, 100):
            cases.append((f"bare SQLite queue, batch {batch}", lambda b=batch: _bare_sqlite(jobs, b)))  # type: ignore[misc]
        refs["sqlite"] = ["bare SQLite queue, batch 1", "bare SQLite queue, batch 100"]
    if "postgres" in stores:
        cases.append(("postgres", lambda: run_postgres(jobs, providers, limit_s, phases["postgres"])))
        refs["postgres"] = []
        for workers in (1, 2):
            for batch in (1, 100):
                name = f"SKIP LOCKED, {workers} worker{'s' if workers > 1 else ''}, batch {batch}"
                cases.append((name, lambda w=workers, b=batch: bare_pg_queue(jobs, w, b)))  # type: ignore[misc]
                refs["postgres"].append(name)
    got = interleave(runs, cases)
    print("jobs/s as min / **median** / max over the rounds; the ratio is taken round by round.\n")
    print("| store | lifecycle jobs/s | reference (same store, same run) | reference jobs/s | lifecycle / reference |")
    print("|---|---|---|---|---|")
    for store, names in refs.items():
        label = "SQLite" if store == "sqlite" else "PostgreSQL"
        for name in names:
            print(f"| {label} | {fmt_spread(got[store])} | {name} | {fmt_spread(got[name])} "
                  f"| {fmt_ratio(got[store], got[name])} |")  # fmt: skip
    print(f"\nload average (1 min) after each round: {', '.join(f'{x:.2f}' for x in got['load'])}\n")
    print("Coordinator seconds per phase (median over the rounds):\n")
    print("| store | " + " | ".join(PHASES) + " |")
    print("|---|" + "---|" * len(PHASES))
    for store, rows in phases.items():
        if rows:
            cells = " | ".join(f"{statistics.median(r.get(c, 0.0) for r in rows):.2f}" for c in PHASES)
            print(f"| {'SQLite' if store == 'sqlite' else 'PostgreSQL'} | {cells} |")


def replica_run(jobs: int, providers: int, n: int, notes: list[str]) -> float:
    """Jobs/s from the first lease to every job proved with `n` replica processes (0.0 if they did not finish)."""
    from aicf.store.postgres import PostgresStore

    schema = "b_" + uuid.uuid4().hex[:12]
    PostgresStore(PG_DSN, schema=schema).close()
    url = _pg_url(schema)
    cmd = [
        sys.executable,
        str(Path(__file__).with_name("replica.py")),
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
    codes: list[int | None] = []
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
            if proved is None and sum(c.get(s, 0) for s in PROVED) >= jobs:
                proved = now
            if c.get(JobStatus.SETTLED, 0) >= jobs:
                settled = now
            tick.wait(0.05)
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
        notes.append(f"{n} replicas did not finish (exit codes {codes})")
        return 0.0
    end = f"{settled - first:.1f} s" if settled else "not within 160 s"
    who = f"{n} replica{'s' if n > 1 else ''}"
    notes.append(f"{who}: first lease → all proved {proved - first:.2f} s, → all settled {end}, exit {codes}")
    return jobs / (proved - first)


def bench_replicas(jobs: int, providers: int, counts: list[int], runs: int) -> None:
    """Replica processes beside the bare SKIP LOCKED queue with as many workers, interleaved, `runs` rounds."""
    print(f"\n### PostgreSQL replicas ({jobs:,} jobs, {providers} providers, processes, {rounds(runs)})\n")
    print(f"at the start: {load_average()}\n")
    notes: list[str] = []
    cases: list[tuple[str, Callable[[], float]]] = []
    for n in counts:
        cases.append((f"replicas {n}", lambda n=n: replica_run(jobs, providers, n, notes)))  # type: ignore[misc]
        for batch in (1, 100):
            cases.append((f"bare {n} {batch}", lambda n=n, b=batch: bare_pg_queue(jobs, n, b)))  # type: ignore[misc]
    got = interleave(runs, cases)
    print(
        "| replicas | jobs/s, first lease → all proved | reference (same run) | reference jobs/s "
        "| replicas / reference |"
    )
    print("|---|---|---|---|---|")
    for n in counts:
        for batch in (1, 100):
            ref = f"bare {n} {batch}"
            name = f"SKIP LOCKED, {n} worker{'s' if n > 1 else ''}, batch {batch}"
            print(f"| {n} | {fmt_spread(got[f'replicas {n}'])} | {name} | {fmt_spread(got[ref])} "
                  f"| {fmt_ratio(got[f'replicas {n}'], got[ref])} |")  # fmt: skip
    print(f"\nload average (1 min) after each round: {', '.join(f'{x:.2f}' for x in got['load'])}\n")
    for note in notes:
        print(f"- {note}")


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


def growth_child(jobs: int, providers: int, store_name: str, limit_s: float) -> None:
    """One size in a process of its own, so its peak RSS is its own; prints one JSON line."""
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    phases: list[dict[str, float]] = []
    try:
        run = run_sqlite if store_name == "sqlite" else run_postgres
        rate = run(jobs, providers, limit_s, phases)
    except StalledError as e:
        print(json.dumps({"stalled": str(e)}))
        return
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rate": rate, "total": sum(phases[0].values()), "base_mb": base_mb, "peak_mb": peak_mb}))


def bench_growth(sizes: list[int], providers: int, store_name: str, limit_s: float) -> None:
    """Throughput and peak memory per size, each size in a fresh process."""
    label = "SQLite" if store_name == "sqlite" else "PostgreSQL"
    print(f"\n### Growth ({label}, one process, {providers:,} providers, each size in a fresh process)\n")
    print(f"at the start: {load_average()}\n")
    print("| jobs | jobs/s | coordinator s | peak RSS MB | over the start MB | per job KB | load (1 min) after |")
    print("|---|---|---|---|---|---|---|")
    for jobs in sizes:
        cmd = [sys.executable, __file__, "--child-growth", str(jobs), "--growth-providers", str(providers)]
        cmd += ["--growth-store", store_name, "--limit-s", str(limit_s)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603 - our own script
        if done.returncode != 0 or not done.stdout.strip():
            print(f"| {jobs:,} | failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]} | | | | | |")
            continue
        out = json.loads(done.stdout.strip().splitlines()[-1])
        if "stalled" in out:
            print(f"| {jobs:,} | {out['stalled']} | | | | | |")
            continue
        grown = out["peak_mb"] - out["base_mb"]
        print(f"| {jobs:,} | {out['rate']:,.0f} | {out['total']:.1f} | {out['peak_mb']:,.0f} | {grown:,.0f} "
              f"| {grown * 1024 / jobs:.1f} | {os.getloadavg()[0]:.2f} |")  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Coordinator lifecycle benchmarks, each beside a bare queue.")
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--providers", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3, help="interleaved rounds of each measure and its reference")
    ap.add_argument("--stores", default="sqlite,postgres", help="the one-process lifecycle's stores")
    ap.add_argument("--limit-s", type=float, default=900.0, help="a lifecycle run stops with a message past this")
    ap.add_argument("--replica-jobs", type=int, default=1000)
    ap.add_argument("--replicas", default="1,2")
    ap.add_argument("--growth", default="", help="sizes for the growth table, e.g. 1000,10000 (off by default)")
    ap.add_argument("--growth-100k", action="store_true", help="add 100,000 jobs to the growth sizes")
    ap.add_argument("--growth-providers", type=int, default=1000)
    ap.add_argument("--growth-store", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--child-growth", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--queued", type=int, default=100_000)
    ap.add_argument("--assign-providers", type=int, default=1000)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--skip-lifecycle", action="store_true")
    ap.add_argument("--skip-replicas", action="store_true")
    ap.add_argument("--skip-assign", action="store_true")
    ap.add_argument("--proof-path", type=int, default=0, help="also time N proofs grouped beside one at a time")
    args = ap.parse_args(argv)
    stores = [x for x in args.stores.split(",") if x]
    if not stores or set(stores) - {"sqlite", "postgres"}:
        ap.error(f"--stores: sqlite and/or postgres, got {args.stores!r}")
    args.stores = stores
    if args.jobs < 1 or args.runs < 1 or args.providers < 1:
        ap.error("--jobs, --runs and --providers must be at least 1")
    if args.limit_s <= 0:
        ap.error(f"--limit-s must be positive, got {args.limit_s}")
    args.growth = [int(x) for x in args.growth.split(",") if x] + ([100_000] if args.growth_100k else [])
    args.replicas = [int(x) for x in args.replicas.split(",") if x]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child_growth:
        growth_child(args.child_growth, args.growth_providers, args.growth_store, args.limit_s)
        return
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")
    try:
        if args.proof_path:
            bench_proof_path(args.proof_path, args.runs, args.stores)
        if not args.skip_lifecycle:
            bench_lifecycle(args.jobs, args.providers, args.runs, args.limit_s, args.stores)
        if args.growth:
            bench_growth(args.growth, args.growth_providers, args.growth_store, args.limit_s)
        if not args.skip_replicas:
            bench_replicas(args.replica_jobs, args.providers, args.replicas, args.runs)
        if not args.skip_assign:
            bench_assign(args.assign_providers, args.queued, args.calls)
    except StalledError as e:
        raise SystemExit(str(e)) from e


if __name__ == "__main__":
    main()
