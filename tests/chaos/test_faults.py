"""Issue 15 item 3: a fault harness around a real `aicf up` (tests/e2e/live.py's `Up`), on SQLite and PostgreSQL.

Each run starts `aicf up` (the reference quantum provider inside it) and one outside provider process
(`aicf provider run`), deposits for a requester and sends Bell jobs, and between batches of jobs injects one fault
drawn at random:

- `sigkill`: SIGKILL of `aicf up`, then a restart on the same database and var folder;
- `pg_terminate` (PostgreSQL only): `pg_terminate_backend` of every connection of this run (its own
  application_name, so nothing of another test is touched); `aicf up` must stay up and serve again by itself;
- `reorg`: `aicf devnet reorg --depth d` with d drawn from 1..finality_depth, using var/operator.token;
- `silent`: the outside provider stops answering (SIGSTOP) for longer than a lease; the next `silent` resumes it.

After each fault the server must answer and its head must move again within a deadline, and the root of every
settled epoch must be the one first seen. After the run every job reaches its end (settled, or refunded in full),
charged + refunded == escrow for each, the requester's balance is its deposit less what was charged, and
`aicf db verify` passes (balances equal their entries and sum to what was minted, no task paid twice, stakes match).

Short form (CI, marked slow): AICF_CHAOS_FAULTS faults per backend, 4 by default. Long form by hand, e.g.
`AICF_CHAOS_FAULTS=200 AICF_CHAOS_SEED=7 pytest -m slow tests/chaos/test_faults.py`. The SIGKILL long form (issue
15's figure: at least 1,000 kills) is tests/chaos/test_kill_loop.py (`AICF_CHAOS_KILLS=1000`): here a kill waited
for a full restart, about 27 s each. Each run prints one line of figures (`chaos: …`) that docs/RELIABILITY.md
collects.
"""

import functools
import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
from e2e.live import BELL, PARAMS, ROOT, Up, pause, requester
from store.backends import PG_DSN, drop_schema, new_schema, pg_url, require_postgres

from aicf.client import RpcError, RpcTransportError

pytestmark = pytest.mark.slow
FINALITY = 6  # devnet finality_depth (SPEC default); reorgs go up to it, never below finality
T = TypeVar("T")
# Before PARAMS' [model_weights] header: after it TOML read them as two model weights and the runs kept SPEC's 60 s
# TTL and 20 s heartbeat (the params loader now refuses a params key inside a table).
CHAOS_PARAMS = "lease_ttl_s = 12\nheartbeat_interval_s = 3\n" + PARAMS


