"""The embedded devnet's journal in the coordinator's store (issue 12): aicf.chain.devnet.DevnetJournal over
any `Store`, each record one transaction, so a SIGKILL leaves the devnet either before or after a change."""

from collections.abc import Mapping, Sequence
from typing import Any

from aicf.store.interface import Store, Tx

JournalState = tuple[dict[str, int], list[bytes], list[tuple[int, bytes]]]


def load_journal(tx: Tx) -> JournalState | None:
    """The journaled devnet in `tx`: (meta, blocks, mempool), or None before genesis."""
    meta = tx.devnet_meta()
    return (meta, tx.devnet_blocks(), tx.devnet_mempool()) if meta else None


def record_in(
    tx: Tx,
    *,
    meta: Mapping[str, int],
    blocks: Sequence[tuple[int, bytes]] = (),
    drop_blocks_above: int | None = None,
    pending: Sequence[tuple[int, bytes]] = (),
    drop_pending_through: int | None = None,
    replace_mempool: bool = False,
) -> None:
    """Write one devnet change (DevnetJournal.record's arguments) in `tx`; the caller commits."""
    tx.set_devnet_meta(meta)
    if drop_blocks_above is not None:
        tx.drop_devnet_blocks_above(drop_blocks_above)
    if blocks:
        tx.put_devnet_blocks(blocks)
    if replace_mempool:
        tx.clear_devnet_mempool()
    if drop_pending_through is not None:
        tx.drop_devnet_pending_through(drop_pending_through)
    if pending:
        tx.put_devnet_pending(pending)


class StoreDevnetJournal:
    """Each record in a transaction of its own (one process on the store)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def load(self) -> JournalState | None:
        with self.store.transaction() as tx:
            return load_journal(tx)

    def record(self, **change: Any) -> None:
        with self.store.transaction() as tx:
            record_in(tx, **change)
            tx.commit()
