"""Issue 13 item 1 and issue 15 item 2: replica setup is idempotent on PostgreSQL.

The first start on an empty database writes genesis, the deployment's fingerprints and the shipped vendor roots.
Two starts at the same moment set it up once; a start killed (SIGKILL) in the middle of its setup transaction
leaves nothing, and the start that was waiting on the lock meanwhile sets the database up alone.
"""

import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from store.backends import PG_DSN, drop_schema, new_schema, require_postgres

from aicf.bootstrap.deployment import IDENTITY
from aicf.bootstrap.shared_devnet import SharedDevnet
from aicf.bootstrap.system import SystemConfig, build_system
from aicf.bootstrap.up import devnet_params
from aicf.chain.devnet import DevnetConfig
from aicf.core.clock import FakeClock
from aicf.store.postgres import PostgresStore

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

START = 1_800_000_000


@pytest.fixture
def schema() -> Iterator[str]:
    require_postgres()
    name = new_schema()
    PostgresStore(PG_DSN, schema=name).close()  # migrated once
    try:
        yield name
    finally:
        drop_schema(name)


def setup_state(schema: str) -> tuple[int, dict[str, int | None], Counter[tuple[str, str]]]:
    store = PostgresStore(PG_DSN, schema=schema)
    try:
        with store.transaction() as tx:
            return (
                len(tx.devnet_blocks()),
                {key: tx.get_meta(key) for key, _ in IDENTITY},
                Counter((r.vendor, r.name) for r in tx.vendor_roots()),
            )
    finally:
        store.close()


def start(schema: str, var: Path, errors: list[BaseException]) -> None:
    store = PostgresStore(PG_DSN, schema=schema)
    try:
        config = SystemConfig(var=var, model_digests={}, operator_token="t" * 32)
        build_system(store, devnet_params(), config, clock=FakeClock(START))
    except Exception as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)
    finally:
        store.close()


def test_two_replicas_starting_at_the_same_moment_set_the_database_up_once(schema: str, tmp_path: Path) -> None:
    var = tmp_path / "var"
    start(schema, var, [])  # the var folder's keys, made once: what the replicas share
    fresh = new_schema()
    PostgresStore(PG_DSN, schema=fresh).close()
    try:
        errors: list[BaseException] = []
        threads = [threading.Thread(target=start, args=(fresh, var, errors)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        blocks, identity, roots = setup_state(fresh)
        assert blocks == 1  # one genesis
        assert None not in identity.values()
        assert roots
        assert max(roots.values()) == 1  # every shipped root pinned once
        assert (blocks, identity, roots) == setup_state(schema)  # as one start alone sets it up
    finally:
        drop_schema(fresh)


KILLED = """
import sys, threading
from aicf.bootstrap.shared_devnet import SharedDevnet
from aicf.chain.devnet import DevnetConfig
from aicf.store.postgres import PostgresStore

def hang(tx):
    tx.set_meta("deployment:operator_key", 1)
    print("in setup", flush=True)
    threading.Event().wait()

SharedDevnet(PostgresStore(sys.argv[1], schema=sys.argv[2]), DevnetConfig(), setup=hang)
"""


def test_a_replica_killed_during_setup_leaves_nothing_and_the_waiting_one_sets_up_alone(schema: str) -> None:
    child = subprocess.Popen(  # noqa: S603 - our own code
        [sys.executable, "-c", KILLED, PG_DSN, schema], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "in setup"  # genesis and a fingerprint written, not committed
        waiting: list[int] = []
        store = PostgresStore(PG_DSN, schema=schema)
        second = threading.Thread(target=lambda: waiting.append(SharedDevnet(store, DevnetConfig()).head_height()))
        second.start()  # blocks on the devnet lock the child holds
        second.join(timeout=1.0)
        assert second.is_alive()
        child.kill()
        assert child.wait(timeout=30) < 0
        second.join(timeout=30)
        store.close()
        assert waiting == [0]
        blocks, identity, _ = setup_state(schema)
        assert blocks == 1
        assert identity["deployment:operator_key"] is None  # the killed start's write was rolled back
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
