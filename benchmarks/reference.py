"""What every benchmark measures itself against, in the same process run (issue 18, item 3).

A figure alone says more about the machine's load than about the code: this 2-core machine is shared, and an
independent rerun got about half of the figures once recorded. So each benchmark runs a bare reference for the
same work beside its own measure, interleaved (ours, reference, ours, reference, ...) for `--runs` rounds, and
prints min / median / max of both and of their ratio, round by round, with the load average. The ratio is the
headline; the absolute rates only say how busy the machine was.

The bare queues are the lifecycle's reference: N rows, taken `batch` at a time, each taken batch marked done
and committed, until none is left.
- PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED` + `UPDATE` + `COMMIT`, by 1 or more worker threads (each
  its own connection), on a scratch schema dropped afterwards.
- SQLite: `BEGIN IMMEDIATE` + `SELECT` + `UPDATE` + `COMMIT`, one connection, WAL and synchronous=NORMAL as
  the store uses.
"""

import contextlib
import os
import sqlite3
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

PG_DSN = os.environ.get("AICF_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min)"


def rounds(n: int) -> str:
    return f"{n} round" if n == 1 else f"{n} rounds"


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """(min, median, max); raises on an empty list, since a row without a figure is a bug of the benchmark."""
    if not values:
        raise ValueError("spread of no values")
    return min(values), statistics.median(values), max(values)


def fmt_spread(values: Sequence[float], unit: str = "") -> str:
    lo, mid, hi = spread(values)
    return f"{lo:,.0f} / **{mid:,.0f}** / {hi:,.0f}{unit}"


def fmt_ratio(ours: Sequence[float], ref: Sequence[float]) -> str:
    """Round by round ours/ref (each pair ran side by side), as min / median / max percentages."""
    lo, mid, hi = spread(ratios(ours, ref))
    return f"{_pct(lo)} / **{_pct(mid)}** / {_pct(hi)}"


def _pct(x: float) -> str:
    return f"{x:.0%}" if x >= 0.1 else f"{x:.1%}"


def ratios(ours: Sequence[float], ref: Sequence[float]) -> list[float]:
    if len(ours) != len(ref):
        raise ValueError(f"{len(ours)} measures against {len(ref)} references: not paired")
    return [a / b for a, b in zip(ours, ref, strict=True)]


def interleave(runs: int, cases: Sequence[tuple[str, Callable[[], float]]]) -> dict[str, list[float]]:
    """Run every case once per round, in order, for `runs` rounds; each case returns its rate."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    out: dict[str, list[float]] = {name: [] for name, _ in cases}
    loads: list[float] = []
    for _ in range(runs):
        for name, case in cases:
            out[name].append(case())
        loads.append(os.getloadavg()[0])
    out["load"] = loads
    return out


def bare_sqlite_queue(path: Path, jobs: int, batch: int) -> float:
    """Jobs/s of a bare SQLite queue: a fresh database file at `path`, one connection."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE q (id INTEGER PRIMARY KEY, state INTEGER NOT NULL, payload BLOB, done_at INTEGER)")
        conn.execute("CREATE INDEX q_ready ON q (id) WHERE state = 0")
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO q VALUES (?, 0, ?, NULL)", ((i, b"p" * 96) for i in range(jobs)))
        conn.execute("COMMIT")
        done = 0
        started = time.perf_counter()
        while True:
            conn.execute("BEGIN IMMEDIATE")
            ids = [r[0] for r in conn.execute("SELECT id FROM q WHERE state = 0 ORDER BY id LIMIT ?", (batch,))]
            if not ids:
                conn.execute("COMMIT")
                break
            conn.executemany("UPDATE q SET state = 1, done_at = ? WHERE id = ?", ((done, i) for i in ids))
            conn.execute("COMMIT")
            done += len(ids)
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    if done != jobs:
        raise RuntimeError(f"bare SQLite queue took {done} of {jobs} jobs")
    return jobs / elapsed


def bare_pg_queue(jobs: int, workers: int, batch: int, dsn: str = PG_DSN) -> float:
    """Jobs/s of a bare SKIP LOCKED queue on a scratch schema of the PostgreSQL at `dsn`, `workers` threads."""
    import psycopg
    from psycopg import sql

    schema = sql.Identifier("bare_" + uuid.uuid4().hex[:12])
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
        try:
            admin.execute(
                sql.SQL(
                    "CREATE TABLE {}.q (id bigint PRIMARY KEY, state smallint NOT NULL, payload bytea, done_at bigint)"
                ).format(schema)
            )
            admin.execute(sql.SQL("CREATE INDEX ON {}.q (id) WHERE state = 0").format(schema))
            with admin.cursor().copy(sql.SQL("COPY {}.q (id, state, payload) FROM STDIN").format(schema)) as copy:
                for i in range(jobs):
                    copy.write_row((i, 0, b"p" * 96))
            admin.execute(sql.SQL("ANALYZE {}.q").format(schema))
            return _drain_pg(dsn, schema, jobs, workers, batch)
        finally:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(schema))


def _drain_pg(dsn: str, schema: object, jobs: int, workers: int, batch: int) -> float:
    import psycopg
    from psycopg import sql

    take = sql.SQL("SELECT id FROM {}.q WHERE state = 0 ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED").format(schema)
    mark = sql.SQL("UPDATE {}.q SET state = 1, done_at = %s WHERE id = ANY(%s)").format(schema)
    ready = threading.Barrier(workers + 1)
    counts = [0] * workers
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            with psycopg.connect(dsn) as conn:
                ready.wait()
                while True:
                    ids = [r[0] for r in conn.execute(take, (batch,))]
                    if not ids:
                        conn.commit()
                        return
                    conn.execute(mark, (k, ids))
                    conn.commit()
                    counts[k] += len(ids)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread, which raises it
            errors.append(e)
            ready.abort()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a worker failed to connect: raised below
        ready.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    if sum(counts) != jobs:
        raise RuntimeError(f"bare SKIP LOCKED queue took {sum(counts)} of {jobs} jobs")
    return jobs / elapsed
