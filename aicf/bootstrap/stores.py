"""The store a URL names: `memory:`, `sqlite:///path/to/file.db` (default ./var/aicf.db), `postgresql://…`."""

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from aicf.store.interface import Store, StoreUnavailableError
from aicf.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from aicf.store.postgres import PostgresStore

DEFAULT_DB = "sqlite:///var/aicf.db"
DB_ENV = "AICF_DB"


def default_db_url() -> str:
    return os.environ.get(DB_ENV, DEFAULT_DB)


class _Versioned(Store, Protocol):
    def schema_version(self) -> int: ...
    def migrate(self, target: int | None = None) -> int: ...


def open_store(url: str | None = None, *, migrate_to: int | None = None, must_exist: bool = False) -> Store:
    """Open (and migrate) the store a URL names. Raises StoreUnavailableError with what to do.

    With `must_exist` (the read-only commands: `db verify`, `db digest`) a database that does not exist or
    holds no aicf schema is refused instead of being created."""
    url = url or default_db_url()
    check_url(url)
    if url in ("memory:", "memory://"):
        if must_exist:
            raise StoreUnavailableError("memory: is a new empty database", "name the database to check with --db")
        return SqliteStore(":memory:", migrate_to=migrate_to)  # a fresh database: the same SQL as a file
    if url.startswith("sqlite://"):
        path, _, query = _sqlite_parts(url)
        read_only = query == "mode=ro"  # sqlite:///path.db?mode=ro opens the file read-only
        if must_exist and not Path(path).is_file():
            raise StoreUnavailableError(
                f"no database at {Path(path).resolve()}", "check the path (--db sqlite:///path/to/aicf.db)"
            )
        store: _Versioned = SqliteStore(path, read_only=read_only, migrate_to=0 if must_exist else migrate_to)
    else:  # postgresql:// or postgres://
        store = _open_postgres(url, 0 if must_exist else migrate_to)
    if must_exist:
        found = store.schema_version()
        if found == 0:
            store.close()
            raise StoreUnavailableError(f"{url} holds no aicf database", "point --db at the database aicf up used")
        store.migrate(None)
    return store


def _open_postgres(url: str, migrate_to: int | None) -> "PostgresStore":
    try:
        from aicf.store.postgres import PostgresStore
    except ImportError as exc:  # the optional extra is missing
        raise StoreUnavailableError(
            f"PostgreSQL support is not installed ({exc})", "pip install 'aicf[postgres]'"
        ) from exc
    try:
        return PostgresStore(url, migrate_to=migrate_to)
    except StoreUnavailableError as exc:
        raise postgres_unavailable(url, exc) from exc


_MISSING_DATABASE = re.compile(r'database "(?P<name>[^"]+)" does not exist')


def postgres_unavailable(url: str, exc: StoreUnavailableError) -> StoreUnavailableError:
    """One line that tells a server that does not answer from one that answers without the database named
    (libpq reports both as a failed connection; the server's own FATAL message names the missing database)."""
    cause = " ".join(str(exc.__cause__ or "").split())
    missing = _MISSING_DATABASE.search(cause)
    if missing is not None:
        name = missing["name"]
        return StoreUnavailableError(
            f"PostgreSQL at {_server(url)} answers, but the database {name!r} does not exist",
            f"create it (createdb {name}) or fix --db; nothing was written",
        )
    return StoreUnavailableError(" ".join(exc.what.split()), " ".join(exc.hint.split()))


def _server(url: str) -> str:
    """host:port of a PostgreSQL URL, for messages (never the password)."""
    import psycopg
    from psycopg import conninfo

    try:
        parts = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:  # a URL libpq cannot parse: name no server
        return "the URL given"
    return f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}"


def check_url(url: str) -> None:
    """Refuse a database URL of no known form, or a PostgreSQL URL whose port is no number, before anything is
    created (libpq would report the port as a server that does not answer)."""
    if url.startswith(("postgresql://", "postgres://")):
        netloc = urlsplit(url).netloc
        if "," not in netloc:  # one host; a libpq multi-host list is left to libpq
            port = netloc.rpartition("@")[2].rpartition("]")[2].partition(":")[2]
            if port and not port.isdigit():
                raise StoreUnavailableError(
                    f"bad database URL {url!r}: the port {port!r} is not a number", "use postgresql://user@host:port/db"
                )
        return
    if url in ("memory:", "memory://") or url.startswith("sqlite://"):
        return
    raise StoreUnavailableError(
        f"unknown database URL {url!r}", "use memory:, sqlite:///path/to/file.db or postgresql://user@host:port/db"
    )


def _sqlite_parts(url: str) -> tuple[str, str, str]:
    """sqlite:///relative/path.db and sqlite:////absolute/path.db, as SQLAlchemy spells them: (path, ?, query)."""
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url.removeprefix("sqlite://")
    path, sep, query = path.partition("?")
    return path or "var/aicf.db", sep, query


def sqlite_path(url: str) -> Path | None:
    """The file a sqlite:// URL names (None for any other URL)."""
    return Path(_sqlite_parts(url)[0]) if url.startswith("sqlite://") else None
