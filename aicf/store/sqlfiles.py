"""The SQL of each backend, read once from `sql/<backend>/queries.sql` and `sql/<backend>/migrations/`."""

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from aicf.store.interface import SchemaError

_HEADER = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


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


@cache
def load_queries(backend: str) -> dict[str, str]:
    text = resources.files("aicf.store").joinpath("sql", backend, "queries.sql").read_text(encoding="utf-8")
    return parse_queries(text)


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
