"""One SQL source: `sql/queries.sql` written once with `:name`, translated for psycopg, plus a small overlay per
dialect."""

import re
from importlib import resources

import pytest

from aicf.store.interface import SchemaError
from aicf.store.sqlfiles import load_queries, merge_queries, parse_queries, to_psycopg, to_sqlite


def test_psycopg_translation_binds_by_name_and_keeps_casts() -> None:
    sql = "SELECT sum(a)::bigint FROM t WHERE b = :b AND c = ANY(:ids!b::bytea[]) AND d LIKE 'x%';"
    assert to_psycopg(sql) == (
        "SELECT sum(a)::bigint FROM t WHERE b = %(b)s AND c = ANY(%(ids)b::bytea[]) AND d LIKE 'x%%';"
    )


def test_psycopg_translation_drops_comment_lines_that_name_parameters() -> None:
    assert to_psycopg("-- guarded by :expected\nUPDATE t SET s = :s;") == "UPDATE t SET s = %(s)s;"


def test_sqlite_translation_drops_the_binary_marker_only() -> None:
    assert to_sqlite("SELECT :a, :b!b, x::y") == "SELECT :a, :b, x::y"


def test_an_overlay_may_not_redefine_a_common_query() -> None:
    common = parse_queries("-- name: a\nSELECT 1;\n-- name: b\nSELECT 2;\n")
    with pytest.raises(SchemaError, match=r"postgres\.sql redefines the common queries b"):
        merge_queries(common, parse_queries("-- name: b\nSELECT 3;\n"), "postgres")


def test_an_unknown_dialect_is_refused() -> None:
    with pytest.raises(SchemaError, match="no SQL dialect 'mysql'"):
        load_queries("mysql")


def test_both_dialects_load_the_common_queries_and_postgres_keeps_no_colon_placeholder() -> None:
    sqlite, postgres = load_queries("sqlite"), load_queries("postgres")
    common = parse_queries(resources.files("aicf.store").joinpath("sql", "queries.sql").read_text(encoding="utf-8"))
    assert set(common) <= set(sqlite) & set(postgres)
    assert postgres["get_meta"] == "SELECT value FROM meta WHERE key = %(key)s;"
    assert sqlite["get_meta"] == "SELECT value FROM meta WHERE key = :key;"
    for name, sql in postgres.items():
        assert not re.search(r"(?<![:\w]):[a-z_]", sql), name
