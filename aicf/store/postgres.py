"""The PostgreSQL backend (psycopg 3 with a connection pool): the store for several coordinator replicas.

Each transaction takes a pooled connection and ends with COMMIT only if `tx.commit()` ran, else ROLLBACK.
Ingestion takes a transaction-scoped advisory lock (`lock_ingest`), so replicas never ingest the same block
at once; everything else relies on guarded updates and unique constraints. Bulk writes use COPY (jobs,
transitions, ledger entries) and array parameters (balances, moves): one round trip per table per block.
"""

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import psycopg
import psycopg.errors
from psycopg import conninfo, pq, sql
from psycopg_pool import ConnectionPool, PoolTimeout

from aicf.core.chain import Job, ProofInclusion
from aicf.core.chain import Transition as JobTransition
from aicf.core.jobs import JobStatus
from aicf.core.ledger import EXTERNAL, NegativeBalanceError, Posting
from aicf.core.records import LeaseRecord, ProofRecord, ResultRecord
from aicf.core.settlement import Payout
from aicf.store import rows
from aicf.store.interface import ConcurrentUpdateError, SchemaError, StoreUnavailableError
from aicf.store.sqlbase import Params, SqlTx, acceptance_writes
from aicf.store.sqlfiles import load_migrations, load_queries

_Q = load_queries("postgres")
Conn = psycopg.Connection[tuple[object, ...]]


def _hint(dsn: str) -> str:
    return f"nothing was written; check that PostgreSQL answers at {_redacted(dsn)} and that the role may write"


def _redacted(dsn: str) -> str:
    """The DSN without a password, for messages."""
    try:
        info = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "the configured DSN"
    info.pop("password", None)
    return " ".join(f"{k}={v}" for k, v in sorted(info.items()) if k in ("host", "port", "dbname", "user"))


def _mapped(name: str, exc: psycopg.Error, dsn: str) -> Exception:
    if isinstance(exc, psycopg.errors.CheckViolation) and name.endswith("balances"):
        return NegativeBalanceError("(an account)", 0, 0)
    if isinstance(exc, psycopg.errors.IntegrityError | psycopg.errors.SerializationFailure):
        return ConcurrentUpdateError(f"{name}: {exc}")
    if isinstance(exc, psycopg.errors.DeadlockDetected):
        return ConcurrentUpdateError(f"{name}: {exc}")
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction | psycopg.errors.InsufficientPrivilege):
        return StoreUnavailableError(f"PostgreSQL refused the write ({exc})", _hint(dsn))
    return StoreUnavailableError(f"PostgreSQL failed: {exc}", _hint(dsn))


