"""The SQL of each backend, read once: `sql/queries.sql` (the queries both dialects run, written once) plus the
dialect's overlay `sql/<backend>.sql`, and the migrations in `sql/<backend>/migrations/`.

Every query file binds parameters one way, `:name` (SQLite's style); `:name!b` asks psycopg for a binary
parameter. `{table}` stands for a table's column list (aicf.store.tables), expanded first. For PostgreSQL the
loader then translates `:name` to psycopg's `%(name)s` / `%(name)b`, doubling any other `%`; comment lines are
dropped there, so a comment naming a parameter never becomes a placeholder.
"""

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from aicf.store.interface import SchemaError
from aicf.store.tables import expand_columns

_HEADER = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# `:name` not preceded by `:` or a word character (`::bigint` casts and `a:b` inside words stay as they are)
_PLACEHOLDER = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)(!b)?")
BACKENDS = ("sqlite", "postgres")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def parse_queries(text: str) -> dict[str, str]:
    """Split a queries file on its `-- name: <query>` headers. Raises SchemaError on a repeated name."""
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise SchemaError(f"query {name!r} is defined twice")
        queries[name] = body.strip()
    return queries


def merge_queries(common: dict[str, str], overlay: dict[str, str], backend: str) -> dict[str, str]:
    """The common queries plus a dialect's own. Raises SchemaError on a name both define."""
    twice = sorted(common.keys() & overlay.keys())
    if twice:
        raise SchemaError(f"{backend}.sql redefines the common queries {', '.join(twice)}")
    return {**common, **overlay}


def to_sqlite(sql: str) -> str:
    """SQLite binds `:name` itself; a binary marker means nothing to it."""
    return _PLACEHOLDER.sub(lambda m: ":" + m[1], sql)


def to_psycopg(sql: str) -> str:
    """`:name` → `%(name)s`, `:name!b` → `%(name)b`, any other `%` doubled; comment lines dropped."""
    code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return _PLACEHOLDER.sub(lambda m: f"%({m[1]}){'b' if m[2] else 's'}", code.replace("%", "%%"))


def _read(name: str) -> str:
    return resources.files("aicf.store").joinpath("sql", name).read_text(encoding="utf-8")


@cache
def load_queries(backend: str) -> dict[str, str]:
    if backend not in BACKENDS:
        raise SchemaError(f"no SQL dialect {backend!r}: expected one of {', '.join(BACKENDS)}")
    merged = merge_queries(parse_queries(_read("queries.sql")), parse_queries(_read(f"{backend}.sql")), backend)
    translate = to_psycopg if backend == "postgres" else to_sqlite
    return {name: translate(expand_columns(sql)) for name, sql in merged.items()}


@cache
def load_migrations(backend: str) -> tuple[Migration, ...]:
    """The numbered migrations, in order; versions must run 1, 2, 3… without a gap."""
    folder = resources.files("aicf.store").joinpath("sql", backend, "migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise SchemaError(f"{backend} migrations: expected version {expected}, found {migration.version}")
    return tuple(found)
