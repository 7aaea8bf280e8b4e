"""Issue 13, item 4: two real `aicf serve` replicas on one fresh PostgreSQL database are one coordinator.

Both replicas start at the same moment on the empty database (one sets it up), with one var folder (the same
operator key, trap secret and token). Two real `aicf provider run` processes (minilm) talk to different replicas;
two requesters send jobs through the CLI, one to each replica; one replica gets SIGKILL mid-run and is started
again, and then every PostgreSQL connection is terminated. Then every job is final (settled, or refunded in
full), no lease of one (task, attempt) was granted twice, each task was paid once, both replicas report the same
settlement roots, a store fed only the shared chain writes the same batches, `aicf db verify` passes and both
replicas are still running. About two minutes on an idle 2-core machine.
"""

import json
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from store.backends import fresh_database, memory_store

from aicf.bootstrap.stores import open_store
from aicf.chain.devnet import Devnet, DevnetConfig
from aicf.client.requester import Requester, load_or_create_requester_key
from aicf.core.jobs import JobStatus
from aicf.core.leases import LeaseStatus
from aicf.core.params import params_from_toml
from aicf.core.qasm import circuit_depth
from aicf.service.ingest import ingest_available
from aicf.store.devnet_journal import StoreDevnetJournal
from aicf.transports.key_files import load_or_create_key, load_or_create_secret, public_bytes
from aicf.transports.secret_files import load_or_create_operator_token
from e2e.live import PARAMS, ROOT, Up, assert_db_verifies, pause

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # real replicas, providers and models for about a minute

EMBED = "minilm-l6-v2"
LEASED_OR_LATER = frozenset({JobStatus.LEASED, JobStatus.SUBMITTED, JobStatus.VERIFIED, JobStatus.SETTLED})


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh database of its own (serve_…), dropped after the test."""
    with fresh_database("serve") as url:
        yield url


def provider(url: str, key: Path, token: Path, log: Path, *, fund: bool = True) -> "subprocess.Popen[str]":
    """`aicf provider run`; with `fund` the operator mints its stake first (devnet only: on an EVM chain the stake
    is the contract's, staked there, docs/EVM.md)."""
    minted = ["--fund", "2000000000"] if fund else []
    cmd = [sys.executable, "-m", "aicf", "provider", "run", "--url", url, "--kind", "ai",
           "--models", EMBED, "--key-file", str(key), *minted, "--stake", "1000000000",
           "--operator-token-file", str(token), "--heartbeat-s", "3", "--poll-s", "0.5"]  # fmt: skip
    with log.open("w", encoding="utf-8") as out:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True)  # noqa: S603


def send_jobs(replica: Up, key: Path, tag: str, n: int) -> list[str]:
    sent = []
    for i in range(n):
        done = replica.cli(
            "request", "ai", "--model", EMBED, "--prompt", f"{tag} question {i}", "--max-units", "5", "--json", key=key
        )
        assert done.returncode == 0, done.stdout + done.stderr
        sent.append(str(json.loads(done.stdout)["tx_hash"]))
    return sent


def jobs_in(url: str, statuses: frozenset[JobStatus]) -> int:
    store = open_store(url)
    try:
        with store.transaction() as tx:
            return sum(n for s, n in tx.job_counts().items() if s in statuses)
    finally:
        store.close()