class PostgresTx(SqlTx):
    _claim_ready_query = "claim_ready_jobs"
    _lock_provider_query = "lock_provider"

    def __init__(self, conn: Conn, dsn: str) -> None:
        super().__init__()
        self._conn = conn
        self._dsn = dsn

    def _cur(self, name: str, params: Params) -> psycopg.Cursor[tuple[object, ...]]:
        try:
            return self._conn.execute(_Q[name], params, prepare=True)
        except psycopg.Error as exc:
            raise _mapped(name, exc, self._dsn) from exc

    def _one(self, name: str, params: Params) -> rows.Row | None:
        return self._cur(name, params).fetchone()

    def _all(self, name: str, params: Params) -> list[rows.Row]:
        return list(self._cur(name, params).fetchall())

    def _pipelined(self, calls: Sequence[tuple[str, Params]]) -> list[psycopg.Cursor[tuple[object, ...]]]:
        """The calls in one pipeline: sent together, answered together (one round trip instead of one each)."""
        name = calls[0][0] if calls else ""
        try:
            with self._conn.pipeline():
                cursors = []
                for name, params in calls:
                    cursors.append(self._conn.execute(_Q[name], params, prepare=True))
            return cursors
        except psycopg.Error as exc:
            raise _mapped(name, exc, self._dsn) from exc

    def _alls(self, calls: Sequence[tuple[str, Params]]) -> list[list[rows.Row]]:
        return [list(cur.fetchall()) for cur in self._pipelined(calls)]

    def _execs(self, calls: Sequence[tuple[str, Params]]) -> list[int]:
        return [cur.rowcount for cur in self._pipelined(calls)]

    def _exec(self, name: str, params: Params) -> int:
        return self._cur(name, params).rowcount

    def _many(self, name: str, params: Sequence[Params]) -> None:
        if not params:
            return
        try:
            with self._conn.cursor() as cur:
                cur.executemany(_Q[name], params)
        except psycopg.Error as exc:
            raise _mapped(name, exc, self._dsn) from exc

    def _copy(self, name: str, records: Iterable[Sequence[object]]) -> None:
        try:
            with self._conn.cursor() as cur, cur.copy(_Q[name]) as copy:
                for record in records:
                    copy.write_row(record)
        except psycopg.Error as exc:
            raise _mapped(name, exc, self._dsn) from exc

    def commit(self) -> None:
        try:
            self._conn.commit()
        except psycopg.Error as exc:
            raise _mapped("commit", exc, self._dsn) from exc
        self.committed = True

    def lock_ingest(self, *, wait: bool = True) -> bool:
        if wait:
            self._exec("lock_ingest", {})
            return True
        row = self._one("try_lock_ingest", {})
        return row is not None and bool(row[0])

    def lock_devnet(self) -> None:
        self._exec("lock_devnet", {})

    # -- bulk paths --------------------------------------------------------------------------------------
    def insert_jobs(self, jobs: Sequence[Job]) -> None:
        if jobs:
            self._copy("copy_jobs", (tuple(rows.job_params(j).values()) for j in jobs))

    def move_jobs(
        self, task_ids: Sequence[bytes], frm: JobStatus, to: JobStatus, reason: str, height: int | None, time: int
    ) -> int:
        if not task_ids:
            return 0
        moved = self._all("move_jobs", {"task_ids": list(task_ids), "from_status": frm.value, "to_status": to.value})
        done = {rows.as_bytes(r[0]) for r in moved}
        self._copy(
            "copy_transitions",
            ((t, frm.value, to.value, reason, height, time) for t in task_ids if t in done),
        )
        return len(done)

    def open_job_counts(self, callers: Iterable[bytes]) -> dict[bytes, int]:
        wanted = list(dict.fromkeys(callers))
        out = dict.fromkeys(wanted, 0)
        if wanted:
            for r in self._all("open_job_counts", {"callers": wanted}):
                out[rows.as_bytes(r[0])] = rows.as_int(r[1])
        return out

    def balances(self, accounts: Iterable[str]) -> dict[str, int]:
        wanted = list(dict.fromkeys(accounts))
        out = dict.fromkeys(wanted, 0)
        if wanted:
            for r in self._all("balances_of", {"accounts": wanted}):
                out[rows.as_str(r[0])] = rows.as_int(r[1])
        return out

    def _write_entries(self, postings: Sequence[Posting], block_height: int | None, time: int) -> None:
        self._copy(
            "copy_entries", ((p.debit, p.credit, p.amount, p.ref_kind, p.ref, block_height, time) for p in postings)
        )

    def _add_balances(self, deltas: dict[str, int]) -> None:
        up = [(a, d) for a, d in deltas.items() if d > 0 or a == EXTERNAL]
        down = [(a, d) for a, d in deltas.items() if d < 0 and a != EXTERNAL]
        if up:
            self._exec("add_balances", {"accounts": [a for a, _ in up], "deltas": [d for _, d in up]})
        if down:
            self._exec("sub_balances", {"accounts": [a for a, _ in down], "deltas": [d for _, d in down]})

    # -- the coordinator's tables --------------------------------------------------------------------------
    # -- one round trip where SQLite takes several cheap statements ------------------------------------
    def move_job(
        self, task_id: bytes, frm: JobStatus, to: JobStatus, reason: str, height: int | None, time: int
    ) -> bool:
        transition = JobTransition(task_id=task_id, frm=frm, to=to, reason=reason, height=height, time=time)
        return self._exec("move_job_logged", rows.transition_params(transition)) == 1

    def accept_proof(self, proof: ProofRecord, time: int) -> bool:
        moved, writes = acceptance_writes(proof, time)
        return self._execs([("move_job_logged", rows.transition_params(moved)), *writes]) == [1, 1, 1]

    def lease_job(self, lease: LeaseRecord, time: int) -> bool:
        return self._exec("lease_job_logged", {**rows.lease_params(lease), "time": time}) == 1

    def append_event(self, topic: str, data: bytes, time: int) -> int:
        row = self._one("append_event", {"topic": topic, "data": data, "time": time})
        if row is None:
            raise SchemaError("the event counter row is missing: run aicf db migrate")
        return rows.as_int(row[0])

    def _write_payouts(self, payouts: Sequence[Payout]) -> None:
        if payouts:
            self._copy("copy_payouts", (rows.payout_record(p, i) for i, p in enumerate(payouts)))

    def add_carried(self, task_ids: Sequence[bytes]) -> None:
        if task_ids:
            self._exec("add_carried_many", {"task_ids": list(task_ids)})

    def record_heartbeat(self, provider_id: bytes, slot: int, now: int, expires_at: int) -> list[LeaseRecord] | None:
        params = {"provider_id": provider_id, "slot": slot, "now": now, "expires_at": expires_at}
        found = self._all("record_heartbeat", params)
        if not found:
            return None
        return [rows.lease_of(r) for r in found if r[0] is not None]

    def heartbeat_slots_of(self, provider_ids: Sequence[bytes], first: int, last: int) -> dict[bytes, list[int]]:
        out: dict[bytes, list[int]] = {p: [] for p in provider_ids}
        if out:
            params = {"provider_ids": list(out), "first": first, "last": last}
            for r in self._all("heartbeat_slots_of", params):
                slots = r[1]
                if not isinstance(slots, list):
                    raise SchemaError(f"heartbeat_slots_of: expected an array of slots, got {type(slots).__name__}")
                out[rows.as_bytes(r[0])] = [rows.as_int(slot) for slot in slots]
        return out

    def get_jobs(self, task_ids: Sequence[bytes]) -> dict[bytes, Job]:
        if not task_ids:
            return {}
        found = (rows.job_of(r) for r in self._all("get_jobs", {"task_ids": list(dict.fromkeys(task_ids))}))
        return {j.task_id: j for j in found}

    def proof_inclusions_of(self, task_ids: Sequence[bytes]) -> dict[bytes, ProofInclusion]:
        if not task_ids:
            return {}
        params = {"task_ids": list(dict.fromkeys(task_ids))}
        return {i.task_id: i for i in (rows.inclusion_of(r) for r in self._all("proof_inclusions_of", params))}

    def insert_proof_inclusions(self, inclusions: Sequence[ProofInclusion]) -> int:
        if not inclusions:
            return 0
        params = {
            "task_ids": [i.task_id for i in inclusions],
            "proof_ids": [i.proof_id for i in inclusions],
            "provider_ids": [i.provider_id for i in inclusions],
            "heights": [i.height for i in inclusions],
            "tx_indexes": [i.tx_index for i in inclusions],
            "tx_hashes": [i.tx_hash for i in inclusions],
            "producers": [i.producer for i in inclusions],
        }
        return self._exec("insert_proof_inclusions", params)

    def accepted_proofs_of(self, task_ids: Sequence[bytes]) -> dict[bytes, ProofRecord]:
        if not task_ids:
            return {}
        params = {"task_ids": list(dict.fromkeys(task_ids))}
        return {p.task_id: p for p in (rows.proof_of(r) for r in self._all("accepted_proofs_of", params))}

    def insert_results(self, results: Sequence[ResultRecord]) -> set[bytes]:
        if not results:
            return set()
        params = [rows.result_params(r) for r in results]
        columns = {plural: [p[key] for p in params] for key, plural in _RESULT_ARRAYS}
        return {rows.as_bytes(r[0]) for r in self._all("insert_results", columns)}

    def append_events(self, events: Sequence[tuple[str, bytes]], time: int) -> list[int]:
        if not events:
            return []
        params = {"topics": [t for t, _ in events], "datas": [d for _, d in events], "time": time}
        found = self._all("append_events", params)
        if not found:
            raise SchemaError("the event counter row is missing: run aicf db migrate")
        return sorted(rows.as_int(r[0]) for r in found)

    def leases_of_tasks(self, task_ids: Sequence[bytes]) -> dict[bytes, list[LeaseRecord]]:
        out: dict[bytes, list[LeaseRecord]] = {}
        if task_ids:
            for r in self._all("leases_of_tasks", {"task_ids": list(dict.fromkeys(task_ids))}):
                lease = rows.lease_of(r)
                out.setdefault(lease.task_id, []).append(lease)
        return out

    def _topics(self, topics: Sequence[str]) -> object:
        return list(topics)


