"""The SQLite backend: one file in WAL mode, the embedded default.

One connection, serialized by a lock; every transaction starts with BEGIN IMMEDIATE, so it holds the write
lock from its first statement and two coordinator processes on one file queue instead of deadlocking.
Reads (`read_transaction`) use a second, query-only connection and a deferred BEGIN: they take no write lock.
`synchronous=NORMAL` in WAL mode survives a killed process (the crash tests SIGKILL it) and loses at most
the last commits on a power cut; `durable=True` selects FULL.
"""

import os
import resource
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from aicf.core.jobs import JobStatus
from aicf.core.ledger import NegativeBalanceError
from aicf.core.records import LeaseRecord
from aicf.store import rows
from aicf.store.interface import ConcurrentUpdateError, SchemaError, StoreUnavailableError
from aicf.store.sqlbase import Params, SqlTx
from aicf.store.sqlfiles import load_migrations, load_queries

_Q = load_queries("sqlite")
_IN_CHUNK = 500  # ids bound in one IN list (SQLite's limit on bound parameters is far above)


MIN_FREE_BYTES = 1 << 20  # less free space than this beside the database file is a full disk


def _write_fault(path: str) -> str:
    """Why a write failed that SQLite reports only as "disk I/O error": "read-only" or "full" when the file
    system says so (a read-only mount, a file or folder that cannot be written, e.g. chmod or chattr +i, less than
    MIN_FREE_BYTES free, or the process's file size limit RLIMIT_FSIZE reached), else ""."""
    if path == ":memory:":
        return ""
    db = Path(path)
    files = [f for f in (db, Path(path + "-wal"), Path(path + "-shm")) if f.exists()]
    try:
        fs = os.statvfs(db.parent)
        if fs.f_flag & os.ST_RDONLY or not all(os.access(f, os.W_OK) for f in [db.parent, *files]):
            return "read-only"
        if fs.f_bavail * fs.f_frsize < MIN_FREE_BYTES:
            return "full"
        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        if soft != resource.RLIM_INFINITY and any(f.stat().st_size + 65_536 > soft for f in files):
            return "full"
    except OSError:
        return ""
    return ""


def _unavailable(path: str, exc: sqlite3.Error) -> StoreUnavailableError:
    text = str(exc)
    fault = "read-only" if "readonly" in text or "read-only" in text else ""
    fault = fault or ("full" if "is full" in text else "") or (_write_fault(path) if "I/O error" in text else "")
    if fault == "read-only":
        return StoreUnavailableError(
            f"the database is read-only: the SQLite database {path} cannot be written ({text})",
            "nothing was written; make the file, its -wal and -shm files and its folder writable again (aicf goes on "
            "by itself) or use another --db",
        )
    if fault == "full":
        return StoreUnavailableError(
            f"disk full: the SQLite database {path} cannot grow ({text})",
            "nothing was written; free space on its file system (aicf goes on by itself)",
        )
    if "locked" in text or "busy" in text:
        return StoreUnavailableError(
            f"the SQLite database {path} is locked by another process ({text})",
            "nothing was written; stop the other writer or retry",
        )
    return StoreUnavailableError(
        f"the SQLite database {path} cannot be used ({text})",
        "nothing was written; check the path, the disk space and the file permissions",
    )


