"""What the coordinator reads of a chain (SPEC §10), and what a requester sends to it (issue 12).

The service sees only these Protocols: the embedded devnet implements both, and a chain adapter for another
chain takes the same calls.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from aicf.core.chain import Block, TxKind
from aicf.core.txs import SignedTx


class ChainView(Protocol):
    @property
    def chain_id(self) -> int: ...

    def head_height(self) -> int:
        """The height of the canonical head; -1 for a chain without blocks."""

    def block_at(self, height: int) -> Block | None:
        """The canonical block at `height`, or None above the head."""

    def finalized_height(self) -> int:
        """The highest final height (head − finality depth), -1 while none is final."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TxLocation:
    """Where a transaction is: waiting in the mempool (height None) or included at (height, index)."""

    tx_hash: bytes
    sender: bytes
    kind: TxKind
    body: Mapping[str, object]
    height: int | None = None
    index: int | None = None


class TxLocator(Protocol):
    """Finds a transaction (what aicf.getTransaction needs of a chain: the devnet, or an EVM node's backend)."""

    def locate(self, tx_hash: bytes) -> TxLocation | None:
        """Where the transaction is on the canonical chain or in the mempool; None if unknown."""


class RequesterChain(Protocol):
    """The write side a requester uses: send a signed transaction, learn the next nonce, find a transaction."""

    @property
    def chain_id(self) -> int: ...

    def send(self, tx: SignedTx) -> bytes:
        """Check the signature, chain id and nonce and put the transaction in the mempool; returns its hash.
        Raises TxError (aicf.core.txs) with nothing stored."""

    def next_nonce(self, sender: bytes) -> int: ...

    def pending_from(self, sender: bytes) -> list[TxLocation]:
        """The sender's transactions not yet included, in order."""

    def locate(self, tx_hash: bytes) -> TxLocation | None:
        """Where the transaction is on the canonical chain or in the mempool; None if unknown."""