_RESULT_ARRAYS = (  # rows.result_params key -> the insert_results array parameter
    ("task_id", "task_ids"),
    ("proof_id", "proof_ids"),
    ("kind", "kinds"),
    ("output_digest", "output_digests"),
    ("units_mu", "units_mus"),
    ("qos", "qoses"),
    ("block_height", "block_heights"),
    ("tx_index", "tx_indexes"),
    ("miner_id", "miner_ids"),
    ("provider_id", "provider_ids"),
)


def _configure(conn: Conn) -> None:
    """Keep every named query prepared: psycopg's default cache of 100 is below our query count, and the
    evictions re-prepared about 40 % of the statements of a lifecycle run."""
    conn.prepared_max = _PREPARED_MAX


_PREPARED_MAX = 4 * len(_Q)


def _rollback(conn: Conn) -> None:
    """ROLLBACK, keeping the connection's prepared statements.

    psycopg's `rollback()` also drops every prepared statement (DEALLOCATE ALL), for the case of a rolled-back
    DDL; our transactions run no DDL (migrations use their own), and read-only transactions end here too, so
    that re-prepared half the statements of a lifecycle run. A connection whose ROLLBACK fails is closed and
    the pool replaces it.
    """
    if conn.pgconn.transaction_status == pq.TransactionStatus.IDLE:
        return
    result = conn.pgconn.exec_(b"ROLLBACK")
    if result.status != pq.ExecStatus.COMMAND_OK:
        conn.close()


