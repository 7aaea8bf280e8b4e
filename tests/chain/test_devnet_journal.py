"""Issue 12: the embedded devnet keeps its chain in the coordinator's store and resumes it after a stop, and a
requester's signed transaction enters the mempool only with a valid signature, chain id and next nonce."""

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from store.backends import BACKENDS, open_test_store

from aicf.chain.devnet import Devnet, DevnetConfig, DevnetError
from aicf.client.signing import public_key_bytes
from aicf.core.chain import TxKind
from aicf.core.txs import BadTxSignatureError, NonceError, SignedTx, TxError, WrongChainError, tx_signing_digest
from aicf.store.devnet_journal import StoreDevnetJournal
from aicf.store.interface import Store
from aicf.store.sqlite import SqliteStore

A = b"\x0a" * 20
KEY = Ed25519PrivateKey.from_private_bytes(b"\x11" * 32)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with open_test_store(request.param, tmp_path) as s:
        yield s


def signed(
    kind: TxKind, body: Mapping[str, object], nonce: int, chain_id: int = 1337, key: Ed25519PrivateKey = KEY
) -> SignedTx:
    pub = public_key_bytes(key)
    sig = key.sign(tx_signing_digest(chain_id, pub, kind, nonce, body))
    return SignedTx(chain_id=chain_id, public_key=pub, nonce=nonce, kind=kind, body=body, sig=sig)


def deposit(nonce: int, amount: int = 5, **kw: object) -> SignedTx:
    to = signed(TxKind.DEPOSIT, {"to": A, "amount": 1}, 0).sender
    return signed(TxKind.DEPOSIT, {"to": to, "amount": amount}, nonce, **kw)  # type: ignore[arg-type]


def busy_devnet(store: Store) -> Devnet:
    net = Devnet.resume(StoreDevnetJournal(store), DevnetConfig())
    net.submit(A, TxKind.DEPOSIT, {"to": A, "amount": 5})
    net.send(deposit(0))
    net.mine(8)
    net.send(deposit(1, amount=7))
    net.submit(A, TxKind.DEPOSIT, {"to": A, "amount": 9})
    net.mine(1)
    net.send(deposit(2))
    net.reorg(3)
    net.submit(A, TxKind.DEPOSIT, {"to": A, "amount": 11})
    return net


def test_a_resumed_devnet_has_the_same_blocks_mempool_and_nonces(store: Store) -> None:
    net = busy_devnet(store)
    again = Devnet.resume(StoreDevnetJournal(store), DevnetConfig(genesis_time=1))  # a kept chain keeps its config
    assert again.blocks == net.blocks
    assert [p.tx_hash for p in again.mempool] == [p.tx_hash for p in net.mempool]
    assert (again.nonce, again.reorgs, again.next_seq) == (net.nonce, net.reorgs, net.next_seq)
    assert again.next_nonce(deposit(0).sender) == 3
    assert again.config == net.config
    again.mine(2)  # and goes on producing blocks from where it was
    assert again.head_height() == net.head_height() + 2
    assert again.blocks[: net.head_height() + 1] == net.blocks


def test_a_sqlite_devnet_survives_closing_the_database(tmp_path: Path) -> None:
    path = tmp_path / "aicf.db"
    first = SqliteStore(path)
    net = busy_devnet(first)
    first.close()
    second = SqliteStore(path)
    try:
        again = Devnet.resume(StoreDevnetJournal(second), DevnetConfig())
        assert again.blocks == net.blocks
        assert again.locate(net.blocks[5].txs[0].tx_hash) if net.blocks[5].txs else True
    finally:
        second.close()


def test_a_journal_of_another_chain_is_refused(store: Store) -> None:
    busy_devnet(store)
    with pytest.raises(DevnetError, match="chain 1337"):
        Devnet.resume(StoreDevnetJournal(store), DevnetConfig(chain_id=99))


class FailingJournal:
    """A journal whose writes fail after `ok` successful ones (a full disk, a lost database)."""

    def __init__(self, inner: StoreDevnetJournal, ok: int) -> None:
        self.inner, self.ok = inner, ok

    def load(self) -> tuple[dict[str, int], list[bytes], list[tuple[int, bytes]]] | None:
        return self.inner.load()

    def record(self, **change: object) -> None:
        if self.ok <= 0:
            raise OSError("disk full")
        self.ok -= 1
        self.inner.record(**change)