@dataclass
class Run:
    up: Up
    tmp: Path
    rng: random.Random
    app_name: str | None = None  # PostgreSQL: the application_name of this run's connections
    provider: "subprocess.Popen[str] | None" = None
    provider_stopped: bool = False
    faults: Counter[str] = field(default_factory=Counter)
    roots: dict[int, str] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)

    def start_provider(self) -> None:
        token = self.up.var / "operator.token"
        log = (self.tmp / "provider.log").open("a", encoding="utf-8")
        cmd = [sys.executable, "-m", "aicf", "provider", "run", "--url", self.up.url,
               "--kind", "quantum", "--key-file", str(self.tmp / "provider.key"), "--fund", "1000000000",
               "--stake", "100000000", "--operator-token-file", str(token), "--heartbeat-s", "3",
               "--poll-s", "0.5", "--device-key-file", str(self.tmp / "device.key"),
               "--pin-device", "simulator"]  # fmt: skip
        self.provider = subprocess.Popen(  # noqa: S603 - our own CLI
            cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        log.close()

    def stop_provider(self) -> None:
        if self.provider is not None and self.provider.poll() is None:
            if self.provider_stopped:
                self.provider.send_signal(signal.SIGCONT)
            self.provider.kill()
            self.provider.wait(timeout=30)

    # -- faults ---------------------------------------------------------------------------------------------------
    def sigkill(self) -> None:
        self.up.kill(signal.SIGKILL)
        self.up.start()

    def pg_terminate(self) -> None:
        import psycopg

        assert self.app_name is not None
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = %s AND pid <> pg_backend_pid()",
                (self.app_name,),
            ).fetchone()
        assert row is not None
        self.faults["pg_connections_terminated"] += int(row[0])

    def reorg(self) -> None:
        head = int(self.up.status()["head_height"])
        depth = self.rng.randint(1, max(1, min(FINALITY, head)))  # the devnet refuses to reorg past genesis
        done = subprocess.run(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "aicf", "devnet", "reorg", "--depth", str(depth), "--url",
             self.up.url, "--operator-token-file", str(self.up.var / "operator.token"), "--json"],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        self.faults[f"reorg_depth_{depth}"] += 1

    def silent(self) -> None:
        assert self.provider is not None
        if self.provider.poll() is not None:  # it gave up (e.g. jailed after a silence): start it again
            self.start_provider()
            return
        self.provider.send_signal(signal.SIGCONT if self.provider_stopped else signal.SIGSTOP)
        self.provider_stopped = not self.provider_stopped
        if self.provider_stopped:
            pause(self.rng.uniform(13.0, 15.0))  # longer than a lease (lease_ttl_s = 12)

    # -- checks ---------------------------------------------------------------------------------------------------
    def serving(self, timeout_s: float = 90.0) -> None:
        """The server answers and its coordinator moves the head again: it recovered by itself."""
        assert self.up.proc is not None
        waited, first = 0.0, None
        while waited < timeout_s:
            if self.up.proc.poll() is not None:
                log = self.up.log.read_text()[-3000:] if self.up.log else ""
                raise AssertionError(f"aicf up exited with {self.up.proc.returncode} after a fault:\n{log}")
            try:
                head = int(self.up.status()["head_height"])
                first = head if first is None else first
                if head > first:
                    return
            except (RpcTransportError, RpcError):
                pass
            pause(0.5)
            waited += 0.5
        raise AssertionError(f"aicf up did not serve and advance within {timeout_s} s of a fault")

    def same_roots(self) -> None:
        settled = self.up.status().get("last_settled_epoch")
        for epoch in range(0, (settled if isinstance(settled, int) else -1) + 1):
            root = self.up.epoch_root(epoch)
            assert self.roots.setdefault(epoch, root) == root, f"epoch {epoch}'s root changed after a fault"


def _chaos(run: Run, faults: int) -> None:
    kinds = ["sigkill", "reorg", "silent"] + (["pg_terminate", "pg_terminate"] if run.app_name else [])
    run.up.start()
    run.start_provider()
    deposit = 10**11
    with requester(run.up, run.tmp) as r:
        r.wait_included(r.deposit(deposit), timeout_s=120)
        for _ in range(240):  # included on the devnet; the balance is the coordinator's once it ingested the block
            if r.balance() == deposit:
                break
            pause(0.5)
        for _ in range(faults):
            for _ in range(run.rng.randint(1, 3)):
                run.sent.append(_retrying(lambda: r.submit_quantum(BELL, run.rng.randint(2, 10))))
            pause(run.rng.uniform(0.2, 3.0))
            kind = run.rng.choice(kinds)
            getattr(run, kind)()
            run.faults[kind] += 1
            run.serving()
            run.same_roots()
        if run.provider_stopped:
            run.silent()
        records = [_retrying(functools.partial(r.wait, tx, timeout_s=300, poll_s=0.5)) for tx in run.sent]
        balance = r.balance()
    run.stop_provider()
    assert all(rec["final"] for rec in records)
    settled = [rec for rec in records if rec["status"] == "SETTLED"]
    assert settled, "no job was settled across the faults"
    for rec in records:
        assert rec["charged"] + rec["refunded"] == rec["escrow"], rec  # no escrow lost or kept
    charged = sum(rec["charged"] for rec in records)
    assert balance == deposit - charged, (balance, deposit, charged)
    assert run.up.kill(signal.SIGTERM) == 0
    report = _db_verify(run.up.db)
    figures = {**run.faults, "jobs": len(records), "settled": len(settled), "refunded": len(records) - len(settled),
               "restarts": run.up.starts - 1, "db_verify": "ok" if report["ok"] else "FAILED"}  # fmt: skip
    sys.stderr.write(f"chaos: {json.dumps(figures, sort_keys=True)}\n")
    assert report["ok"] is True, report["problems"]