# The writer lock's connection from this side: a server that vanished is noticed within about 25 s (keepalives on
# an idle socket, tcp_user_timeout on unacknowledged data), so `held` says False instead of hanging.
_WRITER_KEEPALIVE = {
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "25000",
}


class PostgresWriterLock:
    """The writer lock (aicf.store.interface.WriterLock) as a session advisory lock on a connection of its own:
    held until `close` or until the session ends. PostgreSQL ends the session of a killed holder when its socket
    closes, so another replica takes the lock at its next try. A lost connection is a lost lock: `held` says
    False, and the next call connects again and tries to take it. The connection's application_name names the
    process (`aicf-writer-<pid>`), so `pg_locks` joined with `pg_stat_activity` shows who holds it."""

    def __init__(self, dsn: str, kwargs: dict[str, object]) -> None:
        self._dsn, self._kwargs = dsn, kwargs
        self._conn: Conn | None = None
        self._holding = False
        self._mutex = threading.Lock()

    def held(self) -> bool:
        with self._mutex:
            try:
                if self._conn is None or self._conn.closed:
                    self._holding = False
                    options = {**{k: str(v) for k, v in self._kwargs.items()}, **_WRITER_KEEPALIVE}
                    info = conninfo.make_conninfo(self._dsn, **options, application_name=f"aicf-writer-{os.getpid()}")
                    self._conn = psycopg.connect(info, autocommit=True)
                    self._conn.execute(_Q["writer_session_keepalive"])
                row = self._conn.execute(_Q["holds_writer_lock" if self._holding else "try_lock_writer"]).fetchone()
                self._holding = row is not None and bool(row[0])
            except psycopg.Error:
                self._drop()
            return self._holding

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None and not self._conn.closed and self._holding:
                with contextlib.suppress(psycopg.Error):  # the session ends below, which releases it too
                    self._conn.execute(_Q["unlock_writer"])
            self._drop()

    def _drop(self) -> None:
        self._holding = False
        if self._conn is not None:
            self._conn.close()
        self._conn = None