@pytest.mark.parametrize("what", ["submit", "send", "mine", "reorg"])
def test_a_failed_journal_write_leaves_the_devnet_as_it_was(store: Store, what: str) -> None:
    net = busy_devnet(store)
    journal = FailingJournal(StoreDevnetJournal(store), ok=0)
    net.journal = journal
    before = (list(net.blocks), list(net.mempool), net.nonce, net.reorgs, dict(net.account_nonces), net.next_seq)
    actions: dict[str, Callable[[], object]] = {
        "submit": lambda: net.submit(A, TxKind.DEPOSIT, {"to": A, "amount": 1}),
        "send": lambda: net.send(deposit(3)),
        "mine": lambda: net.mine(2),
        "reorg": lambda: net.reorg(2),
    }
    with pytest.raises(OSError, match="disk full"):
        actions[what]()
    assert (
        list(net.blocks),
        list(net.mempool),
        net.nonce,
        net.reorgs,
        dict(net.account_nonces),
        net.next_seq,
    ) == before
    again = Devnet.resume(StoreDevnetJournal(store), DevnetConfig())
    assert again.blocks == net.blocks
    assert [p.tx_hash for p in again.mempool] == [p.tx_hash for p in net.mempool]


def test_after_a_long_stop_the_next_block_comes_at_the_current_time() -> None:
    net = Devnet(DevnetConfig(genesis_time=1_000, interval_s=2, max_gap_blocks=30))
    net.tick(1_010)
    assert net.head_height() == 5
    made = net.tick(1_010 + 3_600)  # an hour later: one block at now, not 1,800 catch-up blocks
    assert [b.time for b in made] == [1_010 + 3_600]
    assert net.tick(1_010 + 3_604)[-1].time == 1_010 + 3_604


# -- signed transactions --------------------------------------------------------------------------------------
def test_a_signed_transaction_enters_the_mempool_with_the_next_nonce() -> None:
    net = Devnet()
    h0 = net.send(deposit(0))
    h1 = net.send(deposit(1))
    assert [p.tx_hash for p in net.mempool] == [h0, h1]
    first = net.locate(h0)
    assert first is not None
    assert first.height is None
    net.mine(1)
    loc = net.locate(h1)
    assert loc is not None
    assert (loc.height, loc.index) == (1, 1)
    assert net.pending_from(deposit(0).sender) == []


@pytest.mark.parametrize(
    ("tx", "error", "field"),
    [
        (deposit(0, chain_id=1), WrongChainError, "chain_id"),
        (deposit(1), NonceError, "nonce"),  # a gap
        (deposit(0, key=Ed25519PrivateKey.from_private_bytes(b"\x22" * 32)), None, None),  # another key: fine
        (deposit(0, amount=0), TxError, "amount"),
        (deposit(0, amount=10**12 + 1), TxError, "amount"),
    ],
)
def test_a_bad_signed_transaction_is_refused_with_nothing_stored(
    store: Store, tx: SignedTx, error: type[TxError] | None, field: str | None
) -> None:
    net = Devnet.resume(StoreDevnetJournal(store), DevnetConfig())
    before = StoreDevnetJournal(store).load()
    if error is None:
        net.send(tx)
        return
    with pytest.raises(error) as caught:
        net.send(tx)
    assert caught.value.field == field
    assert net.mempool == []
    assert StoreDevnetJournal(store).load() == before


def test_a_forged_signature_and_a_replay_are_refused() -> None:
    net = Devnet()
    tx = deposit(0)
    forged = SignedTx(
        chain_id=tx.chain_id, public_key=tx.public_key, nonce=0, kind=tx.kind, body={**tx.body, "amount": 6}, sig=tx.sig
    )
    with pytest.raises(BadTxSignatureError):
        net.send(forged)
    net.send(tx)
    with pytest.raises(NonceError, match="already used"):
        net.send(tx)
    assert len(net.mempool) == 1


def test_a_provider_kind_cannot_be_sent_by_a_requester() -> None:
    with pytest.raises(TxError, match="cannot be sent by a requester"):
        Devnet().send(signed(TxKind.PROOF, {"task_id": b"\x00" * 32}, 0))
