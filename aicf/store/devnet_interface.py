"""What the store keeps for the embedded devnet (issue 12) and for a requester following a transaction.

The devnet's blocks and pending transactions are opaque bytes here: aicf.chain.devnet encodes them, the store
keeps them in height and sequence order in the same database as the coordinator's state, so one backup, one
restore and one `aicf up --db X` cover both.
"""

from collections.abc import Mapping, Sequence
from typing import Protocol

from aicf.core.chain import CancelRequest, Job, RefusedTx


class DevnetTx(Protocol):
    def devnet_meta(self) -> dict[str, int]: ...
    def set_devnet_meta(self, values: Mapping[str, int]) -> None: ...
    def devnet_blocks(self) -> list[bytes]:
        """Every kept block, by height from 0."""

    def devnet_blocks_above(self, height: int) -> list[bytes]:
        """The kept blocks above `height`, by height (a replica catching up with what another one mined)."""

    def lock_devnet(self) -> None:
        """Serialize the devnet's writers across coordinator replicas until this transaction ends (SPEC's
        devnet has one chain: one replica mines a due block, the others follow the journal)."""

    def put_devnet_blocks(self, blocks: Sequence[tuple[int, bytes]]) -> None:
        """Raises ConcurrentUpdateError if a height is already kept."""

    def drop_devnet_blocks_above(self, height: int) -> None: ...
    def devnet_mempool(self) -> list[tuple[int, bytes]]:
        """(seq, pending tx) in seq order."""

    def put_devnet_pending(self, pending: Sequence[tuple[int, bytes]]) -> None: ...
    def drop_devnet_pending_through(self, seq: int) -> None: ...
    def clear_devnet_mempool(self) -> None: ...

    # -- following a transaction ---------------------------------------------------------------------------
    def jobs_by_tx_hash(self, tx_hash: bytes) -> list[Job]:
        """The jobs an enqueue transaction made, newest inclusion first (a reorg may re-include it)."""

    def refused_by_tx_hash(self, tx_hash: bytes) -> list[RefusedTx]: ...
    def cancels_by_tx_hash(self, tx_hash: bytes) -> list[CancelRequest]: ...