class PostgresStore:
    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 4,
        connect_timeout_s: int = 5,
        migrate_to: int | None = None,
    ) -> None:
        self.dsn = dsn
        kwargs: dict[str, object] = {"connect_timeout": connect_timeout_s}
        self._kwargs = kwargs  # the options of every connection (the writer lock's too)
        if schema is not None and not schema.replace("_", "").isalnum():
            raise SchemaError(f"schema name {schema!r} must be letters, digits and underscores")
        self._probe(dsn, schema, connect_timeout_s)  # fail fast, with the reason, before the pool retries
        if schema is not None:
            given = conninfo.conninfo_to_dict(dsn).get("options") or ""
            kwargs["options"] = f"{given} -c search_path={schema}".strip()
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            kwargs=kwargs,
            open=False,
            timeout=connect_timeout_s,
            configure=_configure,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout_s)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreUnavailableError(
                f"PostgreSQL does not answer at {_redacted(dsn)}", "start the server or fix --db; nothing was written"
            ) from exc
        try:
            self.migrate(migrate_to)
        except BaseException:
            self._pool.close()
            raise

    @staticmethod
    def _probe(dsn: str, schema: str | None, timeout_s: int) -> None:
        """Connect once: a server that is down or a wrong port fails here at once; creates `schema` if given."""
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=timeout_s) as conn:
                if schema is not None and conn.execute(_Q["has_schema"], {"schema": schema}).fetchone() is None:
                    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(
                f"PostgreSQL does not answer at {_redacted(dsn)} ({str(exc).strip()})",
                "start the server or fix --db; nothing was written",
            ) from exc
        except psycopg.Error as exc:
            raise _mapped("connect", exc, dsn) from exc

    def writer_lock(self) -> PostgresWriterLock:
        """A writer lock on a new connection of its own (not one of the pool's), not taken yet."""
        return PostgresWriterLock(self.dsn, self._kwargs)

    def schema_version(self) -> int:
        with self._pool.connection() as conn:
            return self._version(conn)

    @staticmethod
    def _version(conn: Conn) -> int:
        exists = conn.execute(_Q["has_schema_version"]).fetchone()
        if exists is None or not exists[0]:
            return 0
        row = conn.execute(_Q["schema_version"]).fetchone()
        return 0 if row is None else rows.as_int(row[0])

    def migrate(self, target: int | None = None) -> int:
        """Apply the migrations above the database's version, under an advisory lock, one transaction each."""
        migrations = load_migrations("postgres")
        latest = migrations[-1].version if target is None else target
        try:
            with self._pool.connection() as conn:
                if self._version(conn) >= latest:
                    if self._version(conn) > migrations[-1].version:
                        raise SchemaError(
                            f"the database is at version {self._version(conn)}, this aicf knows up to "
                            f"{migrations[-1].version}: upgrade aicf"
                        )
                    return self._version(conn)
                for m in migrations:
                    with conn.transaction():
                        conn.execute(_Q["lock_migrations"])
                        conn.execute(_Q["create_schema_version"])
                        row = conn.execute(_Q["schema_version"]).fetchone()
                        current = 0 if row is None else rows.as_int(row[0])
                        if current > migrations[-1].version:
                            raise SchemaError(
                                f"the database is at version {current}, this aicf knows up to "
                                f"{migrations[-1].version}: upgrade aicf"
                            )
                        if current < m.version <= latest:
                            conn.execute(m.sql.encode())
                            conn.execute(_Q["record_migration"], {"version": m.version, "name": m.name})
        except psycopg.Error as exc:
            raise _mapped("migrate", exc, self.dsn) from exc
        return self.schema_version()

    @contextmanager
    def transaction(self) -> Iterator[PostgresTx]:
        try:
            conn = self._pool.getconn()
        except PoolTimeout as exc:
            raise StoreUnavailableError(
                f"PostgreSQL does not answer at {_redacted(self.dsn)}", "start the server or fix --db"
            ) from exc
        tx = PostgresTx(conn, self.dsn)
        try:
            yield tx
        finally:
            if not tx.committed and not conn.closed:
                _rollback(conn)
            self._pool.putconn(conn)

    @contextmanager
    def read_transaction(self) -> Iterator[PostgresTx]:
        """READ ONLY and REPEATABLE READ: one snapshot for every query, no row locks, never committed."""
        with self.transaction() as tx:
            try:
                tx._conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            except psycopg.Error as exc:
                raise _mapped("read_transaction", exc, self.dsn) from exc
            yield tx

    def close(self) -> None:
        self._pool.close()
