"""Issue 12 against a real `aicf up` process: requesters from outside, clean stops and restarts on the same
database, and SIGKILL at random moments with nothing lost, paid twice or rewritten.

Each test starts `python -m aicf up` on a free port with a params file that settles an epoch every
12 s with SPEC's cap Γ: the budget throttle lifts after ten blocks, and the providers' unit buckets (burst 10 units,
refilled at about 11.6 units a second) take a 10-shot Bell job or a 5-unit AI job about every second. The CLI and
`aicf.client.requester.Requester` talk to it over HTTP like any outside requester. Waiting is polling a live
server (Event.wait), bounded by a deadline; nothing here waits on a timer to let time pass.
"""

import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from store.backends import drop_schema, new_schema, pg_url, require_postgres

from aicf.client.requester import Requester, load_or_create_requester_key
from e2e.live import BELL, PARAMS, ROOT, Up, pause, requester

pytestmark = pytest.mark.slow


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    path = tmp_path / "params.toml"
    path.write_text(PARAMS, encoding="utf-8")
    return path


@pytest.fixture
def sqlite_up(tmp_path: Path, params_file: Path) -> Iterator[Up]:
    up = Up(db=f"sqlite:///{tmp_path / 'aicf.db'}", var=tmp_path / "var", params=params_file, models="minilm-l6-v2")
    yield up
    if up.proc is not None and up.proc.poll() is None:
        up.kill()


