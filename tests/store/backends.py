"""Open a fresh store of each backend for a test. PostgreSQL: each store gets its own schema, dropped after.

The DSN comes from AICF_TEST_PG_DSN, else postgresql://postgres@127.0.0.1:5432/test. Without a server the
test is skipped with the reason, unless AICF_REQUIRE_POSTGRES=1, which makes it fail instead.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from aicf.store.interface import Store
from aicf.store.sqlite import SqliteStore

PG_DSN = os.environ.get("AICF_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite-memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def memory_store() -> SqliteStore:
    """A fresh SQLite `:memory:` database: the fast store of tests, running the same SQL as a file or a server."""
    return SqliteStore(":memory:")


def require_postgres() -> None:
    import psycopg

    try:
        psycopg.connect(PG_DSN, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        reason = f"no PostgreSQL answers at {PG_DSN} ({str(exc).strip()}); set AICF_TEST_PG_DSN"
        if os.environ.get("AICF_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " (AICF_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A database of its own (`prefix`_…) on the test server, dropped afterwards; yields its URL. For what needs a
    whole database rather than a schema: processes that migrate it themselves, locks held per database."""
    require_postgres()
    import psycopg
    from psycopg import sql

    name = prefix + "_" + uuid.uuid4().hex[:12]
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlsplit(PG_DSN)._replace(path="/" + name, query="").geturl()
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def new_schema() -> str:
    return "t_" + uuid.uuid4().hex[:16]


def drop_schema(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def pg_url(schema: str) -> str:
    """A DSN whose connections use `schema` (what `aicf … --db` takes in the subprocess tests)."""
    sep = "&" if "?" in PG_DSN else "?"
    return f"{PG_DSN}{sep}options=-csearch_path%3D{schema}"


@contextmanager
def open_test_store(kind: str, tmp_path: Path, *, migrate_to: int | None = None) -> Iterator[Store]:
    if kind in ("sqlite", "sqlite-memory"):
        path = ":memory:" if kind == "sqlite-memory" else tmp_path / f"{uuid.uuid4().hex[:8]}.db"
        store = SqliteStore(path, migrate_to=migrate_to)
        try:
            yield store
        finally:
            store.close()
    elif kind == "postgres":
        require_postgres()
        from aicf.store.postgres import PostgresStore

        schema = new_schema()
        pg = PostgresStore(PG_DSN, schema=schema, migrate_to=migrate_to)
        try:
            yield pg
        finally:
            pg.close()
            drop_schema(schema)
    else:
        raise ValueError(kind)
