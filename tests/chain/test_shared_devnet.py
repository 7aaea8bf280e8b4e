"""Issue 13, item 4: several processes on one database share one devnet (aicf.bootstrap.shared_devnet).

Two SharedDevnets on two connections to one SQLite file stand for two `aicf serve` replicas: exactly one mines a
due block and the other follows it; a transaction sent to either lands in the one mempool; a nonce used on one is
used on both; a reorg made by one is followed by the other. The PostgreSQL form (advisory lock, racing and killed
starts) is in tests/e2e/test_serve_setup.py and tests/e2e/test_serve.py.
"""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicf.bootstrap.deployment import IDENTITY, DeploymentMismatchError
from aicf.bootstrap.shared_devnet import SharedDevnet
from aicf.bootstrap.system import SystemConfig, build_system
from aicf.bootstrap.up import devnet_params
from aicf.chain.devnet import DevnetConfig
from aicf.client.signing import public_key_bytes
from aicf.core.chain import TxKind
from aicf.core.clock import FakeClock
from aicf.core.txs import NonceError, SignedTx, address_of, tx_signing_digest
from aicf.store.sqlite import SqliteStore

GENESIS = 1_800_000_000
CONFIG = DevnetConfig(genesis_time=GENESIS, interval_s=10)
ALICE = Ed25519PrivateKey.from_private_bytes(b"\x0a" * 32)
COORD = b"\x0c" * 20


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[SqliteStore, SqliteStore]]:
    first = SqliteStore(str(tmp_path / "aicf.db"))
    second = SqliteStore(str(tmp_path / "aicf.db"))
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def deposit(nonce: int) -> SignedTx:
    pub = public_key_bytes(ALICE)
    body = {"to": address_of(pub), "amount": 10**9}
    sig = ALICE.sign(tx_signing_digest(CONFIG.chain_id, pub, TxKind.DEPOSIT, nonce, body))
    return SignedTx(chain_id=CONFIG.chain_id, public_key=pub, nonce=nonce, kind=TxKind.DEPOSIT, body=body, sig=sig)


def hashes(net: SharedDevnet) -> list[bytes]:
    return [b.hash for h in range(net.head_height() + 1) if (b := net.block_at(h)) is not None]


def test_two_replicas_mine_each_due_block_once_and_follow_one_chain(stores: tuple[SqliteStore, SqliteStore]) -> None:
    a, b = SharedDevnet(stores[0], CONFIG), SharedDevnet(stores[1], CONFIG)
    assert hashes(a) == hashes(b)  # the second start found the first one's genesis
    assert len(a.tick(GENESIS + 30)) == 3
    assert b.tick(GENESIS + 30) == []  # nothing left due: it follows the three blocks
    assert b.head_height() == 3
    assert hashes(a) == hashes(b)
    assert len(b.tick(GENESIS + 40)) == 1
    assert a.tick(GENESIS + 40) == []
    assert hashes(a) == hashes(b)
    with stores[0].transaction() as tx:
        assert len(tx.devnet_blocks()) == 5


def test_a_transaction_sent_to_either_replica_lands_in_the_one_mempool(stores: tuple[SqliteStore, SqliteStore]) -> None:
    a, b = SharedDevnet(stores[0], CONFIG), SharedDevnet(stores[1], CONFIG)
    sent = b.send(deposit(0))
    proof = a.submit(COORD, TxKind.PROOF, {"task_id": b"\x01" * 32})
    assert [p.tx_hash for p in a.refresh().mempool] == [sent, proof]
    (block,) = a.tick(GENESIS + 10)
    assert [t.tx_hash for t in block.txs] == [sent, proof]
    where = b.locate(sent)  # the replica the requester asked sees where the other one included it
    assert where is not None
    assert (where.height, where.index) == (1, 0)
    assert b.pending_from(address_of(public_key_bytes(ALICE))) == []


def test_a_nonce_used_on_one_replica_is_used_on_both(stores: tuple[SqliteStore, SqliteStore]) -> None:
    a, b = SharedDevnet(stores[0], CONFIG), SharedDevnet(stores[1], CONFIG)
    a.send(deposit(0))
    with pytest.raises(NonceError):
        b.send(deposit(0))  # a replay through the other replica
    b.send(deposit(1))
    assert a.next_nonce(address_of(public_key_bytes(ALICE))) == 2
    with stores[0].transaction() as tx:
        assert len(tx.devnet_mempool()) == 2


def test_a_reorg_on_one_replica_is_followed_by_the_other(stores: tuple[SqliteStore, SqliteStore]) -> None:
    a, b = SharedDevnet(stores[0], CONFIG), SharedDevnet(stores[1], CONFIG)
    b.send(deposit(0))
    a.tick(GENESIS + 40)
    b.tick(GENESIS + 40)
    before = hashes(b)
    branch = a.reorg(2)
    b.tick(GENESIS + 40)
    assert hashes(b) == hashes(a)
    assert hashes(b)[:3] == before[:3]
    assert hashes(b)[3:] == [blk.hash for blk in branch] != before[3:]


def test_a_refused_setup_writes_nothing_and_the_next_start_sets_the_database_up(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    def refuse(_: object) -> None:
        raise DeploymentMismatchError("no")

    with pytest.raises(DeploymentMismatchError):
        SharedDevnet(stores[0], CONFIG, setup=refuse)
    with stores[0].transaction() as tx:
        assert (tx.devnet_meta(), tx.devnet_blocks()) == ({}, [])  # no genesis without its setup
    assert SharedDevnet(stores[1], CONFIG).head_height() == 0


def test_a_replica_with_another_operator_key_or_trap_secret_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    clock = FakeClock(GENESIS)
    store = SqliteStore(str(tmp_path / "aicf.db"))

    def start(var: Path, token: str = "t" * 32) -> None:
        build_system(store, devnet_params(), SystemConfig(var=var, model_digests={}, operator_token=token), clock=clock)

    def state() -> tuple[object, dict[str, int], list[int | None]]:
        with store.transaction() as tx:
            return tx.snapshot(), tx.devnet_meta(), [tx.get_meta(k) for k, _ in IDENTITY]

    try:
        start(tmp_path / "one")
        before = state()
        assert None not in before[2]
        start(tmp_path / "one")  # the same files (a copied var folder) join
        start(tmp_path / "one", token="u" * 32)  # a rotated operator token is no other deployment
        assert state() == before
        with pytest.raises(DeploymentMismatchError, match="set up with another operator key"):
            start(tmp_path / "two")
        (tmp_path / "three").mkdir()
        shutil.copy(tmp_path / "one" / "operator.key", tmp_path / "three" / "operator.key")
        with pytest.raises(DeploymentMismatchError, match="set up with another trap secret"):
            start(tmp_path / "three")  # the right key, another trap secret
        assert state() == before
    finally:
        store.close()