class SqliteTx(SqlTx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__()
        self._conn = conn

    def _run(self, name: str, params: Params) -> sqlite3.Cursor:
        try:
            return self._conn.execute(_Q[name], params)
        except sqlite3.IntegrityError as exc:
            raise _integrity(name, exc) from exc

    def _one(self, name: str, params: Params) -> rows.Row | None:
        row: rows.Row | None = self._run(name, params).fetchone()
        return row

    def _all(self, name: str, params: Params) -> list[rows.Row]:
        return list(self._run(name, params).fetchall())

    def _exec(self, name: str, params: Params) -> int:
        return self._run(name, params).rowcount

    def _many(self, name: str, params: Sequence[Params]) -> None:
        if not params:
            return
        try:
            self._conn.executemany(_Q[name], params)
        except sqlite3.IntegrityError as exc:
            raise _integrity(name, exc) from exc

    def commit(self) -> None:
        self._conn.execute("COMMIT")
        self.committed = True

    def append_events(self, events: Sequence[tuple[str, bytes]], time: int) -> list[int]:
        """The counter moved once for all the events, then one executemany (a matcher pass appends one event
        per lease it grants: two statements per event showed in profiles, issue 18)."""
        if not events:
            return []
        row = self._one("take_event_seqs", {"n": len(events)})
        if row is None:
            raise SchemaError("the event counter row is missing: run aicf db migrate")
        base = rows.as_int(row[0]) - len(events)
        seqs = list(range(base + 1, base + 1 + len(events)))
        self._many(
            "insert_event",
            [
                {"seq": seq, "topic": topic, "data": data, "time": time}
                for seq, (topic, data) in zip(seqs, events, strict=True)
            ],
        )
        return seqs

    def leases_of_tasks(self, task_ids: Sequence[bytes]) -> dict[bytes, list[LeaseRecord]]:
        """`leases_of_task` for many tasks, a statement per _IN_CHUNK of them (SQLite has no array parameter)."""
        ids = list(dict.fromkeys(task_ids))
        out: dict[bytes, list[LeaseRecord]] = {}
        for at in range(0, len(ids), _IN_CHUNK):
            chunk = ids[at : at + _IN_CHUNK]
            sql = _Q["leases_of_tasks"].replace("IN (?)", "IN (" + ", ".join("?" * len(chunk)) + ")")
            for r in self._conn.execute(sql, chunk).fetchall():
                lease = rows.lease_of(r)
                out.setdefault(lease.task_id, []).append(lease)
        return out

    def move_jobs(
        self, task_ids: Sequence[bytes], frm: JobStatus, to: JobStatus, reason: str, height: int | None, time: int
    ) -> int:
        """All guarded updates in one executemany; if any job was not in `frm`, undo them and go one by one so
        that only the jobs that really moved get a transition."""
        if not task_ids:
            return 0
        self._conn.execute("SAVEPOINT move_jobs")
        cur = self._conn.executemany(
            _Q["move_job"], [{"task_id": t, "from_status": frm.value, "to_status": to.value} for t in task_ids]
        )
        if cur.rowcount != len(task_ids):
            self._conn.execute("ROLLBACK TO move_jobs")
            self._conn.execute("RELEASE move_jobs")
            return super().move_jobs(task_ids, frm, to, reason, height, time)
        self._conn.execute("RELEASE move_jobs")
        self._many(
            "insert_transition",
            [
                {
                    "task_id": t,
                    "from_status": frm.value,
                    "to_status": to.value,
                    "reason": reason,
                    "height": height,
                    "time": time,
                }
                for t in task_ids
            ],
        )
        return len(task_ids)


def _integrity(name: str, exc: sqlite3.IntegrityError) -> Exception:
    if "CHECK" in str(exc) and name in ("add_balance", "sub_balance"):
        return NegativeBalanceError("(an account)", 0, 0)
    return ConcurrentUpdateError(f"{name}: {exc}")


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit the open transaction first)."""
    out: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip() and not all(ln.strip().startswith("--") or not ln.strip() for ln in pending.splitlines()):
        raise SchemaError(f"migration ends with an incomplete statement: {pending.strip()[:60]!r}")
    return out


def _create_private(path: Path) -> None:
    """Create the database file empty with mode 0600 unless it exists: it holds unrevealed trap records, and SQLite
    gives the -wal and -shm files it creates beside it the database file's mode. An existing file keeps its mode."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _schema_version(conn: sqlite3.Connection) -> int:
    if conn.execute(_Q["has_schema_version"]).fetchone() is None:
        return 0
    row = conn.execute(_Q["schema_version"]).fetchone()
    return int(row[0])


def _migrate(conn: sqlite3.Connection, path: str, target: int | None) -> int:
    """Apply the numbered migrations above the database's version up to `target` (None: the latest), each in its own
    transaction; returns the version reached. The caller holds the connection."""
    migrations = load_migrations("sqlite")
    latest = migrations[-1].version if target is None else target
    current = _schema_version(conn)
    if current > migrations[-1].version:
        raise SchemaError(
            f"{path} is at version {current}, this aicf knows up to {migrations[-1].version}: upgrade aicf"
        )
    for m in migrations:
        if current < m.version <= latest:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(_Q["create_schema_version"])
                if _schema_version(conn) < m.version:  # another process may have got there first
                    for statement in _statements(m.sql):
                        conn.execute(statement)
                    conn.execute(_Q["record_migration"], {"version": m.version, "name": m.name})
                conn.execute("COMMIT")
            except sqlite3.Error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
    return _schema_version(conn)


