"""The embedded devnet of one store, shared by every process on it (issue 13: `aicf serve` replicas).

Each process keeps the chain in memory (aicf.chain.devnet.Devnet) and its journal in the store. Every change —
a due block, a requester's transaction, a coordinator's inclusion, a reorg — runs in ONE store transaction that
first takes `lock_devnet` (a PostgreSQL advisory lock; SQLite has one writer anyway), then catches up with what
the other processes journaled (`Devnet.follow`, or a full `Devnet.resume` after a reorg there), then makes the
change, whose journal record goes into the same transaction. So exactly one replica mines a due block, the
others follow what the journal holds, and a transaction sent to any replica lands in the one mempool. A
transaction that fails (a lost connection, a kill) writes nothing, and this process reads the journal again.
The first process on an empty database writes genesis in that same transaction (two starting at once: the
second finds it).
"""

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aicf.chain.devnet import Devnet, DevnetConfig
from aicf.chain.interface import TxLocation
from aicf.core.chain import Block, TxKind
from aicf.core.txs import SignedTx
from aicf.store.devnet_journal import JournalState, load_journal, record_in
from aicf.store.interface import Store, Tx, read_transaction


class _TxJournal:
    """aicf.chain.devnet.DevnetJournal over the store transaction a SharedDevnet call holds open."""

    def __init__(self) -> None:
        self.tx: Tx | None = None

    def _open(self) -> Tx:
        if self.tx is None:
            raise RuntimeError("the shared devnet journals only inside one of its own transactions")
        return self.tx

    def load(self) -> JournalState | None:
        return load_journal(self._open())

    def record(self, **change: Any) -> None:
        record_in(self._open(), **change)


class SharedDevnet:
    """A ChainView, a requester chain and a mempool over the devnet kept in `store` (module doc). `config` only
    shapes a new chain; a kept one keeps its own (a chain id of another chain is refused: DevnetError)."""

    def __init__(self, store: Store, config: DevnetConfig, *, setup: Callable[[Tx], None] | None = None) -> None:
        """Read (or, on an empty database, write) the chain; `setup` runs in that same locked transaction: what
        the process checks or records once on the database it joins (a refusal there writes nothing)."""
        self.store, self.wanted = store, config
        self.operator: bytes | None = None  # the only sender of operator transactions (Devnet.operator)
        self._journal = _TxJournal()
        self._net: Devnet | None = None
        self._lock = threading.RLock()
        with self._write():  # genesis on an empty database, else the kept chain
            if setup is not None:
                setup(self._journal._open())

    @contextmanager
    def _write(self) -> Iterator[Devnet]:
        # Lock order: the store's transaction, then this object's lock, everywhere (ingestion reads the chain
        # inside its own store transaction; the other order deadlocked a requester's send against it).
        with self.store.transaction() as tx, self._lock:
            tx.lock_devnet()
            self._journal.tx = tx
            try:
                net = self._catch_up(tx, create=True)
                yield net
                tx.commit()
            except BaseException:
                self._net = None  # memory may hold what the database does not: read the journal again
                raise
            finally:
                self._journal.tx = None

    def _catch_up(self, tx: Tx, *, create: bool) -> Devnet:
        meta = tx.devnet_meta()
        if not meta and create:
            self._net = Devnet(self.wanted, journal=self._journal)  # genesis, journaled in this transaction
            return self._net
        net = self._net
        if net is not None:
            blocks = tx.devnet_blocks_above(net.head_height())
            counters = (meta.get("next_seq", 0), meta.get("nonce", 0), meta.get("reorgs", 0))
            if not blocks and counters == (net.next_seq, net.nonce, net.reorgs):
                return net  # nothing sent, mined or reorganized elsewhere: the mempool is as this process left it
            if net.follow(meta, blocks, tx.devnet_mempool()):
                return net
        self._net = Devnet.resume(self._journal, self.wanted)
        return self._net

    def refresh(self) -> Devnet:
        """Follow what the other processes journaled, without the lock (a read)."""
        with read_transaction(self.store) as tx, self._lock:  # the store first, as in _write
            self._journal.tx = tx
            try:
                return self._catch_up(tx, create=False)
            except BaseException:
                self._net = None
                raise
            finally:
                self._journal.tx = None

    @property
    def net(self) -> Devnet:
        """The chain as this process last read or wrote it."""
        net = self._net  # one read of the reference: no lock, so a store transaction may hold this
        return net if net is not None else self.refresh()

    # -- ChainView -----------------------------------------------------------------------------------------
    @property
    def chain_id(self) -> int:
        return self.net.chain_id

    @property
    def config(self) -> DevnetConfig:
        return self.net.config

    def head_height(self) -> int:
        return self.net.head_height()

    def block_at(self, height: int) -> Block | None:
        return self.net.block_at(height)

    def finalized_height(self) -> int:
        return self.net.finalized_height()

    # -- changes: one locked transaction each ----------------------------------------------------------------
    def tick(self, now: int) -> list[Block]:
        """Mine every block due by `now`, unless another replica did: then follow its blocks."""
        with self._write() as net:
            return net.tick(now)

    def mine(self, count: int = 1) -> list[Block]:
        with self._write() as net:
            return net.mine(count)

    def submit(self, sender: bytes, kind: TxKind, body: Mapping[str, object]) -> bytes:
        with self._write() as net:
            return net.submit(sender, kind, body)

    def send(self, tx: SignedTx) -> bytes:
        with self._write() as net:
            net.operator = self.operator  # a chain read again from the journal does not know it
            return net.send(tx)

    def reorg(self, depth: int) -> list[Block]:
        with self._write() as net:
            return net.reorg(depth)

    # -- requesters' reads: what every replica has journaled ---------------------------------------------
    def next_nonce(self, sender: bytes) -> int:
        return self.refresh().next_nonce(sender)

    def pending_from(self, sender: bytes) -> list[TxLocation]:
        return self.refresh().pending_from(sender)

    def locate(self, tx_hash: bytes) -> TxLocation | None:
        return self.refresh().locate(tx_hash)

    @property
    def mempool(self) -> list[TxLocation]:
        return [TxLocation(tx_hash=p.tx_hash, sender=p.sender, kind=p.kind, body=p.body) for p in self.net.mempool]

    @property
    def account_nonces(self) -> dict[bytes, int]:
        return dict(self.net.account_nonces)