def terminate_connections(url: str) -> int:
    """pg_terminate_backend on every other connection to the test's database: the replicas must reconnect."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(str(row[0]))


def test_two_serve_replicas_share_one_coordinator_through_a_sigkill(database: str, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    params_file = tmp_path / "params.toml"
    params_file.write_text(PARAMS, encoding="utf-8")
    var = tmp_path / "var"
    a, b = (Up(db=database, var=var, params=params_file, models=EMBED, command="serve") for _ in range(2))
    var.mkdir()
    load_or_create_key(var / "operator.key")  # one var folder for both, made once (docs/DEPLOY.md): they race
    load_or_create_secret(var / "trap.secret")  # on the database, not on the files
    load_or_create_operator_token(var, {})
    providers: list[subprocess.Popen[str]] = []
    try:
        starts = [threading.Thread(target=r.start) for r in (a, b)]  # both on the empty database at once
        for t in starts:
            t.start()
        for t in starts:
            t.join()
        assert a.status()["head_height"] >= 0
        assert b.status()["head_height"] >= 0
        token = var / "operator.token"
        providers = [
            provider(a.url, tmp_path / "p1.key", token, tmp_path / "p1.log"),
            provider(b.url, tmp_path / "p2.key", token, tmp_path / "p2.log"),
        ]
        alice, bob = tmp_path / "alice.key", tmp_path / "bob.key"
        for replica, key in ((a, alice), (b, bob)):
            funded = replica.cli("request", "deposit", str(10**10), "--json", key=key)
            assert funded.returncode == 0, funded.stderr
        sent = [(b, alice, tx) for tx in send_jobs(a, alice, "alice", 4)]  # followed through the other replica
        sent += [(a, bob, tx) for tx in send_jobs(b, bob, "bob", 4)]
        for _ in range(600):
            if jobs_in(database, LEASED_OR_LATER) >= 2:
                break
            pause(0.1)
        assert a.kill(signal.SIGKILL) == -signal.SIGKILL  # mid-run: jobs leased, others queued
        sent += [(b, bob, tx) for tx in send_jobs(b, bob, "bob-alone", 2)]
        a.start()
        assert terminate_connections(database) > 0  # every replica's and provider-facing pool loses its connections
        sent += [(b, alice, tx) for tx in send_jobs(a, alice, "alice-again", 2)]

        records = []
        for follow, key, tx_hash in sent:
            with Requester(follow.url, load_or_create_requester_key(key), sleep=pause) as client:
                records.append(client.wait(tx_hash, timeout_s=300, poll_s=0.5))
        assert len({rec["task_id"] for rec in records}) == len(sent) == 12
        for rec in records:
            assert rec["final"] is True, rec
            assert rec["charged"] + rec["refunded"] == rec["escrow"], rec
            if rec["status"] == "SETTLED":
                assert rec["result"] is not None
        settled = sum(rec["status"] == "SETTLED" for rec in records)
        assert settled >= 1, records

        store = open_store(database)
        try:
            with store.transaction() as tx:
                snap = tx.snapshot()
                last = tx.last_batch_epoch()
                batches = {e: tx.get_batch(e) for e in range(last + 1)} if last is not None else {}
            per_attempt = Counter((x.task_id, x.attempt) for x in snap.leases if x.status is not LeaseStatus.REVOKED)
            assert max(per_attempt.values()) == 1, per_attempt.most_common(3)
            assert len(snap.payouts) == len({p.task_id for p in snap.payouts}) == settled
            assert last is not None
            for epoch in range(last + 1):  # both replicas answer the same settlement roots
                assert a.epoch_root(epoch) == b.epoch_root(epoch)
            # and a store fed only the shared chain writes the same batches
            chain = Devnet.resume(StoreDevnetJournal(store), DevnetConfig())
        finally:
            store.close()
        follower = memory_store()
        try:
            operator = public_bytes(load_or_create_key(var / "operator.key"))
            ingest_available(follower, chain, params_from_toml(PARAMS), circuit_depth, operator_key=operator)
            with follower.transaction() as tx:
                for epoch, kept in batches.items():
                    theirs = tx.get_batch(epoch)
                    assert kept is not None
                    assert theirs is not None
                    assert (theirs.batch, theirs.root) == (kept.batch, kept.root)
        finally:
            follower.close()
        assert_db_verifies(database)
        assert [replica.proc.poll() for replica in (a, b) if replica.proc is not None] == [None, None]  # survived
    finally:
        for p in providers:
            p.kill()
            p.wait(timeout=30)
        for replica in (a, b):
            if replica.proc is not None and replica.proc.poll() is None:
                replica.kill()
