"""Versioned migrations: an old (v1) database upgrades to the latest with its rows intact."""

from pathlib import Path

import pytest

from aicf.core.chain import Claim
from aicf.core.jobs import JobStatus
from aicf.core.ledger import EXTERNAL, Posting, requester_account
from aicf.core.types import MicroAnm
from aicf.store.interface import SchemaError, Store
from aicf.store.rows import provider_params
from aicf.store.sqlfiles import load_migrations, parse_queries
from aicf.store.sqlite import SqliteStore
from store.backends import PG_DSN, SQL_BACKENDS, drop_schema, new_schema, require_postgres
from store.test_contract import block, job
from store.test_contract_coordinator import provider as contract_provider
from store.test_contract_trust import root as trust_root
from store.tx_helpers import policies_in_force, ready_jobs, roots_in_force

ALICE = requester_account(b"\xaa" * 20)


def test_every_backend_has_the_same_numbered_migrations() -> None:
    sqlite = [(m.version, m.name) for m in load_migrations("sqlite")]
    postgres = [(m.version, m.name) for m in load_migrations("postgres")]
    assert sqlite == postgres
    assert [v for v, _ in sqlite] == list(range(1, len(sqlite) + 1))


def test_a_query_name_defined_twice_is_refused() -> None:
    with pytest.raises(SchemaError):
        parse_queries("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")


def _write_v1(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_block(block(0))
        tx.set_meta("final_height", -1)
        tx.post([Posting(debit=EXTERNAL, credit=ALICE, amount=MicroAnm(500), ref_kind="deposit", ref=b"d")], 0, 1000)
        tx.insert_jobs([job(1, 0), job(2, 0, 1)])
        tx.move_jobs([bytes([1]) * 32, bytes([2]) * 32], JobStatus.PENDING, JobStatus.QUEUED, "final", 0, 0)
        tx.commit()


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_a_v1_database_upgrades_to_the_latest_with_its_rows(backend: str, tmp_path: Path) -> None:
    latest = load_migrations("sqlite")[-1].version
    if backend == "sqlite":
        path = tmp_path / "old.db"
        old = SqliteStore(path, migrate_to=1)
        assert old.schema_version() == 1
        _write_v1(old)
        old.close()
        new = SqliteStore(path)
        assert new.schema_version() == latest
        try:
            _check_upgraded(new)
        finally:
            new.close()
        return
    require_postgres()
    from aicf.store.postgres import PostgresStore

    schema = new_schema()
    try:
        pg_old = PostgresStore(PG_DSN, schema=schema, migrate_to=1)
        assert pg_old.schema_version() == 1
        _write_v1(pg_old)
        pg_old.close()
        pg_new = PostgresStore(PG_DSN, schema=schema)
        try:
            assert pg_new.schema_version() == latest
            _check_upgraded(pg_new)
        finally:
            pg_new.close()
    finally:
        drop_schema(schema)


def _check_upgraded(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.block_at(0) == block(0)
        assert tx.balances([ALICE]) == {ALICE: 500}
        assert tx.insert_claim(Claim(claim_id=b"c" * 32, provider_id=b"p" * 32, amount=MicroAnm(1), time=1))
        # v3: the priority key is computed for the jobs written before it existed; the new tables work
        assert [j.task_id for j in ready_jobs(tx, 0, 10)] == [bytes([1]) * 32, bytes([2]) * 32]
        assert tx.append_event("jobAssigned", b"\x01", 1) == 1
        assert tx.get_claim(b"c" * 32) is not None
        # v6: vendor roots and attestation policy
        assert tx.insert_root(trust_root("ARK", 1, 0))
        assert roots_in_force(tx, 0) == [trust_root("ARK", 1, 0)]
        assert policies_in_force(tx, 0) == []
        assert tx.trust_version() == 0
        # v7: the sweep's partial indexes on providers
        assert tx.providers_due(2**62) == []
        # v8: a provider's declared unit-rate limits
        declared = contract_provider(1, unit_burst_mu=9, unit_rate_mu_per_day=8_640)
        assert tx.insert_provider(declared)
        assert tx.get_provider(declared.provider_id) == declared
        tx.commit()


def test_a_provider_stored_before_v8_reads_back_with_the_protocol_unit_rate(tmp_path: Path) -> None:
    path = tmp_path / "v7.db"
    SqliteStore(path, migrate_to=7).close()
    before = contract_provider(1, unit_burst_mu=0, unit_rate_mu_per_day=0)
    row = {k: v for k, v in provider_params(before).items() if k not in ("unit_burst_mu", "unit_rate_mu_per_day")}
    import sqlite3

    with sqlite3.connect(path) as conn:  # the v7 columns only, as a v7 coordinator wrote them
        conn.execute(
            f"INSERT INTO providers ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})",  # noqa: S608
            row,
        )
    upgraded = SqliteStore(path)
    try:
        assert upgraded.schema_version() == len(load_migrations("sqlite"))  # the latest
        with upgraded.transaction() as tx:
            assert tx.get_provider(before.provider_id) == before  # 0 and 0: SPEC §6's bucket
    finally:
        upgraded.close()


def test_a_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    SqliteStore(path).close()
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version (version, name) VALUES (999, 'future')")
    with pytest.raises(SchemaError, match="upgrade aicf"):
        SqliteStore(path)
