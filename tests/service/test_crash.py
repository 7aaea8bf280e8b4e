"""Crash safety with real processes: `aicf devnet run` is SIGKILLed at seeded random moments while it
ingests a devnet chain with reorgs, restarted, and must end in the state digest of a clean replay, with no
duplicate and no missing row (the digest covers every row of every table)."""

import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from store.backends import PG_DSN, SQL_BACKENDS, drop_schema, new_schema, pg_url, require_postgres

from aicf.bootstrap.scenario import run_scenario
from aicf.bootstrap.stores import open_store
from aicf.core.encoding import to_hex
from aicf.service.audit import verify
from aicf.service.state_digest import state_digest
from service.helpers import P

SEED = 11
STEPS = 2000  # a run takes about 2.5 s here, so every kill moment (0.6–1.6 s) falls inside one
KILLS = 4


def _command(url: str, progress: Path) -> list[str]:
    return [
        sys.executable, "-m", "aicf", "devnet", "run", "--db", url,
        "--seed", str(SEED), "--steps", str(STEPS), "--progress", str(progress), "--quiet",
    ]  # fmt: skip


def _clean_digest() -> bytes:
    store = open_store("memory:")
    run_scenario(store, P, seed=SEED, steps=STEPS)
    return state_digest(store)


@pytest.mark.slow
@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_a_coordinator_killed_mid_ingest_resumes_to_the_clean_replay_digest(backend: str, tmp_path: Path) -> None:
    schema = ""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'aicf.db'}"
    else:
        require_postgres()
        schema = new_schema()
        from aicf.store.postgres import PostgresStore

        PostgresStore(PG_DSN, schema=schema).close()  # the schema exists; the runs find it by search_path
        url = pg_url(schema)
    progress = tmp_path / "progress"
    rng = random.Random(f"crash/{backend}")  # noqa: S311  (seeded kill times, not security)
    try:
        killed_while_running = 0
        for _ in range(KILLS):
            proc = subprocess.Popen(_command(url, progress), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
            try:
                proc.wait(timeout=rng.uniform(0.6, 1.6))  # a random moment of its run, not a sleep: it may end first
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed_while_running += 1
            else:
                assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
            if proc.stderr:
                proc.stderr.close()
        assert killed_while_running >= 2, "the run finished before the kills: raise STEPS"
        done = subprocess.run(_command(url, progress), capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
        assert done.returncode == 0, done.stderr
        expected = _clean_digest()
        assert f"state digest: {to_hex(expected)}" in done.stdout
        store = open_store(url)
        try:
            report = verify(store)
            assert report.ok, report.problems
            assert report.digest == expected
        finally:
            store.close()
    finally:
        if schema:
            drop_schema(schema)