def test_a_requester_gets_results_for_50_ai_and_10_quantum_jobs_through_the_cli(sqlite_up: Up, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    sqlite_up.start()
    key = tmp_path / "alice.key"
    funded = sqlite_up.cli("request", "deposit", str(10**11), "--json", key=key)
    assert funded.returncode == 0, funded.stderr
    assert json.loads(funded.stdout)["balance"] == 10**11
    circuit = tmp_path / "bell.qasm"
    circuit.write_bytes(BELL)
    sent: list[str] = []
    for i in range(60):
        if i % 6 == 5:
            args = ["request", "quantum", "--qasm", str(circuit), "--shots", "10", "--json"]
        else:
            args = [
                "request",
                "ai",
                "--model",
                "minilm-l6-v2",
                "--prompt",
                f"question {i}",
                "--max-units",
                "5",
                "--json",
            ]
        done = sqlite_up.cli(*args, key=key)
        assert done.returncode == 0, done.stderr
        sent.append(json.loads(done.stdout)["tx_hash"])
    with Requester(sqlite_up.url, load_or_create_requester_key(key), sleep=pause) as r:
        records = [r.wait(tx, timeout_s=600, poll_s=0.5) for tx in sent]
    assert len({rec["task_id"] for rec in records}) == 60
    for rec in records:
        assert rec["final"] is True
        if rec["status"] == "SETTLED":
            assert rec["result"] is not None
            assert rec["charged"] + rec["refunded"] == rec["escrow"]
        else:  # refunded in full
            assert rec["refunded"] == rec["escrow"]
    assert sum(rec["status"] == "SETTLED" for rec in records) >= 50
    kinds = {rec["kind"] for rec in records if rec["result"] is not None}
    assert kinds == {"ai", "quantum"}
    ai_done = next(rec for rec in records if rec["kind"] == "ai" and rec["result"] is not None)
    assert "output" in ai_done["result"]
    # the CLI's --wait path prints the final record as one JSON object with its task_id
    waited = sqlite_up.cli("request", "ai", "--model", "minilm-l6-v2", "--prompt", "one more", "--wait",
                           "--until", "verified", "--json", key=key)  # fmt: skip
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["result"]["output_digest"].startswith("0x")
    assert "verified" in waited.stderr or "VERIFIED" in waited.stderr


def test_bad_requests_from_the_cli_get_a_specific_error_and_touch_nothing(sqlite_up: Up, tmp_path: Path) -> None:
    sqlite_up.start()
    key = tmp_path / "bob.key"
    assert sqlite_up.cli("request", "deposit", "1000000", key=key).returncode == 0
    before = sqlite_up.cli("request", "balance", "--json", key=key)
    cases = [
        (["request", "ai", "--model", "gpt-9", "--prompt", "hi"], "unknown model 'gpt-9'"),
        (["request", "ai", "--model", "minilm-l6-v2", "--prompt", "x" * 70_000], "exceeds the limit of 65536"),
        (["request", "ai", "--model", "minilm-l6-v2", "--prompt", "hi", "--max-runtime-ms", "600000"], "escrow"),
        (["request", "cancel", "0x" + "ab" * 32], "no job 0xabab"),
        (["request", "deposit", str(10**12 + 1)], "amount"),
    ]
    for args, message in cases:
        done = sqlite_up.cli(*args, key=key)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert message in done.stderr, (args, done.stderr)
    after = sqlite_up.cli("request", "balance", "--json", key=key)
    assert json.loads(after.stdout) == json.loads(before.stdout)
    sqlite_up.kill(signal.SIGTERM)
    stopped = sqlite_up.cli("request", "balance", key=key)
    assert stopped.returncode == 1
    assert "cannot reach the coordinator" in stopped.stderr


def test_sigterm_stops_cleanly_and_a_restart_resumes_the_same_chain(sqlite_up: Up, tmp_path: Path) -> None:
    sqlite_up.models = "none"
    sqlite_up.start()
    with requester(sqlite_up, tmp_path) as r:
        r.wait_included(r.deposit(10**9), timeout_s=60)
        tx = r.submit_quantum(BELL, 10)
        first = r.wait(tx, timeout_s=120, until="verified")
        balance = r.balance()
    head = sqlite_up.status()["head_height"]
    assert sqlite_up.kill(signal.SIGTERM) == 0
    assert sqlite_up.log is not None
    assert "received SIGTERM; stopping" in sqlite_up.log.read_text()
    sqlite_up.start()
    assert "resumed the devnet chain" in sqlite_up.log.read_text()
    assert sqlite_up.status()["head_height"] >= head
    with requester(sqlite_up, tmp_path) as again:
        assert again.balance() == balance
        assert again.result(first["task_id"])["result"] == first["result"]
        final = again.wait(tx, timeout_s=120)  # it settles after the restart
    assert final["status"] == "SETTLED"


def _sigkill_loop(up: Up, tmp_path: Path, kills: int, seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - kill timings, not secrets
    up.models = "none"
    up.start()
    with requester(up, tmp_path) as r:
        _kill_and_restart(up, r, kills, rng)


def _kill_and_restart(up: Up, r: Requester, kills: int, rng: random.Random) -> None:
    r.wait_included(r.deposit(10**11), timeout_s=60)
    sent: list[str] = []
    proved: dict[str, str] = {}  # task_id -> the proof of its ResultRecord, once seen
    roots: dict[int, str] = {}
    last_head = -1
    for _ in range(kills):
        for _ in range(rng.randint(1, 3)):
            sent.append(r.submit_quantum(BELL, rng.randint(2, 10)))
        pause(rng.uniform(0.2, 4.0))
        status = up.status()
        assert status["head_height"] >= last_head, "the head moved backwards across a restart"
        last_head = status["head_height"]
        settled = status.get("last_settled_epoch")
        for epoch in range(0, (settled if isinstance(settled, int) else -1) + 1):
            root = up.epoch_root(epoch)
            assert roots.setdefault(epoch, root) == root, f"epoch {epoch}'s root changed after a kill"
        up.kill(signal.SIGKILL)
        up.start()
        for task_id, proof_id in proved.items():  # a proof on chain before a kill is still the job's result after it
            result = r.result(task_id)["result"]
            assert result is not None, f"job {task_id} lost its result across a kill"
            assert result["proof_id"] == proof_id
        for tx in sent:
            record = r.transaction(tx)
            assert record["state"] in ("pending", "included"), f"an accepted transaction was lost: {record}"
            if record.get("status") in ("VERIFIED", "SETTLED"):
                proved.setdefault(record["task_id"], r.result(record["task_id"])["result"]["proof_id"])
    # after the last restart every job the requester paid for reaches its end: settled, or refunded in full
    records = [r.wait(tx, timeout_s=300, poll_s=0.5) for tx in sent]
    assert all(rec["final"] for rec in records)
    settled = [rec for rec in records if rec["status"] == "SETTLED"]
    assert settled, "no job was settled across the kills"
    for rec in settled:
        assert rec["charged"] + rec["refunded"] == rec["escrow"]
    up.kill(signal.SIGTERM)
    verify = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "aicf", "db", "verify", "--db", up.db, "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = json.loads(verify.stdout)
    assert report["ok"] is True
    assert report["problems"] == []


def test_sigkill_at_random_moments_on_sqlite_loses_nothing(tmp_path: Path, params_file: Path) -> None:
    up = Up(db=f"sqlite:///{tmp_path / 'aicf.db'}", var=tmp_path / "var", params=params_file, models="none")
    try:
        _sigkill_loop(up, tmp_path, kills=int(os.environ.get("AICF_KILLS", "10")), seed=1)
    finally:
        if up.proc is not None and up.proc.poll() is None:
            up.kill()


@pytest.mark.postgres
def test_sigkill_at_random_moments_on_postgres_loses_nothing(tmp_path: Path, params_file: Path) -> None:
    require_postgres()
    schema = new_schema()
    from store.backends import PG_DSN

    from aicf.store.postgres import PostgresStore

    PostgresStore(PG_DSN, schema=schema).close()
    up = Up(db=pg_url(schema), var=tmp_path / "var", params=params_file, models="none")
    try:
        _sigkill_loop(up, tmp_path, kills=int(os.environ.get("AICF_KILLS", "10")), seed=2)
    finally:
        if up.proc is not None and up.proc.poll() is None:
            up.kill()
        drop_schema(schema)


def test_db_verify_refuses_a_database_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such.db"
    done = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "aicf", "db", "verify", "--db", f"sqlite:///{missing}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "no database at" in done.stderr
    assert not missing.exists()
    assert not missing.parent.exists()