_MEMORY_TEMPLATES: dict[int | None, sqlite3.Connection] = {}  # migrate_to -> a migrated :memory: database
_MEMORY_TEMPLATES_LOCK = threading.Lock()


def _copy_migrated_memory(conn: sqlite3.Connection, migrate_to: int | None) -> None:
    """Fill a new :memory: database as `_migrate` would: a copy (SQLite's online backup) of one this process
    migrated once. Running every migration again took ~5 ms of CPU per store, and tests open hundreds."""
    with _MEMORY_TEMPLATES_LOCK:
        template = _MEMORY_TEMPLATES.get(migrate_to)
        if template is None:
            template = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            _migrate(template, ":memory:", migrate_to)
            _MEMORY_TEMPLATES[migrate_to] = template
        template.backup(conn)


class SqliteStore:
    def __init__(
        self, path: str | Path, *, durable: bool = False, read_only: bool = False, migrate_to: int | None = None
    ) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._read_only = read_only
        self._read_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None  # opened by the first read_transaction
        try:
            if read_only:
                target = Path(self.path).resolve().as_uri() + "?mode=ro"
                self._conn = sqlite3.connect(
                    target, uri=True, isolation_level=None, check_same_thread=False, timeout=10
                )
            else:
                if self.path != ":memory:":
                    Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                    _create_private(Path(self.path))
                self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailableError(
                f"cannot open the SQLite database {self.path} ({exc})", "check the path and its permissions"
            ) from exc
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=" + ("FULL" if durable else "NORMAL"))
            self._conn.execute("PRAGMA foreign_keys=ON")
            # A block of 1,000 enqueues dirties a few MB: keep it in cache, and checkpoint the WAL every ~64 MB
            # rather than every 4 MB (each checkpoint fsyncs the database file).
            self._conn.execute("PRAGMA cache_size=-65536")
            self._conn.execute("PRAGMA wal_autocheckpoint=16384")
            if self.path == ":memory:" and not read_only:
                _copy_migrated_memory(self._conn, migrate_to)
            else:
                self.migrate(migrate_to)
        except sqlite3.Error as exc:
            self._conn.close()
            raise _unavailable(self.path, exc) from exc
        except BaseException:
            self._conn.close()
            raise

    def schema_version(self) -> int:
        return _schema_version(self._conn)

    def migrate(self, target: int | None = None) -> int:
        """Apply the numbered migrations above the database's version, each in its own transaction."""
        with self._lock:
            return _migrate(self._conn, self.path, target)

    @contextmanager
    def transaction(self) -> Iterator[SqliteTx]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _unavailable(self.path, exc) from exc
            tx = SqliteTx(self._conn)
            try:
                yield tx
            except sqlite3.Error as exc:
                self._rollback()
                raise _unavailable(self.path, exc) from exc
            except BaseException:
                self._rollback()
                raise
            if not tx.committed:
                self._rollback()

    @contextmanager
    def read_transaction(self) -> Iterator[SqliteTx]:
        """Reads on their own query-only connection with a deferred BEGIN: a snapshot of the WAL that holds no
        write lock, so a slow read never blocks a writer (issue 15). `:memory:` and read-only stores read on the
        one connection, query-only for the duration."""
        if self.path == ":memory:" or self._read_only:
            with self._lock:
                yield from self._read_on(self._conn, shared=True)
            return
        with self._read_lock:
            if self._reader is None:
                try:
                    reader = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
                except sqlite3.Error as exc:
                    raise _unavailable(self.path, exc) from exc
                try:
                    reader.execute("PRAGMA query_only=ON")  # the reader only ever reads: set once (issue 18)
                except sqlite3.Error as exc:
                    reader.close()
                    raise _unavailable(self.path, exc) from exc
                self._reader = reader
            yield from self._read_on(self._reader, shared=False)

    def _read_on(self, conn: sqlite3.Connection, *, shared: bool) -> Iterator[SqliteTx]:
        """A read transaction on `conn`; a `shared` connection (the writer's) is query-only for its duration."""
        try:
            if shared:
                conn.execute("PRAGMA query_only=ON")
            conn.execute("BEGIN")
        except sqlite3.Error as exc:
            raise _unavailable(self.path, exc) from exc
        try:
            yield SqliteTx(conn)
        except sqlite3.Error as exc:
            raise _unavailable(self.path, exc) from exc
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if shared:
                conn.execute("PRAGMA query_only=OFF")

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def close(self) -> None:
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        with self._lock:
            self._conn.close()
