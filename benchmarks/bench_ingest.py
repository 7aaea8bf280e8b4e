"""Ingestion benchmark (issue 4, item 6): enqueue transactions ingested per second, blocks of 1,000 enqueues,
on SQLite and on PostgreSQL, against a bare INSERT of the same job rows on the same database.

Run: .venv/bin/python benchmarks/bench_ingest.py [--blocks N] [--per-block N] [--pg DSN] [--no-pg]

The devnet chain is built before the clock starts (its tx hashing is the chain's work, not ours). Timed: every
`ingest_next` call, i.e. for each block one store transaction that validates each request (SPEC §2 limits,
canonical CBOR payload, task id), checks balances, writes the jobs with their creation transitions, the escrow
entries and balances, the treasury income, and, from the 7th block on, moves the 1,000 jobs of the block that
became final PENDING → QUEUED with their transitions. The bare baseline writes only the job rows, one
transaction per block: "loop" runs one INSERT per row, "batched" hands the rows to executemany (SQLite) or
COPY (PostgreSQL) at once; the ratio is taken against the faster of the two. The open-jobs limit is lifted
(50 callers × hundreds of open jobs); everything else is SPEC's default params.
"""

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from aicf.chain.devnet import Devnet, DevnetConfig
from aicf.core.chain import TxKind
from aicf.core.params import Params, params_from_mapping
from aicf.service.audit import verify
from aicf.service.ingest import ingest_next
from aicf.store import rows
from aicf.store.interface import Store
from aicf.store.sqlfiles import load_queries
from aicf.store.sqlite import SqliteStore

CALLERS = 50
PARAMS = params_from_mapping({"max_open_jobs": 10**9}, Params.default())


def depth_stub(circuit: bytes) -> int:
    return 5


def build_chain(blocks: int, per_block: int) -> Devnet:
    net = Devnet(DevnetConfig(seed=7, max_txs_per_block=per_block + CALLERS))
    callers = [bytes([i]) * 20 for i in range(1, CALLERS + 1)]
    for c in callers:
        net.submit(c, TxKind.DEPOSIT, {"to": c, "amount": 10**15})
    net.mine()
    for b in range(blocks):
        for i in range(per_block):
            body: dict[str, object] = {
                "model": "llama3-8b",
                "prompt": b"benchmark prompt %d/%d" % (b, i),
                "max_tokens": 256,
                "max_runtime_ms": 2000,
                "fee_per_unit": 15000 + i % 7,
                "tier": 0,
            }
            net.submit(callers[i % CALLERS], TxKind.AI_ENQUEUE, body)
        net.mine()
    return net


def time_ingest(store: Store, net: Devnet) -> tuple[float, int]:
    ingest_next(store, net, PARAMS, depth_stub)  # genesis
    ingest_next(store, net, PARAMS, depth_stub)  # deposits
    jobs = 0
    start = time.perf_counter()
    while (step := ingest_next(store, net, PARAMS, depth_stub)) is not None:
        jobs += step.jobs
    return time.perf_counter() - start, jobs


def job_rows(store: Store) -> list[list[dict[str, object]]]:
    with store.transaction() as tx:
        jobs = tx.snapshot().jobs
    by_height: dict[int, list[dict[str, object]]] = {}
    for j in jobs:
        by_height.setdefault(j.enqueue_height, []).append(rows.job_params(j))
    return [by_height[h] for h in sorted(by_height)]


def bare_sqlite(path: Path, blocks: list[list[dict[str, object]]], batched: bool) -> float:
    store = SqliteStore(path)  # the same schema, indexes and pragmas
    conn = store._conn
    sql = load_queries("sqlite")["insert_job"]
    start = time.perf_counter()
    for block in blocks:
        conn.execute("BEGIN IMMEDIATE")
        if batched:
            conn.executemany(sql, block)
        else:
            for row in block:
                conn.execute(sql, row)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed


def bare_postgres(dsn: str, schema: str, blocks: list[list[dict[str, object]]], batched: bool) -> float:
    from aicf.store.postgres import PostgresStore

    store = PostgresStore(dsn, schema=schema)
    q = load_queries("postgres")
    start = time.perf_counter()
    with store._pool.connection() as conn:
        for block in blocks:
            with conn.transaction():
                if batched:
                    with conn.cursor() as cur, cur.copy(q["copy_jobs"]) as copy:
                        for row in block:
                            copy.write_row(tuple(row.values()))
                else:
                    for row in block:
                        conn.execute(q["insert_job"], row)
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed


def report(name: str, ingest_s: float, jobs: int, loop_s: float, batched_s: float) -> str:
    rate = jobs / ingest_s
    loop_rate, batched_rate = jobs / loop_s, jobs / batched_s
    return (
        f"| {name} | {jobs:,} | {rate:,.0f} | {loop_rate:,.0f} | {100 * rate / loop_rate:.0f}% "
        f"| {batched_rate:,.0f} | {100 * rate / batched_rate:.0f}% |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--per-block", type=int, default=1000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="Best of N fresh runs (the machine is shared).")
    args = parser.parse_args()
    net = build_chain(args.blocks, args.per_block)
    print(
        f"{args.blocks} blocks × {args.per_block} enqueues, {CALLERS} callers; "
        f"rates in enqueues/s, best of {args.repeat}\n"
    )
    print("| backend | enqueues | ingest /s | bare INSERT loop /s | ingest / loop | batched /s | ingest / batched |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        ingest_s, loop_s, batched_s, jobs = float("inf"), float("inf"), float("inf"), 0
        for r in range(args.repeat):
            store = SqliteStore(Path(tmp) / f"ingest{r}.db")
            took, jobs = time_ingest(store, net)
            ingest_s = min(ingest_s, took)
            if not verify(store).ok:
                raise SystemExit("sqlite: verify failed")
            blocks = job_rows(store)
            store.close()
            loop_s = min(loop_s, bare_sqlite(Path(tmp) / f"loop{r}.db", blocks, batched=False))
            batched_s = min(batched_s, bare_sqlite(Path(tmp) / f"batched{r}.db", blocks, batched=True))
        print(report("SQLite (WAL, synchronous=NORMAL)", ingest_s, jobs, loop_s, batched_s))
    if not args.no_pg:
        run_postgres(args.pg, net, args.repeat)


def run_postgres(dsn: str, net: Devnet, repeat: int) -> None:
    from aicf.store.postgres import PostgresStore

    schemas = ["bench_" + uuid.uuid4().hex[:10] for _ in range(3 * repeat)]
    drop: Callable[[], None] = lambda: _drop(dsn, schemas)  # noqa: E731
    try:
        ingest_s, loop_s, batched_s, jobs = float("inf"), float("inf"), float("inf"), 0
        for r in range(repeat):
            store = PostgresStore(dsn, schema=schemas[3 * r])
            took, jobs = time_ingest(store, net)
            ingest_s = min(ingest_s, took)
            if not verify(store).ok:
                raise SystemExit("postgres: verify failed")
            blocks = job_rows(store)
            store.close()
            loop_s = min(loop_s, bare_postgres(dsn, schemas[3 * r + 1], blocks, batched=False))
            batched_s = min(batched_s, bare_postgres(dsn, schemas[3 * r + 2], blocks, batched=True))
        print(report("PostgreSQL 15 (loopback)", ingest_s, jobs, loop_s, batched_s))
    finally:
        drop()


def _drop(dsn: str, schemas: list[str]) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        for s in schemas:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(s)))


if __name__ == "__main__":
    main()