def _retrying(call: Callable[[], T]) -> T:
    """A requester call across a restart: the server may be starting again; the call is a read or idempotent."""
    for _ in range(120):
        try:
            return call()
        except RpcTransportError:
            pause(0.5)
    return call()


def _db_verify(db: str) -> dict[str, object]:
    done = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "aicf", "db", "verify", "--db", db, "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


def _faults() -> int:
    return int(os.environ.get("AICF_CHAOS_FAULTS", "4"))


def _seed(default: int) -> int:
    return int(os.environ.get("AICF_CHAOS_SEED", str(default)))


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    path = tmp_path / "params.toml"
    path.write_text(CHAOS_PARAMS, encoding="utf-8")
    return path


@pytest.fixture
def cleanup() -> Iterator[list[Run]]:
    runs: list[Run] = []
    yield runs
    for run in runs:
        run.stop_provider()
        if run.up.proc is not None and run.up.proc.poll() is None:
            run.up.kill()


def test_faults_on_sqlite_lose_nothing(tmp_path: Path, params_file: Path, cleanup: list[Run]) -> None:
    up = Up(db=f"sqlite:///{tmp_path / 'aicf.db'}", var=tmp_path / "var", params=params_file, models="none")
    run = Run(up=up, tmp=tmp_path, rng=random.Random(_seed(15)))  # noqa: S311 - fault timings, not secrets
    cleanup.append(run)
    _chaos(run, _faults())


@pytest.mark.postgres
def test_faults_on_postgres_lose_nothing(tmp_path: Path, params_file: Path, cleanup: list[Run]) -> None:
    require_postgres()
    from aicf.store.postgres import PostgresStore

    schema = new_schema()
    PostgresStore(PG_DSN, schema=schema).close()
    app_name = f"aicf-chaos-{schema}"
    up = Up(db=f"{pg_url(schema)}&application_name={app_name}", var=tmp_path / "var", params=params_file,
            models="none")  # fmt: skip
    run = Run(up=up, tmp=tmp_path, rng=random.Random(_seed(16)), app_name=app_name)  # noqa: S311
    cleanup.append(run)
    try:
        _chaos(run, _faults())
    finally:
        run.stop_provider()
        if up.proc is not None and up.proc.poll() is None:
            up.kill()
        drop_schema(schema)


@pytest.mark.postgres
def test_a_dropped_postgres_connection_does_not_end_aicf_up(
    tmp_path: Path, params_file: Path, cleanup: list[Run]
) -> None:
    """The fault audit's finding: pg_terminate_backend ended `aicf up` in 3 of 4 trials (the main thread's progress
    read had no guard). Six terminations spread over three progress periods: the process survives every one and
    serves after it. Whether a given termination meets the progress read is chance; that read's guard itself is
    tested deterministically in tests/chaos/test_db_outage.py."""
    require_postgres()
    from aicf.store.postgres import PostgresStore

    schema = new_schema()
    PostgresStore(PG_DSN, schema=schema).close()
    app_name = f"aicf-chaos-{schema}"
    up = Up(db=f"{pg_url(schema)}&application_name={app_name}", var=tmp_path / "var", params=params_file,
            models="none")  # fmt: skip
    run = Run(up=up, tmp=tmp_path, rng=random.Random(0), app_name=app_name)  # noqa: S311
    cleanup.append(run)
    try:
        up.start()
        assert up.log is not None
        for _ in range(6):
            run.pg_terminate()
            pause(5.0)  # the progress line comes every 10 s: two terminations per period
            assert up.proc is not None
            assert up.proc.poll() is None, f"aicf up ended after a terminated connection:\n{up.log.read_text()[-2000:]}"
            run.serving()
        assert up.kill(signal.SIGTERM) == 0
        assert _db_verify(up.db)["ok"] is True
    finally:
        if up.proc is not None and up.proc.poll() is None:
            up.kill()
        drop_schema(schema)
